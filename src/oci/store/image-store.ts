/**
 * The image store: an OCI image layout (blobs by digest, written atomically) that skopeo and
 * umoci can read and write too, plus unpacked layers in overlay form, cached by diffID and
 * shared by every image that has the layer.
 */
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HOLD_PREFIX, readLiveHolds, removeHoldFile, withStoreLock, writeHoldFile } from './cross-process.js';
import { logger } from '../../log.js';
import { isSha256Digest, sha256Of } from '../digest.js';
import { DigestMismatchError, ImageStoreError } from '../errors.js';
import { parseImageConfig, parseManifestDocument, type Descriptor, type ImageIndex, type Platform } from '../manifest.js';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from '../platform.js';
import { parseReference } from '../reference.js';
import { unpackLayer, type UnpackOptions } from '../unpack/unpack-layer.js';
import { lstatOrNull } from '../unpack/resolve.js';
import { commitFile, tempPath, writeFileAtomic } from './atomic.js';
import type { GcResult, Image, ImageSummary } from './image.js';
import { initLayout, LayoutPaths, readIndex, REF_NAME, writeIndex } from './layout.js';
import { placeLayer, StreamedLayer } from './layer-stream.js';
import { mapLimit } from './limit.js';
import { pullImage, type PullOptions } from './pull.js';
import type { BlobConsumer } from '../registry/client.js';

const log = logger('ctrkit:oci');
/** Layers unpacked at once by {@link ImageStore.lowers}: each has its own directory. */
const LAYERS_AT_ONCE = 4;

/** Options of {@link ImageStore.lowers} and {@link ImageStore.unpack}. */
export interface LayerOptions {
  /** Cancels the unpacking. */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link ImageStore.get}. */
export interface GetOptions {
  /** The platform to pick when the name refers to an index. @defaultValue this host's */
  readonly platform?: Platform | string | undefined;
}

/** The canonical name of a reference, or the text itself when it is not one (a bare skopeo/umoci tag). */
function canonicalName(ref: string): string {
  try {
    return parseReference(ref).toString();
  } catch {
    return ref;
  }
}

/**
 * An image store in a directory. Open it with {@link ImageStore.open}; then
 * {@link ImageStore.pull} images, {@link ImageStore.lowers} for overlay lowerdirs,
 * {@link ImageStore.unpack} for a flat rootfs, {@link ImageStore.list},
 * {@link ImageStore.remove}, {@link ImageStore.gc}.
 *
 * The directory is an OCI image layout: `skopeo copy docker://... oci:DIR:NAME` writes into
 * it and `umoci unpack --image DIR:NAME` reads from it.
 */
export class ImageStore {
  /** @internal */
  readonly paths: LayoutPaths;
  private indexLock: Promise<unknown> = Promise.resolve();
  private readonly unpacking = new Map<string, Promise<string>>();
  /** Blobs of pulls under way in this process, not yet named in `index.json`: gc leaves them. */
  private readonly pulling = new Map<string, number>();

  private constructor(
    /** The store's directory: an OCI image layout. */
    readonly dir: string,
  ) {
    this.paths = new LayoutPaths(dir);
  }

  /** Opens (creating it if needed) the store in `dir`. */
  static async open(dir: string): Promise<ImageStore> {
    const store = new ImageStore(dir);
    await initLayout(store.paths);
    return store;
  }

  /**
   * Serializes read-modify-write of `index.json` (and gc): within this process by a promise
   * chain, across processes by a flock on `.ctrkit-lock`, which the kernel drops if its
   * holder dies.
   */
  private async withIndex<T>(fn: () => Promise<T>): Promise<T> {
    const locked = () => withStoreLock(join(this.dir, '.ctrkit-lock'), fn);
    const run = this.indexLock.then(locked, locked);
    this.indexLock = run.catch(() => undefined);
    return run;
  }

  /**
   * Pulls an image from its registry into the store (blobs first, verified, then the
   * manifest, then its name in `index.json`: a pull that fails leaves no image, only blobs
   * that {@link ImageStore.gc} collects) and, unless `unpack: false`, unpacks its layers.
   * @param ref - an image reference: `busybox`, `127.0.0.1:5000/a/b:v1`, `...@sha256:...`
   */
  async pull(ref: string, options: PullOptions = {}): Promise<Image> {
    return pullImage(this, parseReference(ref), options);
  }

  /** @internal Marks blobs as in use by a pull until `release` is called. */
  hold(digests: readonly string[]): () => void {
    for (const d of digests) this.pulling.set(d, (this.pulling.get(d) ?? 0) + 1);
    // Other processes' gc sees the hold through a file naming this process.
    const file = writeHoldFile(this.paths.tmp, digests);
    return () => {
      removeHoldFile(file);
      for (const d of digests) {
        const n = (this.pulling.get(d) ?? 1) - 1;
        if (n === 0) this.pulling.delete(d);
        else this.pulling.set(d, n);
      }
    };
  }

  /** The image if the store has it, else pulls it. */
  async ensure(ref: string, options: PullOptions = {}): Promise<Image> {
    const have = await this.find(ref, options);
    return have ?? this.pull(ref, options);
  }

  /** The path of a blob (whether or not it is there). */
  blobPath(digest: string): string {
    return this.paths.blob(digest);
  }

  /** True when the store holds the blob. */
  async hasBlob(digest: string): Promise<boolean> {
    return (await lstatOrNull(this.paths.blob(digest)))?.isFile() === true;
  }

  /** A blob's bytes, checked against its digest. */
  async readBlob(digest: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.paths.blob(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageStoreError('ERR_STORE_BLOB_NOT_FOUND', `blob ${digest} is not in ${this.dir}`);
      throw e;
    }
    const actual = sha256Of(bytes);
    if (actual !== digest) throw new DigestMismatchError(`stored blob ${digest}`, digest, actual);
    return bytes;
  }

  /** @internal Stores bytes under their digest (atomically). */
  async writeBlob(digest: string, bytes: Buffer): Promise<void> {
    const actual = sha256Of(bytes);
    if (actual !== digest) throw new DigestMismatchError(`blob ${digest}`, digest, actual);
    if (!(await this.hasBlob(digest))) await writeFileAtomic(this.paths.tmp, this.paths.blob(digest), bytes);
  }

  /** @internal A temp path for a blob download; commit it with {@link ImageStore.commitBlob}. */
  tempBlobPath(digest: string): string {
    return tempPath(this.paths.tmp, `blob-${digest.slice(7, 19)}`);
  }

  /** @internal Moves a verified download into place under its digest. */
  async commitBlob(temp: string, digest: string): Promise<void> {
    await commitFile(temp, this.paths.blob(digest));
  }

  /** @internal Names `descriptor` `name` in `index.json`, replacing what had the name. */
  async tag(name: string, descriptor: Descriptor): Promise<void> {
    await this.withIndex(async () => {
      const index = await readIndex(this.paths);
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== name);
      index.manifests.push({ ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: name } });
      await writeIndex(this.paths, index);
    });
  }

  /** Loads an image from a manifest descriptor. */
  private async load(name: string, descriptor: Descriptor, platform: Platform): Promise<Image> {
    const doc = parseManifestDocument(await this.readBlob(descriptor.digest), descriptor.mediaType, descriptor.digest);
    if (doc.kind === 'index') return this.load(name, selectPlatform(doc.index, platform), platform);
    const { manifest } = doc;
    const config = parseImageConfig(await this.readBlob(manifest.config.digest), manifest.config.digest, manifest.layers.length);
    return {
      name,
      digest: descriptor.digest,
      descriptor,
      manifest,
      configDigest: manifest.config.digest,
      config,
      layers: manifest.layers.map((l, i) => ({ digest: l.digest, diffID: config.rootfs.diff_ids[i]!, size: l.size, mediaType: l.mediaType })),
      platform: { os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant },
    };
  }

  /** The image named `ref` (a full reference, a bare layout name, or a manifest digest), or undefined. */
  async find(ref: string, options: GetOptions = {}): Promise<Image | undefined> {
    const platform = typeof options.platform === 'string' ? parsePlatform(options.platform) : (options.platform ?? hostPlatform());
    const { manifests } = await readIndex(this.paths);
    const wanted = [ref, canonicalName(ref)];
    const byName = manifests.find((m) => wanted.includes(m.annotations?.[REF_NAME] ?? ''));
    if (byName) return this.load(byName.annotations![REF_NAME]!, byName, platform);
    if (isSha256Digest(ref)) {
      const byDigest = manifests.find((m) => m.digest === ref);
      if (byDigest) return this.load(byDigest.annotations?.[REF_NAME] ?? ref, byDigest, platform);
    }
    return undefined;
  }

  /** The image named `ref`. @throws {@link ImageStoreError} `ERR_STORE_IMAGE_NOT_FOUND` */
  async get(ref: string, options: GetOptions = {}): Promise<Image> {
    const image = await this.find(ref, options);
    if (!image) throw new ImageStoreError('ERR_STORE_IMAGE_NOT_FOUND', `no image "${ref}" in ${this.dir}`);
    return image;
  }

  /** Every named image, like `docker images`. Entries that cannot be read are skipped (and logged). */
  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const d of (await readIndex(this.paths)).manifests) {
      const name = d.annotations?.[REF_NAME];
      if (!name) continue;
      try {
        const image = await this.load(name, d, hostPlatform());
        out.push({
          name,
          digest: d.digest,
          size: image.manifest.config.size + image.layers.reduce((n, l) => n + l.size, 0),
          created: image.config.created,
          platform: formatPlatform(image.platform),
        });
      } catch (e) {
        log('list: %s unreadable: %s', name, (e as Error).message);
      }
    }
    return out;
  }

  /**
   * Removes the name `ref` from the store (like `docker rmi`); the blobs and unpacked layers
   * stay until {@link ImageStore.gc}, since other images may share them.
   * @throws {@link ImageStoreError} `ERR_STORE_IMAGE_NOT_FOUND`
   */
  async remove(ref: string): Promise<void> {
    await this.withIndex(async () => {
      const index = await readIndex(this.paths);
      const wanted = [ref, canonicalName(ref)];
      const keep = index.manifests.filter((m) => !wanted.includes(m.annotations?.[REF_NAME] ?? '') && m.digest !== ref);
      if (keep.length === index.manifests.length) throw new ImageStoreError('ERR_STORE_IMAGE_NOT_FOUND', `no image "${ref}" in ${this.dir}`);
      index.manifests = keep;
      await writeIndex(this.paths, index);
    });
  }

  /** Digests of every blob reachable from `index.json`, and the diffIDs of every layer. */
  private async reachable(): Promise<{ blobs: Set<string>; diffIDs: Set<string> }> {
    const blobs = new Set<string>();
    const diffIDs = new Set<string>();
    const visit = async (d: Descriptor): Promise<void> => {
      blobs.add(d.digest);
      let doc: ReturnType<typeof parseManifestDocument>;
      try {
        doc = parseManifestDocument(await this.readBlob(d.digest), d.mediaType, d.digest);
      } catch {
        return; // a missing or foreign document: keep what we know, collect nothing below it
      }
      if (doc.kind === 'index') {
        for (const m of (doc.index as ImageIndex).manifests) await visit(m);
        return;
      }
      blobs.add(doc.manifest.config.digest);
      for (const l of doc.manifest.layers) blobs.add(l.digest);
      try {
        const config = parseImageConfig(await this.readBlob(doc.manifest.config.digest), doc.manifest.config.digest, doc.manifest.layers.length);
        for (const id of config.rootfs.diff_ids) diffIDs.add(id);
      } catch {
        // no config: its layers' unpacked forms cannot be named, and are collected
      }
    };
    for (const d of (await readIndex(this.paths)).manifests) await visit(d);
    return { blobs, diffIDs };
  }

  /**
   * Removes blobs and unpacked layers no image in `index.json` references, and temp files
   * of pulls that died (older than an hour: a running pull's are younger). Blobs of pulls
   * under way, in this process or another live one, are kept.
   */
  async gc(): Promise<GcResult> {
    return this.withIndex(async () => {
      const { blobs, diffIDs } = await this.reachable();
      let blobsRemoved = 0;
      let bytesFreed = 0;
      // A concurrent pull renames and removes files under us: a file gone since readdir is skipped.
      const sizeOf = (p: string) =>
        stat(p).then(
          (st) => st,
          (e: NodeJS.ErrnoException) => {
            if (e.code === 'ENOENT') return undefined;
            throw e;
          },
        );
      const heldElsewhere = await readLiveHolds(this.paths.tmp);
      for (const hex of await readdir(this.paths.blobs)) {
        const digest = `sha256:${hex}`;
        if (blobs.has(digest) || this.pulling.has(digest) || heldElsewhere.has(digest)) continue;
        const p = join(this.paths.blobs, hex);
        const st = await sizeOf(p);
        if (!st) continue;
        bytesFreed += st.size;
        await rm(p, { force: true });
        blobsRemoved++;
      }
      let layersRemoved = 0;
      for (const hex of await readdir(this.paths.layers)) {
        const diffID = `sha256:${hex}`;
        // A pull under way unpacks its layers before it names the image: it holds their diffIDs.
        if (diffIDs.has(diffID) || this.pulling.has(diffID) || heldElsewhere.has(diffID)) continue;
        await rm(join(this.paths.layers, hex), { recursive: true, force: true });
        layersRemoved++;
      }
      const hourAgo = Date.now() - 3600_000;
      for (const t of await readdir(this.paths.tmp)) {
        if (t.startsWith(HOLD_PREFIX)) continue; // live ones are in use; dead ones went in readLiveHolds
        const p = join(this.paths.tmp, t);
        const st = await sizeOf(p);
        if (st && st.mtimeMs < hourAgo) await rm(p, { recursive: true, force: true });
      }
      return { blobsRemoved, layersRemoved, bytesFreed };
    });
  }

  /**
   * The image's layers unpacked in overlay form (whiteouts as 0:0 devices, opaque dirs by
   * xattr), unpacking the ones not yet unpacked — the absolute lowerdirs of an overlay,
   * **topmost first** (the order `lowerdir=` takes). Layers are cached by diffID, so images
   * sharing a layer share its directory. As root, opaque directories carry
   * `trusted.overlay.opaque` and `user.overlay.opaque` (for overlays in a user namespace, which
   * mount with `userxattr`); without root, `user.overlay.opaque` only and
   * files belong to the caller — keep root's and a user's stores apart.
   * Never modify these directories: every container of every image sharing them sees them.
   */
  async lowers(image: Image, options: LayerOptions = {}): Promise<string[]> {
    // Each layer has a directory of its own: they are unpacked side by side.
    const dirs = await mapLimit(image.layers, LAYERS_AT_ONCE, (layer) => this.unpackOnce(layer.digest, layer.diffID, options.signal));
    return dirs.reverse();
  }

  /** @internal The directory of a stored layer blob, unpacked (once) if it is not yet. */
  layerDir(digest: string, diffID: string, signal?: AbortSignal): Promise<string> {
    return this.unpackOnce(digest, diffID, signal);
  }

  /** @internal True when the layer `diffID` is unpacked in the store. */
  async hasLayer(diffID: string): Promise<boolean> {
    return lstatOrNull(this.paths.layer(diffID)) !== null;
  }

  /** @internal Waits for an unpacking of `diffID` under way in this process, if any (whatever its outcome). */
  async unpacked(diffID: string): Promise<void> {
    await this.unpacking.get(diffID)?.catch(() => undefined);
  }

  /**
   * @internal Unpacks layer `diffID` from its blob's bytes while `download` fetches them: it
   * gets a consumer to pass the bytes to, and resolves once the blob is whole and verified.
   * The layer dir takes its name only after that and the diffID check.
   */
  async unpackWhileDownloading(
    blob: { readonly size: number },
    diffID: string,
    download: (consumer: BlobConsumer) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<string> {
    const final = this.paths.layer(diffID);
    const run = async (): Promise<string> => {
      const temp = tempPath(this.paths.tmp, `layer-${diffID.slice(7, 19)}`);
      const layer = await StreamedLayer.create(temp, this.layerOptions(diffID, signal), blob.size);
      try {
        await download(layer);
      } catch (e) {
        await layer.discard();
        throw e;
      }
      await layer.finish(final);
      return final;
    };
    if (this.unpacking.has(diffID)) return run();
    const p = run().finally(() => this.unpacking.delete(diffID));
    this.unpacking.set(diffID, p);
    return p;
  }

  /** How the store unpacks a layer for overlay use. */
  private layerOptions(diffID: string, signal?: AbortSignal): UnpackOptions {
    // Without root, the layer is written for an overlay mounted with userxattr (user.overlay.opaque;
    // 0:0 whiteout devices anyone may make since Linux 5.8), owned by the caller. Root's opaque
    // directories carry both xattrs: a container in a user namespace (userns: 'auto') mounts
    // its overlay with userxattr, one without it does not.
    const rootless = process.getuid?.() !== 0;
    return { whiteouts: 'overlay', diffID, signal, userxattr: rootless || 'both', chown: !rootless };
  }

  /** Unpacks a layer into the cache once (per process; across processes the rename decides). */
  private unpackOnce(digest: string, diffID: string, signal?: AbortSignal): Promise<string> {
    let p = this.unpacking.get(diffID);
    if (!p) {
      p = this.unpackToCache(digest, diffID, signal).finally(() => this.unpacking.delete(diffID));
      this.unpacking.set(diffID, p);
    }
    return p;
  }

  private async unpackToCache(digest: string, diffID: string, signal?: AbortSignal): Promise<string> {
    const final = this.paths.layer(diffID);
    if (await lstatOrNull(final)) return final;
    if (!(await this.hasBlob(digest))) throw new ImageStoreError('ERR_STORE_BLOB_NOT_FOUND', `layer blob ${digest} is not in ${this.dir}`);
    // Unpacked under a temp name and renamed when complete and its diffID checked: a
    // directory under the diffID's name is always a whole, verified layer.
    const temp = tempPath(this.paths.tmp, `layer-${diffID.slice(7, 19)}`);
    try {
      await mkdir(temp, { mode: 0o755 });
      await unpackLayer(this.paths.blob(digest), temp, this.layerOptions(diffID, signal));
    } catch (e) {
      await rm(temp, { recursive: true, force: true });
      throw e;
    }
    await placeLayer(temp, final); // false: another process won, with the same content
    return final;
  }

  /**
   * Unpacks the image flat into `target` (an existing, empty directory): every layer in
   * order, whiteouts applied — a rootfs for a runtime bundle or a copy.
   */
  async unpack(image: Image, target: string, options: LayerOptions & Pick<UnpackOptions, 'chown' | 'devices'> = {}): Promise<void> {
    for (const layer of image.layers) {
      await unpackLayer(this.paths.blob(layer.digest), target, { ...options, whiteouts: 'apply', diffID: layer.diffID });
    }
  }
}

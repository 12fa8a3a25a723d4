/**
 * The OCI image layout on disk (image-spec's image-layout.md): `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`. The same directory skopeo (`oci:DIR:NAME`) and umoci
 * (`--image DIR:NAME`) read and write; image names live in the descriptors' annotations.
 * @internal
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../digest.js';
import { ImageStoreError } from '../errors.js';
import type { Descriptor } from '../manifest.js';
import { OCI_INDEX } from '../media-types.js';
import { writeFileAtomic } from './atomic.js';

/** The annotation holding an image's name in `index.json`. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** `index.json`'s shape. */
export interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** Paths inside a store. */
export class LayoutPaths {
  constructor(readonly root: string) {}
  get blobs(): string {
    return join(this.root, 'blobs', 'sha256');
  }
  get index(): string {
    return join(this.root, 'index.json');
  }
  /** ctrkit's own state, beside the layout (skopeo and umoci ignore it). */
  get private(): string {
    return join(this.root, '.ctrkit');
  }
  get tmp(): string {
    return join(this.private, 'tmp');
  }
  get layers(): string {
    return join(this.private, 'layers');
  }
  blob(digest: string): string {
    return join(this.blobs, digestHex(digest));
  }
  layer(diffID: string): string {
    return join(this.layers, digestHex(diffID));
  }
}

/** Creates the layout's files where missing; checks an existing one. */
export async function initLayout(p: LayoutPaths): Promise<void> {
  await mkdir(p.blobs, { recursive: true });
  await mkdir(p.tmp, { recursive: true });
  await mkdir(p.layers, { recursive: true });
  const marker = join(p.root, 'oci-layout');
  try {
    const v = (JSON.parse(await readFile(marker, 'utf8')) as { imageLayoutVersion?: string }).imageLayoutVersion;
    if (v !== '1.0.0') throw new ImageStoreError('ERR_STORE_LAYOUT', `${p.root}: unsupported imageLayoutVersion ${String(v)}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw e instanceof ImageStoreError ? e : new ImageStoreError('ERR_STORE_LAYOUT', `${p.root}/oci-layout: ${(e as Error).message}`);
    await writeFileAtomic(p.tmp, marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }
  try {
    await readFile(p.index);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await writeIndex(p, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  }
}

/** Reads `index.json`. */
export async function readIndex(p: LayoutPaths): Promise<LayoutIndex> {
  try {
    const doc = JSON.parse(await readFile(p.index, 'utf8')) as LayoutIndex;
    if (!Array.isArray(doc.manifests)) throw new Error('no "manifests" array');
    return doc;
  } catch (e) {
    throw new ImageStoreError('ERR_STORE_LAYOUT', `${p.index}: ${(e as Error).message}`);
  }
}

/** Writes `index.json` atomically. */
export async function writeIndex(p: LayoutPaths, index: LayoutIndex): Promise<void> {
  await writeFileAtomic(p.tmp, p.index, `${JSON.stringify(index, null, 2)}\n`);
}

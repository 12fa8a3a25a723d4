/**
 * A loopback "registry" that misbehaves on purpose, one behaviour per repository name:
 * `ok`, `resume` (breaks off the first blob download, then honours Range), `truncated`
 * (always breaks off, never resumes), `wrongdigest` (serves other bytes of the right size),
 * `fail500` (always 500), `flaky` (500 twice, then fine), `slow` (a blob body that stalls),
 * `mediatype` (Content-Type differs from mediaType), `ambiguous` (manifest and index at once),
 * `redirect` (blobs redirected to a second server on another host name: "localhost").
 * Images of their own: `unsafe` (a layer with a `../escape` entry after a good one), `big` (a
 * layer over 2 MiB: unpacked in a worker thread), `bigunsafe` (the same, then `../escape`),
 * `bigwrong` (the big layer with one byte flipped at its end), `bigslow` (the big layer's first
 * half, then nothing).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Entry, makeTar } from './tar.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface FaultServer {
  readonly host: string;
  /** Authorization headers (or "none") the redirect target received. */
  readonly redirectAuth: string[];
  /** Range headers the `resume` blob was asked with. */
  readonly ranges: string[];
  readonly layerDigest: string;
  /** The images of their own, by repository: their layer's digest and diffID. */
  readonly images: Readonly<Record<string, { readonly layerDigest: string; readonly diffID: string; readonly size: number }>>;
  readonly stop: () => Promise<void>;
}

interface OwnImage {
  readonly layer: Buffer;
  readonly config: Buffer;
  readonly manifest: Buffer;
  readonly diffID: string;
}

/** A one-layer image of `entries`. */
async function ownImage(entries: Entry[]): Promise<OwnImage> {
  const tar = await makeTar(entries);
  const { gzipSync } = await import('node:zlib');
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }),
  );
  return { layer, config, manifest, diffID: sha(tar) };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

export async function startFaultServer(options: { basicAuth?: string } = {}): Promise<FaultServer> {
  const layerTar = await makeTar([{ name: 'hello', data: 'hello\n'.repeat(20_000) }]);
  const { gzipSync } = await import('node:zlib');
  const layer = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [sha(layerTar)] } }),
  );
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  const ambiguous = Buffer.from(JSON.stringify({ ...manifestDoc, manifests: [] }));
  // 3 MiB of base64 text: gzip leaves it over 2 MiB, what makes the puller use a worker thread.
  const bigData = (await import('node:crypto')).randomBytes(3 * 1024 * 1024).toString('base64');
  const bigEntries: Entry[] = [
    { name: 'data/', type: 'directory' },
    { name: 'data/big.txt', data: bigData },
    { name: 'data/small', data: 'small\n' },
  ];
  const own = new Map<string, OwnImage>([
    [
      'unsafe',
      await ownImage([
        { name: 'ok', data: 'ok\n' },
        { name: '../escape', data: 'x' },
      ]),
    ],
    ['big', await ownImage(bigEntries)],
    ['bigunsafe', await ownImage([...bigEntries, { name: '../escape', data: 'x' }])],
  ]);
  own.set('bigwrong', own.get('big')!);
  own.set('bigslow', own.get('big')!);
  const counts = new Map<string, number>();
  const ranges: string[] = [];
  const redirectAuth: string[] = [];
  const sockets = new Set<import('node:net').Socket>();

  const other: Server = createServer((req, res) => {
    redirectAuth.push(req.headers.authorization ?? 'none');
    res.writeHead(200, { 'content-length': layer.length }).end(layer);
  });
  const otherPort = await listen(other);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (options.basicAuth && req.headers.authorization !== `Basic ${Buffer.from(options.basicAuth).toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="faults"' }).end();
      return;
    }
    const url = req.url ?? '/';
    if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const m = /^\/v2\/([a-z0-9]+)\/(manifests|blobs)\/(.+)$/.exec(url);
    if (!m) return void res.writeHead(404).end();
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    const image = own.get(repo);
    if (image) {
      const body =
        kind === 'manifests'
          ? image.manifest
          : ref === sha(image.config)
            ? image.config
            : ref === sha(image.layer) && repo !== 'bigwrong' && repo !== 'bigslow'
              ? image.layer
              : undefined;
      const type = kind === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream';
      if (body) return void res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'docker-content-digest': sha(body) }).end(body);
      if (ref !== sha(image.layer)) return void res.writeHead(404).end();
      if (repo === 'bigslow') {
        res.writeHead(200, { 'content-length': image.layer.length });
        res.write(image.layer.subarray(0, image.layer.length >> 1)); // then nothing, until the client gives up
        return;
      }
      const bad = Buffer.from(image.layer);
      bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
      return void res.writeHead(200, { 'content-length': bad.length }).end(bad);
    }
    const key = `${repo} ${kind} ${ref}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (repo === 'fail500' || (repo === 'flaky' && kind === 'manifests' && n <= 2)) return void res.writeHead(500).end('{"errors":[{"code":"UNKNOWN"}]}');
    if (kind === 'manifests') {
      const body = repo === 'ambiguous' ? ambiguous : manifest;
      const type = repo === 'mediatype' ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
      return void res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'docker-content-digest': sha(body) }).end(body);
    }
    if (ref === sha(config)) return void res.writeHead(200, { 'content-length': config.length }).end(config);
    if (ref !== sha(layer)) return void res.writeHead(404).end();
    if (repo === 'redirect') return void res.writeHead(307, { location: `http://localhost:${otherPort}/blob` }).end();
    if (repo === 'wrongdigest') {
      const bad = Buffer.from(layer);
      bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
      return void res.writeHead(200, { 'content-length': bad.length }).end(bad);
    }
    const half = Math.floor(layer.length / 2);
    if (repo === 'slow') {
      res.writeHead(200, { 'content-length': layer.length });
      res.write(layer.subarray(0, 100)); // then nothing, until the client gives up
      return;
    }
    if (repo === 'truncated' || (repo === 'resume' && n === 1)) {
      res.writeHead(200, { 'content-length': layer.length });
      res.write(layer.subarray(0, half), () => res.socket?.destroy());
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (repo === 'resume' && range) {
      ranges.push(req.headers.range!);
      const from = Number(range[1]);
      return void res
        .writeHead(206, { 'content-length': layer.length - from, 'content-range': `bytes ${from}-${layer.length - 1}/${layer.length}` })
        .end(layer.subarray(from));
    }
    res.writeHead(200, { 'content-length': layer.length }).end(layer);
  };
  const server: Server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    host: `127.0.0.1:${port}`,
    redirectAuth,
    ranges,
    layerDigest: sha(layer),
    images: Object.fromEntries([...own].map(([repo, i]) => [repo, { layerDigest: sha(i.layer), diffID: i.diffID, size: i.layer.length }])),
    stop: async () => {
      for (const s of sockets) s.destroy();
      other.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => other.close(r))]);
    },
  };
}

import { gzipSync } from 'node:zlib';
import { pack as tarPack, type Headers } from 'tar-stream';

/** One entry of a hand-made layer: a tar-stream header plus its data. */
export type Entry = Partial<Headers> & { name: string; data?: string; pax?: Record<string, string> };

/** A tar (gzip-compressed when asked) of `entries`, exactly as written: no cleaning of names. */
export async function makeTar(entries: readonly Entry[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const { data, ...header } = e;
    const type = header.type ?? 'file';
    const body = type === 'file' ? (data ?? '') : undefined;
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        {
          mode: type === 'directory' ? 0o755 : 0o644,
          mtime: new Date(1_700_000_000_000),
          ...header,
          type,
          size: body ? Buffer.byteLength(body) : 0,
        } as Headers,
        body,
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await ended;
  const tar = Buffer.concat(chunks);
  return options.gzip ? gzipSync(tar) : tar;
}

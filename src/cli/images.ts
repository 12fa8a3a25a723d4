/**
 * The image verbs of the `ctrkit` command: pull (with progress bars), images, rmi.
 * @internal
 */
import { parseArgs } from 'node:util';
import type { PullEvent } from '../oci/index.js';

async function store(dir: string | undefined) {
  const { ImageStore, defaultImageStoreDir } = await import('../oci/index.js');
  return ImageStore.open(dir ?? defaultImageStoreDir());
}

/** Progress on stderr: one bar per layer on a terminal, one line per finished layer otherwise. */
export function progressPrinter(out: NodeJS.WriteStream = process.stderr): (e: PullEvent) => void {
  const layers = new Map<string, { bytes: number; total: number; state: string }>();
  const tty = out.isTTY === true;
  let drawn = 0;
  const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
  const draw = () => {
    if (!tty) return;
    if (drawn) out.write(`\x1b[${drawn}A`);
    for (const [digest, l] of layers) {
      const width = 30;
      const done = l.total ? Math.min(width, Math.round((l.bytes / l.total) * width)) : 0;
      out.write(
        `\x1b[2K${short(digest)}: ${l.state.padEnd(11)} [${'='.repeat(done)}${' '.repeat(width - done)}] ${(l.bytes / 2 ** 20).toFixed(1)}/${(l.total / 2 ** 20).toFixed(1)} MiB\n`,
      );
    }
    drawn = layers.size;
  };
  return (e) => {
    switch (e.type) {
      case 'resolved':
        out.write(`${e.reference}: ${e.digest} (${e.platform}, ${e.layers} layers)\n`);
        break;
      case 'layer-cached':
        layers.set(e.digest, { bytes: e.total, total: e.total, state: 'cached' });
        if (!tty) out.write(`${short(e.digest)}: already here\n`);
        break;
      case 'layer-progress':
        layers.set(e.digest, { bytes: e.bytes, total: e.total, state: 'downloading' });
        break;
      case 'layer-downloaded':
        layers.set(e.digest, { bytes: e.total, total: e.total, state: 'downloaded' });
        if (!tty) out.write(`${short(e.digest)}: downloaded ${(e.total / 2 ** 20).toFixed(1)} MiB\n`);
        break;
      case 'layer-unpacked': {
        const l = layers.get(e.digest);
        if (l) l.state = 'unpacked';
        break;
      }
      case 'done':
        draw();
        out.write(`pulled ${e.reference} (${e.digest})\n`);
        return;
    }
    draw();
  };
}

/** `ctrkit pull [--store DIR] [--insecure] [--platform P] [-u USER:PASS] REF` */
export async function pull(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { store: { type: 'string' }, insecure: { type: 'boolean' }, platform: { type: 'string' }, user: { type: 'string', short: 'u' } },
  });
  if (positionals.length !== 1) throw Object.assign(new Error('pull takes one image reference'), { code: 'ERR_PARSE_ARGS_USAGE' });
  const [username, ...pw] = values.user?.split(':') ?? [];
  const s = await store(values.store);
  await s.pull(positionals[0]!, {
    insecure: values.insecure,
    platform: values.platform,
    credentials: username === undefined ? undefined : { username, password: pw.join(':') },
    onProgress: progressPrinter(),
  });
  return 0;
}

/** `ctrkit images [--store DIR]` */
export async function images(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { store: { type: 'string' } } });
  const list = await (await store(values.store)).list();
  process.stdout.write(`${'NAME'.padEnd(50)} ${'DIGEST'.padEnd(19)} ${'PLATFORM'.padEnd(14)} SIZE\n`);
  for (const i of list) {
    process.stdout.write(`${i.name.padEnd(50)} ${i.digest.slice(0, 19)} ${i.platform.padEnd(14)} ${(i.size / 2 ** 20).toFixed(1)} MiB\n`);
  }
  return 0;
}

/** `ctrkit rmi [--store DIR] REF...` (and garbage-collects what no image uses any more) */
export async function rmi(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { store: { type: 'string' } } });
  const s = await store(values.store);
  for (const ref of positionals) {
    await s.remove(ref);
    process.stdout.write(`removed ${ref}\n`);
  }
  await s.gc();
  return 0;
}

/**
 * The container verbs of the `ctrkit` command, with Docker's names and flags: ps, logs,
 * stop, kill, rm, exec, inspect, stats, wait, cp. Each is a thin use of the public API on
 * the containers of the state root (`$CTRKIT_STATE_ROOT`, else /run/ctrkit as root).
 * @internal
 */
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Container, type RunningContainer } from '../index.js';

const short = (id: string) => id.slice(0, 12);

function ago(d: Date | undefined): string {
  if (!d) return '';
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

/** `ctrkit ps [-a] [-q]`. */
export async function ps(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' } } });
  const list = await Container.list({ all: values.all });
  if (values.quiet) {
    for (const c of list) process.stdout.write(`${short(c.id)}\n`);
    return 0;
  }
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
  for (const c of list) {
    const i = await c.inspect();
    const status =
      i.status === 'exited'
        ? `Exited (${i.exitCode ?? i.signal ?? '?'}) ${ago(i.finishedAt)}`
        : i.status === 'running'
          ? `Up ${ago(i.startedAt).replace(/ ago$/, '')}${i.health ? ` (${i.health.status === 'starting' ? 'health: starting' : i.health.status})` : ''}`
          : i.status[0]!.toUpperCase() + i.status.slice(1);
    const cmd = JSON.stringify(i.command.join(' ')).slice(0, 22);
    const ports = i.ports.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
    rows.push([short(i.id), i.image ?? '(rootfs)', cmd, ago(i.created), status, ports, i.name ?? '']);
  }
  process.stdout.write(`${table(rows)}\n`);
  return 0;
}

/** `ctrkit logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER`. */
export async function logs(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string', short: 'n' },
      timestamps: { type: 'boolean', short: 't' },
      since: { type: 'string' },
      until: { type: 'string' },
    },
  });
  const c = await Container.get(one(positionals, 'logs'));
  const tail = values.tail === undefined || values.tail === 'all' ? undefined : Number(values.tail);
  const opts = { tail, since: values.since, until: values.until };
  if (!values.follow) {
    // Docker prints stdout lines to stdout and stderr lines to stderr.
    const lines = await c.logs({ ...opts, timestamps: values.timestamps, streams: ['stdout'] });
    process.stdout.write(lines);
    process.stderr.write(await c.logs({ ...opts, timestamps: values.timestamps, streams: ['stderr'] }));
    return 0;
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  for await (const line of c.followLogs({ ...opts, signal: abort.signal })) {
    const text = `${values.timestamps ? `${line.time.toISOString()} ` : ''}${line.text}\n`;
    (line.stream === 'stderr' ? process.stderr : process.stdout).write(text);
  }
  return 0;
}

function one(positionals: string[], verb: string): string {
  if (positionals.length !== 1) throw Object.assign(new Error(`${verb} needs exactly one CONTAINER`), { code: 'ERR_PARSE_ARGS_USAGE' });
  return positionals[0]!;
}

function some(positionals: string[], verb: string): string[] {
  if (positionals.length === 0) throw Object.assign(new Error(`${verb} needs at least one CONTAINER`), { code: 'ERR_PARSE_ARGS_USAGE' });
  return positionals;
}

/** Runs `f` on each named container; like Docker, prints each name done and fails at the end if any failed. */
async function each(names: string[], f: (c: RunningContainer) => Promise<void>, quiet = false): Promise<number> {
  let status = 0;
  for (const name of names) {
    try {
      await f(await Container.get(name));
      if (!quiet) process.stdout.write(`${name}\n`);
    } catch (e) {
      process.stderr.write(`ctrkit: ${name}: ${(e as Error).message}\n`);
      status = 1;
    }
  }
  return status;
}

/** `ctrkit stop [-t SECONDS] [-s SIGNAL] CONTAINER...`. */
export async function stop(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { time: { type: 'string', short: 't' }, signal: { type: 'string', short: 's' } },
  });
  const timeout = values.time === undefined ? undefined : Number(values.time) * 1000;
  return each(some(positionals, 'stop'), async (c) => {
    await c.stop({ timeout, signal: values.signal as NodeJS.Signals | undefined });
  });
}

/** `ctrkit kill [-s SIGNAL] CONTAINER...`. */
export async function kill(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { signal: { type: 'string', short: 's' } } });
  const raw = values.signal ?? 'SIGKILL';
  const signal = /^\d+$/.test(raw) ? Number(raw) : ((raw.startsWith('SIG') ? raw : `SIG${raw}`).toUpperCase() as NodeJS.Signals);
  return each(some(positionals, 'kill'), async (c) => {
    if (!(await c.kill(signal))) throw new Error('container is not running');
  });
}

/** `ctrkit rm [-f] CONTAINER...`. */
export async function rm(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: 'boolean', short: 'f' } } });
  return each(some(positionals, 'rm'), (c) => c.remove({ force: values.force }));
}

/** `ctrkit wait CONTAINER...`: prints each exit code. */
export async function wait(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  return each(
    some(positionals, 'wait'),
    async (c) => {
      const st = await c.wait();
      process.stdout.write(`${st.exitCode ?? 128 + (st.signal ? (await import('node:os')).constants.signals[st.signal] : 0)}\n`);
    },
    true,
  );
}

/** `ctrkit inspect CONTAINER...`: a JSON array, like `docker inspect`. */
export async function inspect(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const out: unknown[] = [];
  const status = await each(
    some(positionals, 'inspect'),
    async (c) => {
      out.push(await c.inspect());
    },
    true,
  );
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return status;
}

const mib = (n: number | undefined) => (n === undefined ? '--' : `${(n / 2 ** 20).toFixed(1)}MiB`);

/**
 * `ctrkit stats [--no-stream] [CONTAINER...]`: CPU, memory, pids, IO, refreshed every second.
 * The numbers are the monitor's (`ctrkit monitor`): MEM USAGE is the working set, usage
 * minus inactive page cache, as Docker and cAdvisor show it.
 */
export async function stats(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { 'no-stream': { type: 'boolean' } } });
  const { sampleContainer } = await import('../monitor/sample.js');
  const prev = new Map<string, { usage: number; at: number }>();
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  for (let first = true; !abort.signal.aborted; first = false) {
    const list = positionals.length ? await Promise.all(positionals.map((n) => Container.get(n))) : await Container.list();
    const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'PIDS', 'BLOCK I/O']];
    for (const c of list) {
      const s = await sampleContainer(c).catch(() => undefined);
      const has = s?.cpuUsageSeconds !== undefined || s?.memoryUsageBytes !== undefined;
      const usage = s?.cpuUsageSeconds ?? 0;
      const p = prev.get(c.id);
      if (s) prev.set(c.id, { usage, at: s.timestampMs });
      const cpu = p && s && s.timestampMs > p.at ? ((100 * (usage - p.usage)) / ((s.timestampMs - p.at) / 1000)).toFixed(2) : '0.00';
      const limit = s?.memoryLimitBytes;
      const io = s?.io?.reduce((a, d) => ({ r: a.r + d.readBytes, w: a.w + d.writeBytes }), { r: 0, w: 0 });
      rows.push([
        short(c.id),
        c.name ?? '',
        has ? `${cpu}%` : '--',
        has ? `${mib(s?.memoryWorkingSetBytes)} / ${limit ? mib(limit) : 'unlimited'}` : '--',
        String(s?.threads ?? '--'),
        io ? `${mib(io.r)} / ${mib(io.w)}` : '--',
      ]);
    }
    if (!first && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
    process.stdout.write(`${table(rows)}\n`);
    if (values['no-stream']) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return 0;
}

const EXEC_TAKES_VALUE = new Set(['-u', '--user', '-e', '--env', '-w', '--workdir']);

/** `ctrkit exec [-i] [-t] [-u UID[:GID]] [-e K=V]... [-w DIR] CONTAINER COMMAND...`. */
export async function exec(argv: string[]): Promise<number> {
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) i += EXEC_TAKES_VALUE.has(argv[i]!) ? 2 : 1;
  const { values } = parseArgs({
    args: argv.slice(0, i),
    options: {
      interactive: { type: 'boolean', short: 'i' },
      tty: { type: 'boolean', short: 't' },
      user: { type: 'string', short: 'u' },
      env: { type: 'string', short: 'e', multiple: true },
      workdir: { type: 'string', short: 'w' },
    },
  });
  const [name, ...command] = argv.slice(i);
  if (!name || command.length === 0) throw Object.assign(new Error('exec needs a CONTAINER and a COMMAND'), { code: 'ERR_PARSE_ARGS_USAGE' });
  const c = await Container.get(name);
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const [uid, gid] = (values.user ?? '').split(':').map(Number);
  const user = values.user === undefined ? undefined : { uid: uid!, gid: gid ?? uid! };
  const p = await c.execStream({
    command,
    env,
    cwd: values.workdir,
    user,
    tty: values.tty,
    stdio: [values.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'],
    ttySize: values.tty && process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined,
  });
  if (p.tty) await attachTerminal(p.tty, (cols, rows) => p.resize(cols, rows), values.interactive ?? false);
  const st = await p.exited;
  return st.exitCode ?? 128 + (st.signal ? (await import('node:os')).constants.signals[st.signal] : 0);
}

/** `ctrkit cp SRC DST`: one side is CONTAINER:PATH; `-` is a tar stream on stdin or stdout. */
export async function cp(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length !== 2) throw Object.assign(new Error('cp needs SRC and DST, one of them CONTAINER:PATH'), { code: 'ERR_PARSE_ARGS_USAGE' });
  const [src, dst] = positionals as [string, string];
  const split = (s: string) => {
    const i = s.indexOf(':');
    return i > 0 && !s.startsWith('/') && !s.startsWith('.') ? ([s.slice(0, i), s.slice(i + 1)] as const) : undefined;
  };
  const from = split(src);
  const to = split(dst);
  if (from && !to) {
    const c = await Container.get(from[0]);
    const tar = await c.copyFrom(from[1]);
    if (dst === '-') await pipeline(tar, process.stdout);
    else {
      // Unpacked on the host by the system's tar, as `docker cp` does into a directory.
      const { spawn } = await import('node:child_process');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(dst, { recursive: true });
      const t = spawn('tar', ['-x', '-C', dst], { stdio: ['pipe', 'inherit', 'inherit'] });
      await pipeline(tar, t.stdin);
      const code = await new Promise<number>((r) => t.once('close', (c2) => r(c2 ?? 1)));
      if (code !== 0) throw new Error(`tar -x into ${dst} failed`);
    }
    return 0;
  }
  if (to && !from) {
    const c = await Container.get(to[0]);
    await c.copyTo(src === '-' ? process.stdin : src, to[1]);
    return 0;
  }
  throw Object.assign(new Error('cp: exactly one of SRC and DST must be CONTAINER:PATH'), { code: 'ERR_PARSE_ARGS_USAGE' });
}

/**
 * Connects this terminal to a container's (`-it`): raw keystrokes in, the screen out, the
 * window size followed. Resolves once the container's side ended.
 */
export async function attachTerminal(tty: import('node:stream').Duplex, resize: (cols: number, rows: number) => void, interactive: boolean): Promise<void> {
  const stdin = process.stdin;
  const raw = interactive && stdin.isTTY;
  const onResize = () => resize(process.stdout.columns || 80, process.stdout.rows || 24);
  if (process.stdout.isTTY) {
    onResize();
    process.stdout.on('resize', onResize);
  }
  if (raw) stdin.setRawMode(true);
  if (interactive) stdin.pipe(tty);
  tty.pipe(process.stdout, { end: false });
  try {
    await new Promise<void>((resolve) => {
      tty.once('end', resolve);
      tty.once('close', resolve);
    });
  } finally {
    if (interactive) stdin.unpipe(tty);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.stdout.off('resize', onResize);
  }
}

#!/usr/bin/env node
/**
 * The `ctrkit` command: a thin layer over the public API, with Docker's flag names.
 * @internal
 */
import { parseArgs } from 'node:util';
import { constants } from 'node:os';
import { Container, CtrkitError, defaultRootfs, Wait, type NamespaceTypeName } from './api.js';
import { images, progressPrinter, pull, rmi } from './images.js';
import { attachTerminal, cp, exec, inspect, kill, logs, ps, rm, stats, stop, wait } from './containers.js';
import { monitor } from './monitor.js';

const USAGE = `Usage:
  ctrkit run [options] (IMAGE | --rootfs DIR) [--] [COMMAND [ARG...]]
  ctrkit pull [--insecure] [--platform OS/ARCH] [-u USER:PASS] IMAGE
  ctrkit images
  ctrkit rmi IMAGE...
  ctrkit ps [-a] [-q]
  ctrkit logs [-f] [--tail N] [-t] [--since T] CONTAINER
  ctrkit stop [-t SECONDS] CONTAINER...      stop signal, then SIGKILL after the grace period (10 s)
  ctrkit kill [-s SIGNAL] CONTAINER...
  ctrkit rm [-f] CONTAINER...
  ctrkit exec [-i] [-t] [-u UID[:GID]] [-e K=V] [-w DIR] CONTAINER COMMAND...
  ctrkit inspect CONTAINER...
  ctrkit stats [--no-stream] [CONTAINER...]
  ctrkit monitor [--port N] [--host H]   cAdvisor-like: Prometheus /metrics and a live page (default 127.0.0.1:8080)
  ctrkit wait CONTAINER...
  ctrkit cp CONTAINER:PATH HOSTPATH|-   |   ctrkit cp HOSTPATH|- CONTAINER:PATH
  ctrkit demo
  ctrkit rootfs            print (and build if needed) the default rootfs
  ctrkit prune             end containers whose owner is gone, remove exited ones and what crashed callers left

CONTAINER is an id, a unique id prefix or a name. Containers live under $CTRKIT_STATE_ROOT
(default /run/ctrkit as root, $XDG_RUNTIME_DIR/ctrkit otherwise).

Options of run:
  -d, --detach             run in the background: it outlives this command; its output goes to its log
      --name NAME          a unique name for the container
      --init               run tini as PID 1 (reaps orphans, passes signals on)
      --stop-signal SIG    the signal stop sends first (default: the image's, else SIGTERM)
  --rootfs DIR             root filesystem instead of an image ("builtin": ctrkit's built-in busybox rootfs)
      --insecure           pull the image over plain HTTP (loopback registries need no flag)
  -u, --user UID[:GID]     run as this user (or a name from the image's /etc/passwd)
      --entrypoint CMD     replace the image's entrypoint
  -h, --hostname NAME      hostname inside (default: container)
  -e, --env KEY=VALUE      set an environment variable (repeatable)
  -w, --workdir DIR        working directory inside (default: /)
  -i, --interactive        pass stdin to the container
  -t, --tty                give it a terminal of its own (-it: an interactive shell, window size followed)
      --namespaces LIST    comma-separated namespaces to create (default: pid,mnt,uts,ipc,net,cgroup)
      --privileged         keep all capabilities, no masked paths
      --userns auto        root inside is an unused range of host ids (/etc/subuid's "ctrkit" line), images idmapped
  -m, --memory SIZE        memory limit, like 512m
      --memory-swap SIZE   memory plus swap
      --cpus N             CPU bandwidth, like 0.5
      --cpu-shares N       relative CPU weight (v1 scale)
      --cpuset-cpus LIST   CPUs to run on, like 0-1
      --pids-limit N       maximum number of tasks
      --device PATH        make a host device available in /dev (repeatable)
      --network MODE       bridge (default as root), pasta (default rootless: the passt package), none, host,
                           container:PID, or the name of a network (Network.create)
  -p, --publish H:C        publish a port: [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/tcp|udp] (repeatable; bridge, pasta);
                           without a host port the kernel picks a free one (ctrkit ps shows it)
  -v, --volume SRC:DST[:ro]  bind a host file or directory (repeatable)
      --device-read-bps DEV:RATE    read limit, like /dev/sda:10mb (repeatable)
      --device-write-bps DEV:RATE   write limit (repeatable)
      --rm                 remove a detached container once it exited (a foreground one always is)
      --help               show this help

The exit status is the container's; 128+N when signal N ended it; 125 when ctrkit failed.`;

function fail(message: string, status = 125): never {
  process.stderr.write(`ctrkit: ${message}\n`);
  process.exit(status);
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

const TAKES_VALUE = new Set([
  '--rootfs',
  '-h',
  '--hostname',
  '-e',
  '--env',
  '-w',
  '--workdir',
  '--namespaces',
  '-m',
  '--memory',
  '--memory-swap',
  '--cpus',
  '--cpu-shares',
  '--cpuset-cpus',
  '--pids-limit',
  '--device',
  '--device-read-bps',
  '--device-write-bps',
  '--network',
  '-p',
  '--publish',
  '-v',
  '--volume',
  '-u',
  '--user',
  '--entrypoint',
  '--store',
  '--name',
  '--stop-signal',
  '--userns',
]);

/**
 * Splits `run`'s arguments into ctrkit's options and the command, which starts at the first
 * word that is not an option (as with docker run): `ctrkit run -i sh -c 'x'` must not read
 * `-c` as an option of ctrkit's.
 */
function splitCommand(argv: string[]): [string[], string[]] {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [argv.slice(0, i), argv.slice(i + 1)];
    if (!a.startsWith('-') || a === '-') return [argv.slice(0, i), argv.slice(i)];
    if (TAKES_VALUE.has(a)) i++;
  }
  return [argv, []];
}

async function run(argv: string[]): Promise<number> {
  const [opts, command] = splitCommand(argv);
  const { values } = parseArgs({
    args: opts,
    allowPositionals: false,
    strict: true,
    options: {
      rootfs: { type: 'string' },
      hostname: { type: 'string', short: 'h' },
      env: { type: 'string', short: 'e', multiple: true },
      workdir: { type: 'string', short: 'w' },
      interactive: { type: 'boolean', short: 'i' },
      tty: { type: 'boolean', short: 't' },
      namespaces: { type: 'string' },
      privileged: { type: 'boolean' },
      userns: { type: 'string' },
      rm: { type: 'boolean' },
      help: { type: 'boolean' },
      detach: { type: 'boolean', short: 'd' },
      name: { type: 'string' },
      init: { type: 'boolean' },
      'stop-signal': { type: 'string' },
      memory: { type: 'string', short: 'm' },
      'memory-swap': { type: 'string' },
      cpus: { type: 'string' },
      'cpu-shares': { type: 'string' },
      'cpuset-cpus': { type: 'string' },
      'pids-limit': { type: 'string' },
      device: { type: 'string', multiple: true },
      'device-read-bps': { type: 'string', multiple: true },
      'device-write-bps': { type: 'string', multiple: true },
      network: { type: 'string' },
      insecure: { type: 'boolean' },
      user: { type: 'string', short: 'u' },
      entrypoint: { type: 'string' },
      store: { type: 'string' },
      publish: { type: 'string', short: 'p', multiple: true },
      volume: { type: 'string', short: 'v', multiple: true },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // `run IMAGE [COMMAND...]`, or `run --rootfs DIR COMMAND...`.
  const image = values.rootfs === undefined ? command.shift() : undefined;
  if (values.rootfs === undefined && image === undefined) fail(`run needs an IMAGE or --rootfs DIR\n${USAGE}`, 2);
  if (image === undefined && command.length === 0) fail(`run needs a COMMAND\n${USAGE}`, 2);
  const rootfs = values.rootfs === 'builtin' ? await defaultRootfs() : values.rootfs;
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) fail(`-e ${kv}: expected KEY=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const common = {
    command: command.length ? command : undefined,
    rootfs,
    image,
    store: values.store,
    user: values.user,
    entrypoint: values.entrypoint === undefined ? undefined : [values.entrypoint],
    hostname: values.hostname,
    env,
    cwd: values.workdir,
    namespaces: values.namespaces
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) as NamespaceTypeName[] | undefined,
    privileged: values.privileged,
    userns: values.userns as 'auto' | undefined,
    memory: values.memory,
    memorySwap: values['memory-swap'],
    cpus: num('--cpus', values.cpus),
    cpuShares: num('--cpu-shares', values['cpu-shares']),
    cpusetCpus: values['cpuset-cpus'],
    pids: num('--pids-limit', values['pids-limit']),
    devices: values.device,
    deviceReadBps: values['device-read-bps'],
    deviceWriteBps: values['device-write-bps'],
    network: await networkOf(values.network),
    ports: values.publish,
    // Like docker run: the command's output is the readiness signal, not a wait.
    waitFor: Wait.forStarted(),
    binds: values.volume?.map(volumeOf),
    name: values.name,
    init: values.init,
    stopSignal: values['stop-signal'] as NodeJS.Signals | undefined,
  };
  if (values.detach) {
    if (values.interactive) fail('-d and -i do not go together: a detached container has no stdin', 2);
    const c = await Container.start({ ...common, detach: true, autoRemove: values.rm, pullOptions: { insecure: values.insecure } });
    process.stdout.write(`${c.id}\n`);
    return 0;
  }
  const abort = new AbortController();
  const forward = (sig: NodeJS.Signals) => {
    proc?.kill(sig);
    if (!proc) abort.abort(new Error(`received ${sig}`));
  };
  let proc: Awaited<ReturnType<typeof Container.start>> | undefined;
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  proc = await Container.start({
    ...common,
    pullOptions: { insecure: values.insecure, onProgress: image ? progressPrinter() : undefined },
    ...(values.tty
      ? { tty: true, ttySize: process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined }
      : { stdio: [values.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] as ['inherit' | 'ignore', 'inherit', 'inherit'] }),
    signal: abort.signal,
  });
  if (proc.tty) await attachTerminal(proc.tty, (cols, rows) => proc?.resize(cols, rows), values.interactive ?? false);
  const st = await proc.wait();
  await proc.remove();
  if (st.oomKilled) process.stderr.write('ctrkit: the container was killed by the OOM killer (memory limit reached)\n');
  return exitStatus(st.exitCode, st.signal);
}

async function networkOf(v: string | undefined): Promise<'none' | 'host' | 'bridge' | 'pasta' | { container: number } | import('../network/index.js').Network> {
  // Docker's default as root; rootless Podman's (a bridge needs root).
  if (v === undefined) return process.getuid?.() === 0 ? 'bridge' : 'pasta';
  if (v === 'bridge' || v === 'none' || v === 'host' || v === 'pasta') return v;
  const m = /^container:(\d+)$/.exec(v);
  if (m) return { container: Number(m[1]) };
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v)) {
    const { Network } = await import('../network/index.js');
    return Network.open(v);
  }
  return fail(`--network ${v}: expected bridge, pasta, none, host, container:PID or a network name`, 2);
}

function volumeOf(v: string): { source: string; target: string; readonly: boolean } {
  const [source, target, mode] = v.split(':');
  if (!source || !target || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) fail(`-v ${v}: expected SRC:DST[:ro]`, 2);
  return { source, target, readonly: mode === 'ro' };
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`${flag} ${v}: expected a number`, 2);
  return n;
}

async function demo(): Promise<number> {
  const rootfs = await defaultRootfs();
  process.stdout.write(
    `ctrkit demo: the chapter's mini-container (5.6), on the built-in rootfs ${rootfs}\n` +
      `  new namespaces: pid, mnt, uts, ipc, net, cgroup; hostname "container"; pivot_root into the rootfs\n\n`,
  );
  const script = [
    'echo "Running [/bin/sh] as PID $$"',
    'echo "hostname: $(hostname)"',
    'echo "network interfaces: $(ls /sys/class/net)"',
    'echo "processes:"; ps -o pid,user,comm',
    'echo "mounts:"; mount',
  ].join('; ');
  const r = await Container.run({ rootfs, hostname: 'container', command: ['/bin/sh', '-c', script], stdio: ['ignore', 'inherit', 'inherit'] });
  process.stdout.write(`\ncontainer exited with code ${r.exitCode} after ${Math.round(r.durationMs)} ms\n`);
  return exitStatus(r.exitCode, r.signal);
}

async function main(): Promise<number> {
  const [verb, ...rest] = process.argv.slice(2);
  switch (verb) {
    case 'run':
      return run(rest);
    case 'demo':
      return demo();
    case 'pull':
      return pull(rest);
    case 'images':
      return images(rest);
    case 'rmi':
      return rmi(rest);
    case 'ps':
      return ps(rest);
    case 'logs':
      return logs(rest);
    case 'stop':
      return stop(rest);
    case 'kill':
      return kill(rest);
    case 'rm':
      return rm(rest);
    case 'exec':
      return exec(rest);
    case 'inspect':
      return inspect(rest);
    case 'stats':
      return stats(rest);
    case 'monitor':
      return monitor(rest);
    case 'wait':
      return wait(rest);
    case 'cp':
      return cp(rest);
    case 'prune': {
      const r = await Container.prune();
      for (const c of r.containers) process.stdout.write(`removed container ${c}\n`);
      for (const c of r.cgroups) process.stdout.write(`removed cgroup ${c}\n`);
      for (const l of r.layers) process.stdout.write(`removed layer ${l}\n`);
      return 0;
    }
    case 'rootfs':
      process.stdout.write(`${await defaultRootfs()}\n`);
      return 0;
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return verb === undefined ? 2 : 0;
    default:
      return fail(`unknown command "${verb}"\n${USAGE}`, 2);
  }
}

main().then(
  (status) => process.exit(status),
  (e: unknown) => {
    // Docker's convention: 127 the command was not found, 126 it could not be run.
    if (e instanceof CtrkitError)
      fail(`${e.name}: ${e.message}`, e.code === 'ERR_COMMAND_NOT_FOUND' ? 127 : e.code === 'ERR_COMMAND_NOT_EXECUTABLE' ? 126 : 125);
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) fail(`${(e as Error).message}\n${USAGE}`, 2);
    fail((e as Error).stack ?? String(e));
  },
);

/**
 * Rootless networking through pasta (the `passt` package): a user-mode network stack that an
 * unprivileged user attaches to a network namespace of its own. pasta joins the container's
 * user and network namespaces, creates a tap device there (`eth0`), gives it the host's
 * address and default route (or the ones asked for), and carries the container's TCP, UDP
 * and ICMP traffic over ordinary sockets of the caller's: no bridge, veth, NAT rule or
 * privilege on the host. Published ports are sockets pasta binds in the caller's namespace.
 *
 * pasta daemonizes once the namespace is configured and its ports are bound; the caller
 * records its identity (PID and start time) and ends it with the container.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { AbortError, InvalidOptionError } from '../errors.js';
import { logger } from '../log.js';
import { identify, isAlive, type ProcessIdentity } from '../sys/liveness.js';
import { NetworkError } from './errors.js';
import { formatIpv4, parseIpv4 } from './ipv4.js';
import { parsePortMapping, type PortMapping, type PortSpec } from './ports.js';

const log = logger('ctrkit:network');

/** How long pasta may take to configure the namespace and bind its ports. */
const PASTA_TIMEOUT_MS = 10_000;

/** Options of `network: 'pasta'` (rootless networking). */
export interface PastaOptions {
  /**
   * The container's IPv4 address and prefix length, e.g. `'10.0.2.100/24'`.
   * @defaultValue pasta's: the address of the host interface with the first default route
   */
  readonly address?: string;
  /** The container's IPv4 default gateway. @defaultValue pasta's: the host's default gateway */
  readonly gateway?: string;
  /**
   * Let the container reach services bound to the host's loopback, at its gateway address
   * (pasta's gateway mapping: a connection to the gateway arrives on the host as one to
   * 127.0.0.1). Off by default, as a bridge's guard keeps containers off the host's loopback.
   * @defaultValue false (`--no-map-gw`)
   */
  readonly hostLoopback?: boolean;
  /** More pasta arguments, appended as given (`['--mtu', '1500']`); see pasta(1). */
  readonly args?: readonly string[];
  /** The pasta program. @defaultValue `pasta` from PATH, else /usr/bin/pasta, /usr/sbin/pasta, /usr/local/bin/pasta */
  readonly binary?: string;
}

/** What pasta made for a container (`network: 'pasta'`): the pasta process and what the container got. */
export interface PastaAttachment {
  /** pasta's PID and its start time in clock ticks since boot, which tell it from a later process with that PID (it is no child of ours: it daemonized). */
  readonly process: { readonly pid: number; readonly start: number };
  /** The PID of pasta. */
  readonly pid: number;
  /** The container's IPv4 address, when it has one. */
  readonly address: string | undefined;
  /** Its prefix length. */
  readonly prefix: number | undefined;
  /** Its default gateway. */
  readonly gateway: string | undefined;
  /** The tap interface inside the container. */
  readonly ifname: string;
  /** The published ports, with their host address (127.0.0.1 unless given) and the host ports chosen for random ones. */
  readonly ports: readonly PortMapping[];
  /** Ends pasta (idempotent). Its ports close with it. */
  stop(): Promise<void>;
}

/** Checks `pasta` options without touching anything. @internal */
export function validatePastaOptions(o: PastaOptions | undefined): void {
  if (o === undefined) return;
  if (o.address !== undefined) parseCidr(o.address);
  if (o.gateway !== undefined) parseIpv4(o.gateway, 'pasta.gateway');
  if (o.args !== undefined && (!Array.isArray(o.args) || o.args.some((a) => typeof a !== 'string')))
    throw new InvalidOptionError('pasta.args', 'must be an array of strings');
  if (o.binary !== undefined && (typeof o.binary !== 'string' || o.binary === '')) throw new InvalidOptionError('pasta.binary', 'must be a path');
}

function parseCidr(cidr: string): { address: string; prefix: number } {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = Number(m?.[2]);
  if (!m || prefix < 1 || prefix > 32) throw new InvalidOptionError('pasta.address', `"${cidr}" is not an IPv4 address with a prefix length (10.0.2.100/24)`);
  return { address: formatIpv4(parseIpv4(m[1]!, 'pasta.address')), prefix };
}

const SEARCH = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/bin', '/sbin'];

/** The pasta binary: the one given, or `pasta` from PATH and the usual places. @internal */
export function findPasta(binary?: string): string {
  const executable = (p: string) => {
    try {
      accessSync(p, fsConstants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (binary !== undefined) {
    const path = isAbsolute(binary) ? binary : undefined;
    if (path && executable(path)) return path;
    if (!path) {
      const found = (process.env.PATH ?? '')
        .split(delimiter)
        .filter(isAbsolute)
        .map((d) => join(d, binary))
        .find(executable);
      if (found) return found;
    }
    throw notFound(`pasta.binary: ${binary} is not an executable file`);
  }
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(isAbsolute), ...SEARCH];
  const found = dirs.map((d) => join(d, 'pasta')).find(executable);
  if (!found) throw notFound(`pasta is not installed (looked in PATH and ${SEARCH.join(', ')})`);
  return found;
}

function notFound(what: string): NetworkError {
  return new NetworkError(
    'ERR_NETWORK_PASTA_NOT_FOUND',
    `${what}: rootless networking needs pasta: install the passt package (Debian/Ubuntu: apt-get install passt; Fedora: dnf install passt), or give pasta.binary`,
  );
}

/** Whether `address:port` can be bound here now (pasta 2023 ignores a port it cannot bind, so it is checked first). */
function canBind(protocol: 'tcp' | 'udp', address: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    if (protocol === 'tcp') {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen({ host: address, port, exclusive: true }, () => {
        const got = (s.address() as { port: number }).port;
        s.close(() => resolve(got));
      });
    } else {
      const s = createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(undefined);
      });
      s.bind({ address, port, exclusive: true }, () => {
        const got = s.address().port;
        s.close(() => resolve(got));
      });
    }
  });
}

/**
 * The published ports as pasta gets them: host address 127.0.0.1 unless given, a free port
 * chosen for random ones, and every fixed one checked free.
 */
async function resolvePorts(specs: readonly PortSpec[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const spec of specs) {
    const m = parsePortMapping(spec);
    const hostIp = m.hostIp ?? '127.0.0.1';
    // A random port: the kernel picks one; it is free again an instant before pasta binds it.
    const port = await canBind(m.protocol, hostIp, m.hostPort);
    if (port === undefined) {
      throw new NetworkError(
        'ERR_NETWORK_PORT_IN_USE',
        m.hostPort === 0
          ? `no free ${m.protocol} port on ${hostIp}`
          : `${hostIp}:${m.hostPort}/${m.protocol} is in use (or ${hostIp} is no address of this host): cannot publish it`,
      );
    }
    if (out.some((o) => o.protocol === m.protocol && o.hostPort === port)) {
      throw new NetworkError('ERR_NETWORK_PORT_IN_USE', `${m.protocol} host port ${port} is published twice`);
    }
    out.push({ ...m, hostIp, hostPort: port });
  }
  return out;
}

/** pasta's `-t`/`-u` options for the mappings of one protocol (`none` without any). */
function portArgs(flag: '-t' | '-u', ports: readonly PortMapping[]): string[] {
  if (ports.length === 0) return [flag, 'none'];
  return ports.flatMap((p) => [flag, `${p.hostIp}/${p.hostPort}:${p.containerPort}`]);
}

/** The IPv4 address, prefix and gateway on `ifname` in the network namespace of `pid`, as /proc shows them. */
async function addressOf(pid: number, ifname: string): Promise<{ address?: string; prefix?: number; gateway?: string }> {
  const [route, trie] = await Promise.all([
    readFile(`/proc/${pid}/net/route`, 'utf8').catch(() => ''),
    readFile(`/proc/${pid}/net/fib_trie`, 'utf8').catch(() => ''),
  ]);
  // /proc/net/route has addresses in the kernel's (little-endian) byte order, in hex.
  const ip = (hex: string) => {
    const n = Number.parseInt(hex, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  };
  const rows = route
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === ifname && f.length >= 8);
  const gateway = rows.find((f) => f[1] === '00000000' && f[2] !== '00000000')?.[2];
  const subnets = rows
    .filter((f) => f[2] === '00000000' && f[7] !== '00000000')
    .map((f) => ({ net: parseIpv4(ip(f[1]!), 'route'), mask: parseIpv4(ip(f[7]!), 'route') }));
  const locals = [...trie.matchAll(/\|-- (\d+\.\d+\.\d+\.\d+)\n\s*\/32 host LOCAL/g)].map((m) => m[1]!).filter((a) => !a.startsWith('127.'));
  for (const a of locals) {
    const n = parseIpv4(a, 'address');
    const s = subnets.find((x) => (n & x.mask) >>> 0 === x.net);
    if (s) {
      const prefix = s.mask.toString(2).replace(/0/g, '').length;
      return { address: a, prefix, gateway: gateway && ip(gateway) };
    }
  }
  return { address: locals[0], gateway: gateway && ip(gateway) };
}

/** pasta's own lines, without its complaints about a missing syslog. */
function pastaOutput(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Failed to send \d+ bytes to syslog/.test(l))
    .join('; ');
}

/** Sends `signal` to that very process (pidfd-pinned, so never to a recycled PID). */
async function signalProcess(id: ProcessIdentity, signal: number): Promise<void> {
  if (!isAlive(id)) return;
  const { close, pidfdOpen, pidfdSendSignal } = await import('../sys/libc.js');
  let fd: number;
  try {
    fd = pidfdOpen(id.pid);
  } catch {
    return; // gone meanwhile
  }
  try {
    if (isAlive(id)) pidfdSendSignal(fd, signal);
  } finally {
    close(fd);
  }
}

/** True once the process is gone, or a zombie (nothing of it runs; its reaper is not ours). */
function gone(id: ProcessIdentity): boolean {
  if (!isAlive(id)) return true;
  try {
    const stat = readFileSync(`/proc/${id.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/**
 * Ends a pasta process: SIGTERM, then SIGKILL if it is still there after `ms`. What the owner
 * helper, `prune()` and `remove({ force })` do from a container's record too.
 * @internal
 */
export async function stopPasta(id: ProcessIdentity, ms = 2000): Promise<void> {
  await signalProcess(id, 15);
  const end = Date.now() + ms;
  while (!gone(id)) {
    if (Date.now() > end) {
      await signalProcess(id, 9);
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

type StartOptions = PastaOptions & { readonly ports?: readonly PortSpec[]; readonly ifname?: string; readonly signal?: AbortSignal };

/** pasta's command line: configure the namespace of `pid`, publish `ports`, nothing else. */
function pastaArgs(pid: number, ifname: string, pidFile: string, ports: readonly PortMapping[], options: StartOptions): string[] {
  const fixed = options.address !== undefined ? parseCidr(options.address) : undefined;
  return [
    ...['--quiet', '--config-net', '--ns-ifname', ifname, '--pid', pidFile],
    ...portArgs(
      '-t',
      ports.filter((p) => p.protocol === 'tcp'),
    ),
    ...portArgs(
      '-u',
      ports.filter((p) => p.protocol === 'udp'),
    ),
    // Nothing of the host's own ports is forwarded into the container.
    ...['-T', 'none', '-U', 'none'],
    ...(options.hostLoopback ? [] : ['--no-map-gw']),
    ...(fixed ? ['--address', fixed.address, '--netmask', String(fixed.prefix)] : []),
    ...(options.gateway ? ['--gateway', options.gateway] : []),
    ...(options.args ?? []),
    String(pid),
  ];
}

/** Runs pasta until its foreground process exits (once the daemon is ready, or on failure). */
function runPasta(binary: string, args: readonly string[], signal: AbortSignal | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError(signal.reason));
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), PASTA_TIMEOUT_MS);
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    };
    child.once('error', (e) => {
      done();
      reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? notFound(`${binary} cannot be run`) : e);
    });
    child.once('close', (code, sig) => {
      done();
      if (signal?.aborted) reject(new AbortError(signal.reason));
      else resolve({ code: sig ? null : code, output: sig ? `${output}\nkilled by ${sig} after ${PASTA_TIMEOUT_MS} ms` : output });
    });
  });
}

/** pasta's failure, in its own words and with what they usually mean. */
function pastaFailure(code: number | null, output: string): NetworkError {
  const said = pastaOutput(output);
  const hint = /external interface not usable|no external routable interface for ipv4/i.test(said)
    ? ': it takes the container address, gateway and MTU from the host interface of the default route, and this network namespace has no IPv4 default route'
    : /\b(tun|tap)\b/i.test(said)
      ? ': it could not make the tap device in the container (does the container have a network namespace of its own, not yet connected?)'
      : '';
  return new NetworkError('ERR_NETWORK_PASTA', `pasta failed (exit ${code ?? 'killed'})${hint}${said ? `: ${said}` : ''}`);
}

/**
 * Connects the network namespace of `pid` (a container's init, in a user namespace the
 * caller owns) through pasta: configures its `eth0`, publishes `ports`, and returns once pasta
 * runs in the background. Everything it made is gone if it throws.
 * @internal
 */
export async function startPasta(pid: number, options: StartOptions): Promise<PastaAttachment> {
  validatePastaOptions(options);
  const binary = findPasta(options.binary);
  const ifname = options.ifname ?? 'eth0';
  const ports = await resolvePorts(options.ports ?? []);
  const dir = await mkdtemp(join(tmpdir(), 'ctk-pasta-'));
  const pidFile = join(dir, 'pasta.pid');
  const args = pastaArgs(pid, ifname, pidFile, ports, options);
  log('starting %s %s', binary, args.join(' '));
  let started: ProcessIdentity | undefined;
  try {
    const { code, output } = await runPasta(binary, args, options.signal);
    // The daemon's PID is written before the foreground process exits: read it even on failure.
    const daemon = Number.parseInt((await readFile(pidFile, 'utf8').catch(() => '')).trim(), 10);
    if (daemon > 0) started = identify(daemon);
    if (code !== 0) throw pastaFailure(code, output);
    if (!started) throw new NetworkError('ERR_NETWORK_PASTA', `pasta started but wrote no PID to ${pidFile}${output ? `: ${pastaOutput(output)}` : ''}`);
    const fixed = options.address !== undefined ? parseCidr(options.address) : undefined;
    const seen = fixed ? { address: fixed.address, prefix: fixed.prefix, gateway: options.gateway } : await addressOf(pid, ifname);
    const identity = started;
    let stopped = false;
    log('pasta %d connects %d: %s/%s via %s', identity.pid, pid, seen.address, seen.prefix, seen.gateway);
    return {
      process: identity,
      pid: identity.pid,
      address: seen.address,
      prefix: seen.prefix,
      gateway: seen.gateway ?? options.gateway,
      ifname,
      ports,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopPasta(identity);
      },
    };
  } catch (e) {
    if (started) await stopPasta(started).catch(() => undefined);
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

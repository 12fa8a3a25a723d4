/**
 * The runtime-clients lab: a private containerd (and optionally a private dockerd on top of it)
 * that drive an OCI runtime binary the way they drive runc, and a tiny busybox image built
 * offline. Everything lives under one fresh /tmp/ctk-ctrd-* dir; container cgroups land under a
 * `/ctk-clients-*` parent in every cgroup hierarchy; `stop()` removes all of it.
 *
 * How the pieces are kept private:
 * - containerd: its own --config with root, state, gRPC/ttrpc sockets under the dir; the CRI
 *   plugin disabled (no CNI, no kubelet bits); debug and metrics listeners off.
 * - ctr run: `--runc-binary` makes the shim call the runtime under test as if it were runc,
 *   `--runc-root` gives it a private state root (the shim passes `--root ROOT/<namespace>`),
 *   `--cgroup` sets linux.cgroupsPath (default would be /<namespace>/<id>), `--fifo-dir` keeps
 *   ctr's stdio FIFOs out of /run/containerd/fifo.
 * - dockerd: uses our containerd (`--containerd`), private -H/--data-root/--exec-root/--pidfile,
 *   its own daemon.json (which also moves the trust key out of /etc/docker), no iptables, no
 *   ip_forward, no masquerade, no bridge, cgroupfs driver with `--cgroup-parent` under ours, and
 *   the runtime under test registered as `ctk` (`--add-runtime`). The runtime's --root is then
 *   under the exec root (<exec-root>/runtime-runc/moby in 20.10, whatever the runtime's name).
 * - Paths no flag moves: the shims' sockets in /run/containerd/s (fixed in containerd 1.6) and
 *   dockerd's /run/docker/plugins. Both are removed at the end when the lab made them and they
 *   are empty.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** The image as containerd names it (ctr image import takes the name from the index). */
export const CTR_IMAGE = 'docker.io/library/ctk-busybox:latest';
/** The same image as docker load names it. */
export const DOCKER_IMAGE = 'ctk-busybox:latest';
/** The name dockerd knows the runtime under test by (`docker run --runtime ctk`). */
export const DOCKER_RUNTIME = 'ctk';

const CALL_TIMEOUT_MS = 60_000;
const BUSYBOX = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';
/** Dirs at fixed paths the clients create whatever their flags (see the header). */
const FIXED_RUN_DIRS = ['/run/containerd/s', '/run/containerd/fifo', '/run/containerd', '/run/docker/plugins', '/run/docker'];

/** What one client call did. */
export interface CallResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the lab can find of its containers on the machine (each list empty when clean). */
export interface Leftovers {
  /** Processes in the lab's cgroups or naming the lab dir (shims, runtime calls), the daemons aside. */
  readonly processes: string[];
  /** Container cgroups: any dir below <hierarchy>/<parent>/<ctr|docker>/. */
  readonly cgroups: string[];
  /** Entries left in the runtime's state roots (ctr's --runc-root, dockerd's runtime-*) and the shims' bundles. */
  readonly state: string[];
  /** Mounts under the lab dir other than dockerd's own bind mount of its data root. */
  readonly mounts: string[];
}

/** What must be gone once the lab is stopped. */
export interface Remains {
  /** Any process with the lab dir in its command line or in the lab's cgroups. */
  readonly processes: string[];
  /** The cgroup parent, in any hierarchy. */
  readonly cgroups: string[];
  /** The lab dir itself, and the fixed /run dirs the clients made that were not there before. */
  readonly dirs: string[];
  /** Mounts under the lab dir. */
  readonly mounts: string[];
}

export interface ClientsLab {
  /** The lab dir (fresh mkdtemp /tmp/ctk-ctrd-*). */
  readonly dir: string;
  /** The runtime binary the shim calls as runc. */
  readonly runtime: string;
  /** The cgroup parent of every container (`/ctk-clients-XXXXXX`). */
  readonly cgroupParent: string;
  /** The runtime's state root for ctr runs (`--runc-root`). */
  readonly runtimeRoot: string;
  /** True when a dockerd was started. */
  readonly hasDocker: boolean;
  /** `ctr --address <our socket> ARGS`. */
  ctr(...args: string[]): CallResult;
  /** The `ctr run` flags that route a container to the runtime, its root and our cgroups. */
  runFlags(id: string): string[];
  /** The cgroup path ctr containers get (linux.cgroupsPath). */
  ctrCgroup(id: string): string;
  /** The cgroup path a docker container gets. */
  dockerCgroup(id: string): string;
  /** `docker --host <our socket> ARGS`; throws when the lab has no dockerd. */
  docker(...args: string[]): CallResult;
  /** What is left of the containers while the daemons still run. */
  leftovers(): Leftovers;
  /** What is left of the lab after stop(). */
  remains(): Remains;
  /** Stops the daemons and removes everything; safe to call twice. */
  stop(): Promise<void>;
}

export interface LabOptions {
  /** Absolute path of the runtime binary (an executable file). */
  readonly runtime: string;
  /** Also start a dockerd using our containerd. */
  readonly docker?: boolean;
}

/** Runs a client synchronously, with a timeout so a hung daemon fails the test instead of the run. */
function call(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): CallResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: CALL_TIMEOUT_MS, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const timedOut = r.error ? ` (${r.error.message})` : '';
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${timedOut}` };
}

function mustCall(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = call(cmd, args, env);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ready` until it holds; fails early when the daemon exits, with its log. */
async function waitReady(name: string, child: ChildProcess, log: string, ready: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (ready()) return;
    await sleep(50);
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '';
  throw new Error(`${name} did not come up (exit ${child.exitCode ?? child.signalCode ?? 'none'}):\n${tail}`);
}

/** Starts a daemon with its output in a file: a pipe nobody drains while spawnSync blocks would stall it. */
function startDaemon(cmd: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    return spawn(cmd, args, { stdio: ['ignore', fd, fd], env: daemonEnv() });
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, then SIGKILL after `ms`; resolves once the process has exited. */
async function stopDaemon(child: ChildProcess | undefined, ms = 15_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Stores `data` as a content-addressed blob of the OCI layout; returns its descriptor. */
function putBlob(layout: string, mediaType: string, data: Buffer | string): { mediaType: string; digest: string; size: number } {
  const hex = sha256(data);
  writeFileSync(join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
}

/** A rootfs of static busybox, one symlink per applet, and the passwd/group docker reads. */
function busyboxRootfs(dir: string): string {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (applet && applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  return root;
}

/**
 * Builds the image as one tar that both importers read, offline: an OCI layout (index.json,
 * which `ctr image import` reads, naming the image by its io.containerd.image.name annotation)
 * plus a docker-save manifest.json over the same blobs (which docker 20.10's `docker load`
 * reads; it predates OCI-layout loading). One uncompressed layer.
 */
export function buildImageTar(dir: string): string {
  const rootfs = busyboxRootfs(dir);
  const layout = join(dir, 'layout');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const layerFile = join(dir, 'layer.tar');
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerFile, '.']);
  const layerData = readFileSync(layerFile);
  const layer = putBlob(layout, 'application/vnd.oci.image.layer.v1.tar', layerData);
  const config = putBlob(
    layout,
    'application/vnd.oci.image.config.v1+json',
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const manifest = putBlob(
    layout,
    'application/vnd.oci.image.manifest.v1+json',
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }),
  );
  const annotations = { 'io.containerd.image.name': CTR_IMAGE, 'org.opencontainers.image.ref.name': 'latest' };
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations }] }));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const blob = (d: { digest: string }) => `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
  writeFileSync(join(layout, 'manifest.json'), JSON.stringify([{ Config: blob(config), RepoTags: [DOCKER_IMAGE], Layers: [blob(layer)] }]));
  const tar = join(dir, 'ctk-busybox.tar');
  execFileSync('tar', ['-C', layout, '-cf', tar, '.']);
  rmSync(layerFile);
  return tar;
}

/** Mount points of every cgroup hierarchy (v1 controllers, name=systemd, the v2 tree). */
export function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);
}

/** Every dir below `root`, deepest first, as paths relative to `root`. */
function subdirs(root: string, rel = ''): string[] {
  let entries: string[];
  try {
    entries = readdirSync(join(root, rel), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
  return entries.flatMap((name) => [...subdirs(root, join(rel, name)), join(rel, name)]);
}

/** Mount points at or below `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Processes (not zombies: those have no command line and no cgroup to show) matching `pred`. */
function processesWhere(pred: (cmd: string, cgroup: string) => boolean): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const cgroup = readFileSync(`/proc/${d}/cgroup`, 'utf8');
      if (cmd && pred(cmd, cgroup)) out.push(`${d} ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Entries inside the per-namespace dirs of a runtime state root (`ROOT/<namespace>/*`). */
function stateEntries(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((ns) => {
    try {
      return readdirSync(join(root, ns)).map((e) => join(root, ns, e));
    } catch {
      return [join(root, ns)];
    }
  });
}

/** A short random suffix of [a-z0-9], for the cgroup parent. */
function suffix(): string {
  return sha256(`${process.pid}-${Date.now()}-${Math.random()}`).slice(0, 8);
}

function assertRuntime(runtime: string): void {
  try {
    accessSync(runtime, constants.X_OK);
  } catch {
    throw new Error(`the runtime under test is not an executable file: ${runtime} (set CTRKIT_RUNTIME_BIN, or build dist/runtime/main.js)`);
  }
}

function containerdConfig(dir: string): string {
  const file = join(dir, 'containerd.toml');
  writeFileSync(
    file,
    `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${dir}/containerd.sock"
[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
`,
  );
  return file;
}

function dockerdArgs(dir: string, runtime: string, cgroupParent: string): string[] {
  const d = join(dir, 'docker');
  mkdirSync(d, { recursive: true });
  // daemon.json: an empty one of ours instead of /etc/docker/daemon.json; the trust key
  // (key.json, default /etc/docker) can only be moved from the config file in 20.10.
  writeFileSync(join(d, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(d, 'key.json') }));
  return [
    '--config-file',
    join(d, 'daemon.json'),
    '-H',
    `unix://${d}/docker.sock`,
    '--data-root',
    join(d, 'data'),
    '--exec-root',
    join(d, 'exec'),
    '--pidfile',
    join(d, 'docker.pid'),
    '--containerd',
    join(dir, 'containerd.sock'),
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
    '--exec-opt',
    'native.cgroupdriver=cgroupfs',
    '--cgroup-parent',
    `${cgroupParent}/docker`,
    '--add-runtime',
    `${DOCKER_RUNTIME}=${runtime}`,
  ];
}

/**
 * The environment of the daemons, hence of the shims and the runtime they start: what a
 * service manager gives them (systemd's default PATH), not the test runner's variables; plus
 * the directory of this node, so a `#!/usr/bin/env node` runtime runs on the same node.
 */
function daemonEnv(): NodeJS.ProcessEnv {
  return { PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: '/root', LANG: 'C.UTF-8' };
}

/** The lab's state: its dir, daemons, and the checks and teardown that need them. */
class Lab implements ClientsLab {
  readonly dir = mkdtempSync('/tmp/ctk-ctrd-');
  readonly cgroupParent = `/ctk-clients-${suffix()}`;
  readonly runtimeRoot = join(this.dir, 'runtime-root');
  private readonly socket = join(this.dir, 'containerd.sock');
  /** The fixed /run dirs (FIXED_RUN_DIRS) that were there before: never removed by us. */
  private readonly preexisting = new Set(FIXED_RUN_DIRS.filter((d) => existsSync(d)));
  private containerd: ChildProcess | undefined;
  private dockerd: ChildProcess | undefined;
  private stopped = false;

  constructor(readonly runtime: string) {}

  get hasDocker(): boolean {
    return this.dockerd !== undefined;
  }

  ctr(...args: string[]): CallResult {
    return call('ctr', ['--address', this.socket, ...args]);
  }

  runFlags(id: string): string[] {
    return ['--runc-binary', this.runtime, '--runc-root', this.runtimeRoot, '--cgroup', this.ctrCgroup(id), '--fifo-dir', join(this.dir, 'fifo')];
  }

  ctrCgroup(id: string): string {
    return `${this.cgroupParent}/ctr/${id}`;
  }

  dockerCgroup(id: string): string {
    return `${this.cgroupParent}/docker/${id}`;
  }

  docker(...args: string[]): CallResult {
    if (!this.dockerd) throw new Error('this lab has no dockerd (startClientsLab({ docker: true }))');
    // Debian's client, not whatever other `docker` comes first in PATH: it matches the daemon.
    // DOCKER_CONFIG: nothing of ours in ~/.docker.
    const env = { ...process.env, DOCKER_CONFIG: join(this.dir, 'docker', 'client') };
    return call('/usr/bin/docker', ['--host', `unix://${join(this.dir, 'docker', 'docker.sock')}`, ...args], env);
  }

  async startContainerd(): Promise<void> {
    const log = join(this.dir, 'containerd.log');
    this.containerd = startDaemon('containerd', ['--config', containerdConfig(this.dir)], log);
    await waitReady('containerd', this.containerd, log, () => this.ctr('version').status === 0);
  }

  async startDockerd(): Promise<void> {
    const log = join(this.dir, 'dockerd.log');
    this.dockerd = startDaemon('dockerd', dockerdArgs(this.dir, this.runtime, this.cgroupParent), log);
    await waitReady('dockerd', this.dockerd, log, () => this.docker('version', '--format', '{{.Server.Version}}').status === 0);
  }

  /** Builds the image and hands it to containerd (and dockerd when it runs). */
  importImage(): void {
    const tar = buildImageTar(join(this.dir, 'image'));
    const ctr = this.ctr('image', 'import', tar);
    if (ctr.status !== 0) throw new Error(`ctr image import failed: ${ctr.stderr}`);
    if (!this.dockerd) return;
    const docker = this.docker('load', '-i', tar);
    if (docker.status !== 0) throw new Error(`docker load failed: ${docker.stderr}`);
  }

  private inOurCgroups(cgroup: string): boolean {
    return cgroup.includes(`:${this.cgroupParent}/`);
  }

  /** Every process of the lab's making: in its cgroups or naming its dir. */
  private ourProcesses(): string[] {
    return processesWhere((cmd, cgroup) => this.inOurCgroups(cgroup) || cmd.includes(this.dir));
  }

  /** dockerd's runtime roots, <exec-root>/runtime-<name>. */
  private dockerRuntimeRoots(): string[] {
    const exec = join(this.dir, 'docker', 'exec');
    if (!existsSync(exec)) return [];
    return readdirSync(exec)
      .filter((e) => e.startsWith('runtime-'))
      .map((e) => join(exec, e));
  }

  leftovers(): Leftovers {
    // The daemons themselves name the dir (and dockerd the runtime) on their command lines.
    const daemons = new Set([this.containerd?.pid, this.dockerd?.pid].map(String));
    const parent = this.cgroupParent;
    return {
      processes: this.ourProcesses().filter((p) => !daemons.has(p.split(' ')[0]!)),
      cgroups: cgroupMounts().flatMap((m) =>
        subdirs(join(m, parent))
          .filter((rel) => rel.includes('/'))
          .map((rel) => join(m, parent, rel)),
      ),
      state: [this.runtimeRoot, ...this.dockerRuntimeRoots(), join(this.dir, 'containerd', 'state', 'io.containerd.runtime.v2.task')].flatMap(stateEntries),
      // dockerd bind-mounts its data root onto itself while it runs.
      mounts: mountsUnder(this.dir).filter((m) => m !== join(this.dir, 'docker', 'data')),
    };
  }

  remains(): Remains {
    return {
      processes: this.ourProcesses(),
      cgroups: cgroupMounts()
        .map((m) => join(m, this.cgroupParent))
        .filter((p) => existsSync(p)),
      dirs: [this.dir, ...FIXED_RUN_DIRS.filter((d) => !this.preexisting.has(d))].filter((d) => existsSync(d)),
      mounts: mountsUnder(this.dir),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.dockerd) removeDockerContainers((...a) => this.docker(...a));
    await stopDaemon(this.dockerd);
    if (this.containerd) removeCtrContainers((...a) => this.ctr(...a));
    await stopDaemon(this.containerd);
    // Safety nets for a failed run; a clean run leaves them nothing to do.
    for (const p of this.ourProcesses()) killPid(p);
    for (const m of mountsUnder(this.dir).reverse()) spawnSync('umount', ['-l', m]);
    removeCgroups(this.cgroupParent);
    rmSync(this.dir, { recursive: true, force: true });
    for (const d of FIXED_RUN_DIRS) if (!this.preexisting.has(d)) tryRmdir(d);
  }
}

/** Starts the lab: containerd with the image imported, and dockerd with it loaded when asked. */
export async function startClientsLab(options: LabOptions): Promise<ClientsLab> {
  assertRuntime(options.runtime);
  const lab = new Lab(options.runtime);
  try {
    await lab.startContainerd();
    if (options.docker) await lab.startDockerd();
    lab.importImage();
  } catch (e) {
    await lab.stop();
    throw e;
  }
  return lab;
}

/** Best effort: every docker container, forcibly. */
function removeDockerContainers(docker: (...args: string[]) => CallResult): void {
  const ids = docker('ps', '-aq').stdout.split('\n').filter(Boolean);
  if (ids.length > 0) docker('rm', '-f', ...ids);
}

/** Best effort: every task killed and deleted, every container deleted, in every namespace. */
function removeCtrContainers(ctr: (...args: string[]) => CallResult): void {
  const namespaces = ctr('namespaces', 'ls', '-q').stdout.split('\n').filter(Boolean);
  for (const ns of namespaces) {
    const tasks = ctr('-n', ns, 'task', 'ls', '-q').stdout.split('\n').filter(Boolean);
    for (const t of tasks) {
      ctr('-n', ns, 'task', 'kill', '-s', 'SIGKILL', t);
      ctr('-n', ns, 'task', 'delete', '-f', t);
    }
    const containers = ctr('-n', ns, 'container', 'ls', '-q').stdout.split('\n').filter(Boolean);
    if (containers.length > 0) ctr('-n', ns, 'container', 'delete', ...containers);
  }
}

/** SIGKILLs the process of a `processesWhere` line ("PID cmd"). */
function killPid(line: string): void {
  try {
    process.kill(Number(line.split(' ')[0]), 'SIGKILL');
  } catch {
    // already gone
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not empty (someone else's) or gone: not ours to force
  }
}

/** Removes the lab's cgroup parent in every hierarchy, deepest first (rmdir: only empty ones go). */
function removeCgroups(cgroupParent: string): void {
  for (const m of cgroupMounts()) {
    const root = join(m, cgroupParent);
    for (const rel of subdirs(root)) tryRmdir(join(root, rel));
    tryRmdir(root);
  }
}

/** What the daemons must not change on the host: firewall, links, forwarding, /etc/docker. */
export interface HostSnapshot {
  readonly nftRuleset: string;
  readonly links: string[];
  readonly ipForward: string;
  readonly etcDocker: string[];
}

export function hostSnapshot(): HostSnapshot {
  return {
    nftRuleset: mustCall('nft', ['list', 'ruleset']),
    links: mustCall('ip', ['-o', 'link', 'show'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1]!.trim())
      .sort(),
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    etcDocker: existsSync('/etc/docker') ? readdirSync('/etc/docker').sort() : [],
  };
}

/** Host PIDs listed by `ctr task ps` (header `PID INFO`, one process a line). */
export function parseTaskPids(out: string): number[] {
  return out
    .split('\n')
    .slice(1)
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** TASK -> STATUS from `ctr task ls` (columns TASK PID STATUS). */
export function parseTaskStatus(out: string): Map<string, string> {
  const status = new Map<string, string>();
  for (const line of out.split('\n').slice(1)) {
    const [task, , st] = line.trim().split(/\s+/);
    if (task && st) status.set(task, st);
  }
  return status;
}

/** The lines of /proc/PID/cgroup, one per hierarchy ("ID:controllers:path"). */
export function cgroupOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean);
}

/** Polls `pred` every 50 ms until it holds or `ms` pass; returns its last value. */
export async function until(pred: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(50);
  }
  return pred();
}

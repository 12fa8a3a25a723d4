// The container lifecycle: ownership (an owner's containers die with it, however it ends),
// detached containers driven from other processes, logs that never block, stop/kill/wait,
// init, exec, names. Networks live in a lab namespace made for this file.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, ContainerError, InvalidOptionError, Wait } from 'ctrkit';
import { Bridge, NetworkNamespace, NFT_TABLE } from 'ctrkit/network';
import { alive, eventually, rootfs, tempDir } from './helpers.js';

const dist = new URL('../dist', import.meta.url).pathname;
let lab: NetworkNamespace;
let bridge: Bridge;
let dir: string;
let cleanup = () => {};
const BRIDGE = `ctkl${process.pid % 10000}`;
const SUBNET = '10.78.0.0/24';

beforeAll(async () => {
  [dir, cleanup] = tempDir();
  for (const d of ['net', 'layers', 'root']) mkdirSync(join(dir, d));
  lab = await NetworkNamespace.create(`ctk-lc-${process.pid}`);
  bridge = await Bridge.create({ name: BRIDGE, subnet: SUBNET, netns: lab, stateDir: join(dir, 'net') });
});

afterAll(async () => {
  for (const c of await Container.list({ stateRoot: join(dir, 'root'), all: true })) await c.remove({ force: true });
  await bridge?.remove();
  await lab?.delete();
  cleanup();
});

const root = () => join(dir, 'root');
const natRules = async () => (await lab.exec(['nft', 'list', 'table', 'ip', NFT_TABLE])).stdout;
const leases = (): Record<string, unknown> => {
  const f = join(dir, 'net', 'ipam', `${BRIDGE}-${lab.inode}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { leases: Record<string, unknown> }).leases : {};
};

interface OwnerReport {
  containers: { id: string; pid: number; address: string; cgroup: { version: 1 | 2; path: string } }[];
}

/** Starts an owner process with two bridge containers, waits for its report, lets it end `end`. */
async function owner(end: string, port: number): Promise<{ report: OwnerReport; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
  const args = {
    dist,
    root: root(),
    rootfs,
    netns: lab.path,
    stateDir: join(dir, 'net'),
    layers: join(dir, 'layers'),
    bridge: BRIDGE,
    subnet: SUBNET,
    port,
    end,
  };
  const child = spawn(process.execPath, ['test/fixtures/lifecycle-owner.mjs', JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d;
  });
  const report = await new Promise<OwnerReport>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as OwnerReport);
    });
    void exited.then(() => reject(new Error(`the owner ended before reporting: ${err}`)));
  });
  return { report, exited };
}

function cgroupDir(cg: { version: 1 | 2; path: string }): string {
  return cg.version === 2 ? `/sys/fs/cgroup/unified/${cg.path}` : `/sys/fs/cgroup/memory/${cg.path}`;
}

describe('ownership', () => {
  const ends = ['SIGKILL', 'SIGTERM', 'SIGINT', 'exit', 'throw'] as const;
  it.each(ends.map((e, i) => [e, 18_100 + i] as const))(
    'an owner ended by %s takes its containers along within 2 s, and the port can be published again',
    async (end, port) => {
      const { report, exited } = await owner(end, port);
      expect(report.containers).toHaveLength(2);
      for (const c of report.containers) {
        expect(alive(c.pid)).toBe(true);
        expect(existsSync(cgroupDir(c.cgroup))).toBe(true);
      }
      expect(Object.keys(leases())).toEqual(expect.arrayContaining(report.containers.map((c) => c.address)));
      expect(await natRules()).toContain(`dport ${port}`);
      const status = await exited;
      if (end === 'exit') expect(status.code).toBe(3);
      else if (end === 'throw') expect(status.code).toBe(1);
      else expect(status.signal).toBe(end);
      // Within 2 s: no process, cgroup, record, layer, address lease or port rule of theirs is left.
      const gone = () =>
        report.containers.every((c) => !alive(c.pid) && !existsSync(cgroupDir(c.cgroup)) && !existsSync(join(root(), 'containers', c.id))) &&
        readdirSync(join(dir, 'layers')).length === 0 &&
        report.containers.every((c) => !(c.address in leases()));
      expect(await eventually(gone, 2000)).toBe(true);
      expect(await natRules().catch(() => '')).not.toContain(`dport ${port}`);
      // The port is free again.
      await using again = await Container.start({
        rootfs,
        stateRoot: root(),
        network: 'bridge',
        bridge,
        ports: [`${port}:80`],
        command: ['sleep', '30'],
        stdio: 'ignore',
        waitFor: Wait.forStarted(),
      });
      expect(again.mappedPort(80)).toBe(port);
    },
  );
});

describe('the default bridge', () => {
  it('goes with its last container — also when the owner is killed — leaving no bridge, nft table or ip_forward behind', async () => {
    const ns = await NetworkNamespace.create(`ctk-defbr-${process.pid}`);
    try {
      const sh = async (cmd: string) => (await ns.exec(['sh', '-c', cmd])).stdout.trim();
      // The default bridge's IPAM state and locks go under this file's state root, not /run/ctrkit.
      const env = { ...process.env, CTRKIT_STATE_ROOT: root() };
      const script = (end: string) => `const { Container } = await import('${dist}/index.js');
        const common = { rootfs: '${rootfs}', stateRoot: '${root()}', network: 'bridge', command: ['sleep', '60'], stdio: 'ignore' };
        const a = await Container.start(common);
        const b = await Container.start(common);
        console.log(a.address, b.address);
        ${end}`;
      // Removed one by one: the bridge stays while one is left, and goes with the last.
      const r = await ns.exec(
        [
          process.execPath,
          '--input-type=module',
          '-e',
          script(`await a.remove({ force: true });
        const { execFileSync } = await import('node:child_process');
        console.log(execFileSync('sh', ['-c', 'ip -o link show type bridge | wc -l'], { encoding: 'utf8' }).trim());
        await b.remove({ force: true });`),
        ],
        { timeoutMs: 60_000, env },
      );
      expect(r.stderr).toBe('');
      const [addresses, bridgesMidway] = r.stdout.trim().split('\n');
      expect(addresses).toMatch(/^10\.88\.0\.\d+ 10\.88\.0\.\d+$/);
      expect(bridgesMidway).toBe('1');
      expect(await sh('ip -o link show type bridge')).toBe('');
      expect(await sh('nft list tables')).toBe('');
      expect(await sh('cat /proc/sys/net/ipv4/ip_forward')).toBe('0');
      // The owner killed: its helper releases the containers, and the bridge goes with them.
      const k = await ns.exec([process.execPath, '--input-type=module', '-e', script("process.kill(process.pid, 'SIGKILL');")], { timeoutMs: 60_000, env });
      expect(k.signal).toBe('SIGKILL');
      let left = 'x';
      for (let i = 0; i < 100 && left !== ''; i++) {
        left = await sh('ip -o link show type bridge; nft list tables');
        if (left !== '') await new Promise((res) => setTimeout(res, 20));
      }
      expect(left).toBe('');
      expect(await sh('cat /proc/sys/net/ipv4/ip_forward')).toBe('0');
    } finally {
      await ns.delete();
    }
  });
});

describe('detached containers', () => {
  it("survive their creator and are listed, logged, exec'd, stopped and removed from another process", async () => {
    const script = `const { Container } = await import('${dist}/index.js');
      const c = await Container.start({ rootfs: '${rootfs}', stateRoot: '${root()}', detach: true, name: 'ctk-web', env: { GREETING: 'hello' }, cwd: '/tmp',
        command: ['sh', '-c', 'echo started; echo oops >&2; while true; do sleep 0.1; done'] });
      console.log(c.id);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0); // the creator is gone
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const c = await Container.get('ctk-web', { stateRoot: root() });
    expect(c.id).toBe(id);
    expect((await Container.get(id.slice(0, 12), { stateRoot: root() })).id).toBe(id);
    expect(await c.status()).toBe('running');
    expect((await Container.list({ stateRoot: root() })).map((x) => x.id)).toContain(id);
    const info = await c.inspect();
    expect(info).toMatchObject({ name: 'ctk-web', detached: true, status: 'running' });
    expect(info.ownerPid).not.toBe(process.pid);
    await eventually(() => true, 300);
    expect(await eventually(() => existsSync(info.logPath!) && readFileSync(info.logPath!, 'utf8').includes('oops'), 3000)).toBe(true);
    expect(await c.logs()).toBe('started\noops\n');
    expect(await c.logs({ streams: ['stderr'] })).toBe('oops\n');
    expect(await c.logs({ timestamps: true, tail: 1 })).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (started|oops)\n$/);
    // exec inherits the container's environment and working directory.
    const e = await c.exec({ command: ['sh', '-c', 'echo $GREETING; pwd; echo x >&2; exit 4'] });
    expect(e).toMatchObject({ exitCode: 4, stdout: 'hello\n/tmp\n', stderr: 'x\n' });
    expect((await c.exec({ command: ['pwd'], cwd: '/' })).stdout).toBe('/\n');
    // A running container is not removed without force; the name is taken meanwhile.
    await expect(c.remove()).rejects.toMatchObject({ code: 'ERR_CONTAINER_RUNNING' });
    await expect(Container.start({ rootfs, stateRoot: root(), name: 'ctk-web', command: ['true'] })).rejects.toBeInstanceOf(ContainerError);
    const pid = c.pid;
    const st = await c.stop({ timeout: 500 }); // sh as PID 1 ignores SIGTERM
    expect(st.signal).toBe('SIGKILL');
    expect(alive(pid)).toBe(false);
    expect(await c.status()).toBe('exited');
    expect(await c.logs({ tail: 1 })).toBe('oops\n'); // logs outlive the container
    await c.remove();
    await expect(Container.get('ctk-web', { stateRoot: root() })).rejects.toMatchObject({ code: 'ERR_NO_SUCH_CONTAINER' });
  });

  it('autoRemove drops the record once it exited', async () => {
    const c = await Container.start({ rootfs, stateRoot: root(), detach: true, autoRemove: true, command: ['sh', '-c', 'sleep 0.2; exit 7'] });
    expect(existsSync(c.stateDir)).toBe(true);
    await c.wait();
    expect(await eventually(() => !existsSync(c.stateDir), 2000)).toBe(true);
    await expect(Container.get(c.id, { stateRoot: root() })).rejects.toMatchObject({ code: 'ERR_NO_SUCH_CONTAINER' });
  });

  it('refuses options that cannot cross to the helper', async () => {
    await expect(Container.start({ rootfs, stateRoot: root(), detach: true, command: ['true'], onLog: () => undefined })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(Container.start({ rootfs, stateRoot: root(), detach: true, command: ['true'], stdio: 'pipe' })).rejects.toMatchObject({ option: 'stdio' });
  });
});

describe('logs never block', () => {
  it('a container writing 64 MiB nobody reads exits normally, and its last lines are in the log', async () => {
    await using c = await Container.start({
      rootfs,
      stateRoot: root(),
      command: ['sh', '-c', 'yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c 67108864; echo; echo the-end'],
    });
    const st = await c.wait();
    expect(st).toMatchObject({ exitCode: 0, signal: null });
    const tail = (await c.logs({ tail: 10 })).split('\n');
    expect(tail).toHaveLength(11);
    expect(tail[9]).toBe('the-end');
    // Bounded: the current file and one rotated one, 8 MiB each by default.
    const info = await c.inspect();
    const files = readdirSync(info.stateDir).filter((f) => f.startsWith('container.log'));
    expect(files.length).toBeLessThanOrEqual(2);
    for (const f of files) expect(readFileSync(join(info.stateDir, f)).length).toBeLessThan(9 * 1024 * 1024);
  });

  it('onLog and followLogs see lines as they come; stdio "pipe" still gives raw streams', async () => {
    const seen: string[] = [];
    await using c = await Container.start({
      rootfs,
      stateRoot: root(),
      command: ['sh', '-c', 'for i in 1 2 3; do echo n$i; sleep 0.05; done'],
      onLog: (l) => seen.push(l.text),
    });
    const followed: string[] = [];
    for await (const l of c.followLogs()) followed.push(`${l.stream}:${l.text}`);
    expect(followed).toEqual(['stdout:n1', 'stdout:n2', 'stdout:n3']);
    expect(seen).toEqual(['n1', 'n2', 'n3']);
    await using p = await Container.start({ rootfs, stateRoot: root(), command: ['echo', 'raw'], stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    for await (const d of p.stdout!) chunks.push(d as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('raw\n');
    await expect(p.logs()).rejects.toBeInstanceOf(ContainerError);
  });
});

describe('stop, kill, wait, init', () => {
  it('stop on a PID 1 that ignores SIGTERM returns after the timeout with SIGKILL', async () => {
    await using c = await Container.start({ rootfs, stateRoot: root(), command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    const t0 = Date.now();
    const st = await c.stop({ timeout: 1000 });
    const took = Date.now() - t0;
    expect(st.signal).toBe('SIGKILL');
    expect(took).toBeGreaterThanOrEqual(900); // the grace period was given (no upper bound: a busy machine is slow)
  });

  it('with init: true the same container stops on SIGTERM at once, and orphans are reaped', async () => {
    const zombies = async (init: boolean) => {
      await using c = await Container.start({ rootfs, stateRoot: root(), init, command: ['sh', '-c', '(sh -c "sleep 0.1 &"); exec sleep 60'] });
      await new Promise((r) => setTimeout(r, 600));
      const ps = await c.exec({ command: ['ps', '-o', 'stat,comm'] });
      // Without init, PID 1 is `sleep`, which has no SIGTERM handler: only SIGKILL ends it.
      const st = await c.stop({ timeout: init ? 10_000 : 300 });
      return { zombies: ps.stdout.split('\n').filter((l) => l.trim().startsWith('Z')).length, pid1: ps.stdout.split('\n')[1]?.trim(), st };
    };
    const without = await zombies(false);
    expect(without.zombies).toBe(1);
    const withInit = await zombies(true);
    expect(withInit.zombies).toBe(0);
    expect(withInit.pid1).toMatch(/init$/);
    expect(withInit.st).toMatchObject({ exitCode: 143, signal: null }); // tini: 128 + SIGTERM, no SIGKILL needed
    await expect(Container.start({ rootfs, init: '/nonexistent/tini', command: ['true'] })).rejects.toMatchObject({ option: 'init' });
  });

  it('kill sends a signal; wait resolves with the exit from any handle', async () => {
    await using c = await Container.start({ rootfs, stateRoot: root(), command: ['sh', '-c', 'trap "exit 42" USR1; while true; do sleep 0.1; done'] });
    const other = await Container.get(c.id, { stateRoot: root() });
    const waited = other.wait();
    await new Promise((r) => setTimeout(r, 200));
    expect(await c.kill('SIGUSR1')).toBe(true);
    expect(await waited).toMatchObject({ exitCode: 42 });
    expect(await c.kill('SIGKILL')).toBe(false);
  });
});

describe('options are checked before anything happens', () => {
  it('a bad port is refused before an image is pulled; input needs a stdin pipe', async () => {
    // A pull from that address would fail with a registry error: the option error proves the
    // ports were checked first.
    await expect(Container.start({ image: '127.0.0.1:1/nothing:here', network: 'bridge', bridge, ports: ['99999:80'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      option: 'ports',
    });
    await expect(Container.run({ rootfs, command: ['cat'], input: 'x', stdio: 'ignore' })).rejects.toMatchObject({ option: 'input' });
    await expect(Container.start({ rootfs, name: 'bad/name', command: ['true'] })).rejects.toMatchObject({ option: 'name' });
    expect(await Container.list({ stateRoot: root(), all: true }).then((l) => l.filter((c) => c.name === 'bad/name'))).toEqual([]);
  });

  it('Container.run leaves no record behind; ids never repeat', async () => {
    const before = await Container.list({ stateRoot: root(), all: true });
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await Container.run({ rootfs, stateRoot: root(), command: ['true'] });
      expect(r.exitCode).toBe(0);
    }
    expect((await Container.list({ stateRoot: root(), all: true })).length).toBe(before.length);
    for (let i = 0; i < 3; i++) {
      await using c = await Container.start({ rootfs, stateRoot: root(), command: ['true'] });
      ids.add(c.id);
    }
    expect(ids.size).toBe(3);
  });
});

import { spawnSync } from 'node:child_process';
import { constants, openSync, closeSync, readdirSync, readlinkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from 'ctrkit';
import { nsenter, unshare, type NamespacedProcess } from 'ctrkit/namespaces';
import { alive, eventually, ROOTLESS_USER, rootfs, rootlessPackageCopy, rootlessUid, tempDir } from './helpers.js';

/** Everything the program writes to its terminal, until the terminal hangs up. */
async function allOutput(p: NamespacedProcess): Promise<string> {
  const tty = p.tty!;
  let out = '';
  tty.setEncoding('utf8');
  tty.on('data', (d: string) => (out += d));
  await new Promise<void>((resolve, reject) => {
    tty.once('end', resolve);
    tty.once('error', reject);
  });
  return out;
}

/** Reads the terminal until `re` matches what came so far; resolves with all of it. */
function until(tty: Duplex, re: RegExp): Promise<string> {
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      if (re.test(out)) {
        tty.off('data', onData);
        resolve(out);
      }
    };
    tty.on('data', onData);
    tty.once('end', () => reject(new Error(`the terminal ended before ${re} appeared in: ${JSON.stringify(out)}`)));
  });
}

/** Lines as the terminal shows them (it turns \n into \r\n). */
const lines = (s: string) => s.replace(/\r/g, '').trim().split('\n');

/** Our own descriptors that are pty masters (a leak would show here). */
function ptmxFds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return /ptmx$/.test(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      return false;
    }
  }).length;
}

/** Piped stdout of a process, as one string, once it has exited. */
async function stdoutOf(p: NamespacedProcess): Promise<string> {
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  await p.exited;
  await new Promise((r) => setImmediate(r));
  return out;
}

describe("tty: a pseudo-terminal of the container's own", () => {
  it("is the command's stdin, stdout, stderr and controlling terminal, at the requested size", async () => {
    const masters = ptmxFds();
    await using p = await unshare({
      rootfs,
      tty: true,
      ttySize: { cols: 100, rows: 40 },
      command: [
        'sh',
        '-c',
        'tty; stty size; test -t 0 && echo isatty; test -t 2 && echo err-isatty; cut -d" " -f1,6 /proc/$$/stat; exec 3</dev/tty && echo ctty',
      ],
    });
    expect([p.stdin, p.stdout, p.stderr]).toEqual([null, null, null]);
    const out = lines(await allOutput(p));
    expect(out).toEqual(['/dev/pts/0', '40 100', 'isatty', 'err-isatty', '1 1', 'ctty']);
    expect(await p.exited).toEqual({ exitCode: 0, signal: null });
    // The terminal hung up when the command exited: the stream ended, and the master is closed.
    expect(await eventually(() => p.tty!.destroyed)).toBe(true);
    expect(ptmxFds()).toBe(masters);
  });

  it('delivers all the output of a command that exits right after writing it', async () => {
    await using p = await unshare({ rootfs, tty: true, command: ['seq', '1', '30000'] });
    const out = lines(await allOutput(p));
    expect(out).toHaveLength(30000);
    expect(out.at(-1)).toBe('30000');
  });

  it('resize() sets the size and the program gets SIGWINCH', async () => {
    await using p = await unshare({
      rootfs,
      tty: true,
      ttySize: { cols: 80, rows: 24 },
      command: ['sh', '-c', 'trap "stty size" WINCH; stty size; while :; do sleep 0.05; done'],
    });
    await until(p.tty!, /24 80\r\n/);
    p.resize(132, 50);
    await until(p.tty!, /50 132\r\n/);
    expect(() => p.resize(-1, 10)).toThrow(InvalidOptionError);
  });

  it("what is written to it is the program's keyboard input", async () => {
    await using p = await unshare({ rootfs, tty: true, command: ['sh', '-c', 'read x; echo got:$x'] });
    const out = allOutput(p);
    p.tty!.write('hello\r');
    const text = await out;
    // The line discipline echoes the input, and turns the typed \r into the \n read wants.
    expect(lines(text)).toEqual(['hello', 'got:hello']);
    expect((await p.exited).exitCode).toBe(0);
  });

  it('input larger than the terminal buffers waits for the program without blocking the event loop', async () => {
    await using p = await unshare({ rootfs, tty: true, command: ['sh', '-c', 'stty -echo; echo ready; sleep 0.5; wc -c'] });
    const out = allOutput(p);
    await until(p.tty!, /ready/);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const line = `${'x'.repeat(99)}\n`;
    const written = new Promise<void>((resolve, reject) => p.tty!.write(line.repeat(1000), (e) => (e ? reject(e) : resolve())));
    await written;
    clearInterval(timer);
    // The program slept through most of it: the kernel's buffers filled and we waited, polling.
    expect(ticks).toBeGreaterThan(10);
    p.tty!.write('\x04'); // ^D: end of input for wc
    expect(lines(await out)).toContain('100000');
    expect((await p.exited).exitCode).toBe(0);
  });

  it('^C from the keyboard interrupts the foreground program', async () => {
    await using p = await unshare({
      rootfs,
      tty: true,
      command: ['sh', '-c', 'trap "echo interrupted; exit 3" INT; echo ready; while :; do sleep 0.05; done'],
    });
    await until(p.tty!, /ready/);
    p.tty!.write('\x03');
    expect(await p.exited).toEqual({ exitCode: 3, signal: null });
  });

  it("only the container's own devpts instance is visible inside", async () => {
    // A pty of the host's, so that the host's /dev/pts is not empty.
    const hostPty = openSync('/dev/ptmx', constants.O_RDWR | constants.O_NOCTTY);
    try {
      const hostPts = readdirSync('/dev/pts');
      expect(hostPts.length).toBeGreaterThan(1);
      await using p = await unshare({ rootfs, tty: true, command: ['sh', '-c', 'ls -1 /dev/pts; stat -c %d /dev/pts/ptmx; ls -l /dev/ptmx'] });
      const out = lines(await allOutput(p));
      expect(out.slice(0, 2)).toEqual(['0', 'ptmx']);
      expect(Number(out[2])).not.toBe(statSync('/dev/pts/ptmx').dev);
      expect(out[3]).toMatch(/\/dev\/ptmx -> pts\/ptmx$/);
    } finally {
      closeSync(hostPty);
    }
  });

  it("works with a user namespace whose map leaves out the caller's uid", async () => {
    const map = [{ inside: 0, outside: 300000, count: 65536 }];
    await using p = await unshare({
      rootfs,
      tty: true,
      uidMap: map,
      gidMap: map,
      namespaces: ['user', 'pid', 'mnt', 'uts', 'ipc'],
      command: ['sh', '-c', 'tty; id -u; stat -c "%u %g %a" $(tty); test -t 1 && echo isatty'],
    });
    expect(lines(await allOutput(p))).toEqual(['/dev/pts/0', '0', '0 5 620', 'isatty']);
    expect((await p.exited).exitCode).toBe(0);
  });

  it('a non-root user owns its terminal', async () => {
    await using p = await unshare({ rootfs, tty: true, user: { uid: 1000, gid: 1000 }, command: ['sh', '-c', 'id -u; stat -c "%u %g" $(tty)'] });
    expect(lines(await allOutput(p))).toEqual(['1000', '1000 5']);
  });

  it("nsenter with a tty into a running container gets a pty of the container's instance", async () => {
    await using target = await unshare({ rootfs, command: ['sleep', '60'], stdio: 'ignore' });
    await using e = await nsenter({
      target: target.pid,
      tty: true,
      ttySize: { cols: 90, rows: 30 },
      command: ['sh', '-c', 'tty; stty size; ls -1 /dev/pts; cut -d" " -f1,6 /proc/$$/stat; ps -o pid,comm | grep -c sleep'],
    });
    const out = lines(await allOutput(e));
    expect(out.slice(0, 4)).toEqual(['/dev/pts/0', '30 90', '0', 'ptmx']);
    const [pid, sid] = out[4]!.split(' ');
    expect(sid).toBe(pid); // a session of its own
    expect(out[5]).toBe('1'); // the container's sleep, seen from its PID namespace
    expect((await e.exited).exitCode).toBe(0);
  });

  it('an nsenter tty into a container with a tty of its own gets the next pty', async () => {
    await using target = await unshare({ rootfs, tty: true, command: ['sh', '-c', 'echo up; sleep 60'] });
    await until(target.tty!, /up/);
    await using e = await nsenter({ target: target.pid, tty: true, command: ['sh', '-c', 'tty; ls -1 /dev/pts'] });
    expect(lines(await allOutput(e))).toEqual(['/dev/pts/1', '0', '1', 'ptmx']);
  });

  it('disposing a running process closes its terminal', async () => {
    const masters = ptmxFds();
    const p = await unshare({ rootfs, tty: true, command: ['sh', '-c', 'echo up; sleep 60'] });
    await until(p.tty!, /up/);
    expect(ptmxFds()).toBeGreaterThan(masters);
    await p[Symbol.asyncDispose]();
    expect(p.tty!.destroyed).toBe(true);
    expect(alive(p.pid)).toBe(false);
    expect(ptmxFds()).toBe(masters);
    // Input after the end goes nowhere, without an error; resize is a no-op.
    p.resize(10, 10);
  });

  it('a failure after the pty was allocated closes it', async () => {
    const masters = ptmxFds();
    await expect(unshare({ rootfs, tty: true, command: ['no-such-command'] })).rejects.toMatchObject({ code: 'ERR_COMMAND_NOT_FOUND' });
    await expect(unshare({ rootfs, tty: true, command: ['true'], cwd: '/missing' })).rejects.toMatchObject({ step: 'cwd' });
    expect(ptmxFds()).toBe(masters);
  });

  it('bad options are refused before anything starts', async () => {
    await expect(unshare({ rootfs, command: ['true'], ttySize: { cols: 80, rows: 24 } })).rejects.toMatchObject({ option: 'ttySize' });
    await expect(unshare({ rootfs, command: ['true'], tty: true, ttySize: { cols: 80.5, rows: 24 } })).rejects.toMatchObject({ option: 'ttySize.cols' });
    await expect(nsenter({ target: process.pid, command: ['true'], tty: true, ttySize: { cols: 80, rows: 70000 } })).rejects.toMatchObject({
      option: 'ttySize.rows',
    });
  });
});

describe('without a tty: a session of its own and no terminal', () => {
  it('create mode: the command leads its session, has no controlling terminal, and no /dev/tty', async () => {
    await using p = await unshare({
      rootfs,
      stdio: ['ignore', 'pipe', 'pipe'],
      command: ['sh', '-c', 'cut -d" " -f1,6,7 /proc/$$/stat; test -e /dev/tty || echo no-dev-tty; ls /dev/pts'],
    });
    const out = lines(await stdoutOf(p));
    // pid 1, session 1, tty_nr 0
    expect(out).toEqual(['1 1 0', 'no-dev-tty', 'ptmx']);
    expect(p.tty).toBeNull();
    p.resize(80, 24); // no-op
  });

  it('join mode: the same for a process entered with nsenter', async () => {
    await using target = await unshare({ rootfs, command: ['sleep', '60'], stdio: 'ignore' });
    await using e = await nsenter({
      target: target.pid,
      stdio: ['ignore', 'pipe', 'pipe'],
      command: ['sh', '-c', 'cut -d" " -f1,6,7 /proc/$$/stat; test -e /dev/tty || echo no-dev-tty'],
    });
    const out = lines(await stdoutOf(e));
    const [pid, sid, ttyNr] = out[0]!.split(' ');
    expect(sid).toBe(pid);
    expect(ttyNr).toBe('0');
    expect(out[1]).toBe('no-dev-tty');
  });

  it('a caller with a controlling terminal does not share it: /dev/tty is ENXIO in both modes', () => {
    const [dir, cleanup] = tempDir();
    try {
      const script = join(dir, 'caller.mjs');
      const result = join(dir, 'result.json');
      const dist = join(process.cwd(), 'dist/namespaces/index.js');
      // Without a rootfs the container sees the host's /dev/tty: ENXIO is then "no terminal",
      // where a shared session would have opened the caller's.
      const probe = 'cut -d" " -f6,7 /proc/$$/stat; exec 3</dev/tty && echo OPENED-THE-CALLERS-TTY';
      writeFileSync(
        script,
        `
        import { execFileSync } from 'node:child_process';
        import { writeFileSync } from 'node:fs';
        import { unshare, nsenter } from ${JSON.stringify(dist)};
        const collect = async (p) => { let out = ''; p.stdout.on('data', (d) => out += d); p.stderr.on('data', (d) => out += d); await p.exited; await new Promise((r) => setImmediate(r)); return out; };
        // The control: a plain child of ours does share our terminal.
        const control = execFileSync('sh', ['-c', ${JSON.stringify(probe)}], { encoding: 'utf8' });
        const created = await collect(await unshare({ namespaces: ['pid', 'mnt'], command: ['sh', '-c', ${JSON.stringify(probe)}] }));
        const target = await unshare({ namespaces: ['pid', 'mnt', 'uts'], command: ['sleep', '60'], stdio: 'ignore' });
        const joined = await collect(await nsenter({ target: target.pid, command: ['sh', '-c', ${JSON.stringify(probe)}] }));
        await target[Symbol.asyncDispose]();
        writeFileSync(${JSON.stringify(result)}, JSON.stringify({ control, created, joined }));
      `,
      );
      // script(1) runs the caller on a pty of its own, as its controlling terminal.
      const r = spawnSync('script', ['-qec', `${process.execPath} ${script}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const { control, created, joined } = JSON.parse(readFileSync(result, 'utf8')) as Record<string, string>;
      expect(control).toMatch(/OPENED-THE-CALLERS-TTY/);
      for (const out of [created!, joined!]) {
        const [session, ttyNr] = out.trim().split('\n')[0]!.split(' ');
        expect(ttyNr).toBe('0');
        expect(Number(session)).toBeGreaterThan(0);
        expect(out).toMatch(/No such device or address/);
        expect(out).not.toMatch(/OPENED/);
      }
    } finally {
      cleanup();
    }
  });
});

describe('rootless tty', () => {
  const uid = rootlessUid();
  let dir = '';
  let cleanup = () => {};
  beforeAll(() => {
    if (uid !== undefined) [dir, cleanup] = rootlessPackageCopy();
  });
  afterAll(() => cleanup());

  it.skipIf(uid === undefined)(`works for ${ROOTLESS_USER}, in create and join mode`, () => {
    const file = join(dir, 'tty-rootless.mjs');
    writeFileSync(
      file,
      `
      import { unshare, nsenter } from 'ctrkit/namespaces';
      const all = (p) => new Promise((resolve) => { let out = ''; p.tty.on('data', (d) => out += d); p.tty.on('end', () => resolve(out)); });
      const p = await unshare({ rootfs: ${JSON.stringify(rootfs)}, tty: true, ttySize: { cols: 70, rows: 20 }, command: ['sh', '-c', 'tty; stty size; id -u; test -t 0 && echo isatty; sleep 60'] });
      let first = '';
      await new Promise((resolve) => p.tty.on('data', (d) => { first += d; if (/isatty/.test(first)) resolve(); }));
      const e = await nsenter({ target: p.pid, tty: true, command: ['sh', '-c', 'tty; id -u'] });
      const joined = await all(e);
      await p[Symbol.asyncDispose]();
      console.log(JSON.stringify({ first, joined }));
    `,
      { mode: 0o644 },
    );
    const r = spawnSync(process.execPath, [file], {
      uid,
      gid: uid,
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` },
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { first: string; joined: string };
    expect(lines(json.first)).toEqual(['/dev/pts/0', '20 70', '0', 'isatty']);
    expect(lines(json.joined)).toEqual(['/dev/pts/1', '0']);
  });
});

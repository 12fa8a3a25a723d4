// Rootless networking through pasta, end to end, as the unprivileged user ctkuser. The user's
// scripts run inside a lab made for this file (test/network-lab.ts): a namespace that plays
// "the host", wired by a veth to one that plays "the outside" (198.51.100.0/24), with the
// host's default route via the outside namespace. pasta copies the lab host's address and
// route into each container, so whatever a container sends goes to the lab's outside
// namespace at most: nothing reaches this machine's own network.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rtnetlink } from 'ctrkit/network';
import { eventually, helperGone, processes, ROOTLESS_USER, rootlessPackageCopy, rootlessUid, tempDir } from './helpers.js';
import { createLab, HOST_IP, OUTSIDE_IP, type Lab } from './network-lab.js';

const uid = rootlessUid();
let dir = '';
let cleanup = () => {};
let www = '';
let cleanupWww = () => {};
let lab: Lab | undefined;
const servers: ChildProcess[] = [];

/** A pasta command line, as /proc/PID/cmdline shows it (spaces for NULs). */
const PASTA_CMD = /^(\S*\/)?pasta /;

/** pasta processes of the rootless user (no other test runs pasta as that user). */
function pastaProcesses(): string[] {
  return [...processes().entries()].filter(([pid, cmd]) => PASTA_CMD.test(cmd) && ownerOf(pid) === uid).map(([pid, cmd]) => `${pid} ${cmd}`);
}

/** True while the process runs: a zombie (pasta daemonizes: its reaper is init, in no hurry) does not. */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function ownerOf(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}

/** pasta's temporary directories the rootless user left in /tmp. */
function pastaTempDirs(): string[] {
  return readdirSync('/tmp').filter((d) => d.startsWith('ctk-pasta-') && statSync(join('/tmp', d), { throwIfNoEntry: false })?.uid === uid);
}

beforeAll(async () => {
  expect(uid, `user ${ROOTLESS_USER} must exist (npm run setup:test creates it)`).toBeDefined();
  expect(existsSync('/usr/bin/pasta'), 'pasta must be installed (npm run setup:test installs the passt package)').toBe(true);
  [dir, cleanup] = rootlessPackageCopy();
  [www, cleanupWww] = tempDir();
  spawnSync('chmod', ['-R', 'a+rX', www]);
  for (const [sub, body] of [
    ['outside', 'outside\n'],
    ['loopback', 'host-loopback\n'],
  ] as const) {
    spawnSync('mkdir', ['-m', '755', join(www, sub)]);
    writeFileSync(join(www, sub, 'index.html'), body, { mode: 0o644 });
  }
  lab = await createLab('p');
  {
    using rt = Rtnetlink.open({ netns: lab.host });
    rt.addRoute({ destination: 'default', gateway: OUTSIDE_IP, device: 'ctkup' });
  }
  // A server in the outside namespace, and one on the lab host's loopback only.
  servers.push(lab.outside.spawn('busybox', ['httpd', '-f', '-p', `${OUTSIDE_IP}:8000`, '-h', join(www, 'outside')], { stdio: 'ignore' }));
  servers.push(lab.host.spawn('busybox', ['httpd', '-f', '-p', '127.0.0.1:8001', '-h', join(www, 'loopback')], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 100));
});

afterAll(async () => {
  for (const s of servers) s.kill('SIGKILL');
  await lab?.dispose();
  cleanupWww();
  cleanup();
});

/** Runs an ES module as ROOTLESS_USER inside the lab's host namespace; it prints one JSON line. */
function asUser(code: string): { status: number | null; json: Record<string, unknown>; stderr: string } {
  const file = join(dir, `t-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code, { mode: 0o644 });
  const r = spawnSync('nsenter', [`--net=${lab!.host.path}`, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', process.execPath, file], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: `/home/${ROOTLESS_USER}` },
  });
  const last = r.stdout.trim().split('\n').pop() ?? '{}';
  return { status: r.status, json: JSON.parse(last || '{}') as Record<string, unknown>, stderr: r.stderr };
}

/** Script lines that print what the user left: containers, pasta processes are checked from here. */
const LEFT = `(await Container.list({ all: true })).map((c) => c.id)`;

describe('rootless networking: network pasta', () => {
  it('published ports carry real traffic from the host loopback into the container, which sees its own eth0', () => {
    const r = asUser(`
      import { readFileSync } from 'node:fs';
      import { Container } from 'ctrkit';
      const c = await Container.start({
        network: 'pasta',
        ports: ['80', '127.0.0.1:18080:8080', '0:81/udp'],
        command: ['sh', '-c', 'echo in-container > /tmp/index.html; httpd -p 8080 -h /tmp; exec httpd -f -p 80 -h /tmp'],
      });
      const out = { host: c.host, random: c.mappedPort(80), fixed: c.mappedPort(8080), udp: c.mappedPort(81, 'udp'), address: c.address, pasta: c.network.pasta.pid };
      out.body = await (await fetch('http://' + c.host + ':' + out.random + '/')).text();
      out.fixedBody = await (await fetch('http://127.0.0.1:18080/')).text();
      // Published on 127.0.0.1 only: the host's other address does not answer.
      out.other = await fetch('http://${HOST_IP}:' + out.random + '/').then(() => 'answered', (e) => e.cause?.code ?? e.message);
      // The UDP port is pasta's: binding it here fails (busybox has no UDP server to send to).
      const udp = (await import('node:dgram')).createSocket('udp4');
      out.udpBind = await new Promise((ok) => {
        udp.once('error', (e) => ok(e.code));
        udp.bind(out.udp, '127.0.0.1', () => ok('bound'));
      });
      udp.close();
      const view = await c.exec({ command: ['sh', '-c', 'ip -o -4 addr show eth0; ip route; cat /etc/hosts; id -u'] });
      out.view = view.stdout;
      out.pastaCmd = readFileSync('/proc/' + out.pasta + '/cmdline', 'utf8').replace(/\\0/g, ' ');
      out.ports = (await c.inspect()).ports;
      await c.remove({ force: true });
      // Gone, or a zombie that init has yet to reap (it daemonized): nothing of it runs.
      let stat = '';
      try { stat = readFileSync('/proc/' + out.pasta + '/stat', 'utf8'); } catch {}
      out.pastaState = stat ? stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) : 'gone';
      out.left = ${LEFT};
      console.log(JSON.stringify(out));
    `);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = r.json;
    expect(j.host).toBe('127.0.0.1');
    expect(j.random).toBeGreaterThan(1023);
    expect(j.fixed).toBe(18080);
    expect(j.udp).toBeGreaterThan(1023);
    expect(j.body).toBe('in-container\n');
    expect(j.fixedBody).toBe('in-container\n');
    expect(j.udpBind).toBe('EADDRINUSE');
    expect(j.other).toBe('ECONNREFUSED');
    // pasta's default: the host's address and default route, on a tap device named eth0.
    expect(j.address).toBe(HOST_IP);
    const view = String(j.view);
    expect(view).toMatch(new RegExp(`eth0\\s+inet ${HOST_IP.replace(/\./g, '\\.')}/24 `));
    expect(view).toContain(`default via ${OUTSIDE_IP} dev eth0`);
    expect(view).toContain(`${HOST_IP}\tcontainer`);
    expect(view.trim().split('\n').pop()).toBe('0');
    expect(j.ports).toEqual([
      { hostIp: '127.0.0.1', hostPort: j.random, containerPort: 80, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 18080, containerPort: 8080, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: j.udp, containerPort: 81, protocol: 'udp' },
    ]);
    // What pastaProcesses() looks for, so the checks for leftovers below see a live pasta.
    expect(j.pastaCmd).toMatch(PASTA_CMD);
    expect(j.pastaCmd).toContain(' -t 127.0.0.1/18080:8080 ');
    expect(['gone', 'Z']).toContain(j.pastaState);
    expect(j.left).toEqual([]);
    expect(pastaProcesses()).toEqual([]);
    expect(pastaTempDirs()).toEqual([]);
  });

  it("reaches out through pasta, but reaches the host's loopback only with hostLoopback", () => {
    const r = asUser(`
      import { Container } from 'ctrkit';
      // pasta 2023 answers a refused connection with silence, not a reset: the probe is cut after 2 s.
      const script = 'wget -q -O- http://${OUTSIDE_IP}:8000/; (wget -q -O- http://${OUTSIDE_IP}:8001/ 2>/dev/null & sleep 2; kill $! 2>/dev/null); echo end';
      const plain = await Container.run({ network: 'pasta', command: ['sh', '-c', script] });
      const mapped = await Container.run({ network: 'pasta', pasta: { hostLoopback: true }, command: ['sh', '-c', 'wget -q -O- http://${OUTSIDE_IP}:8001/'] });
      console.log(JSON.stringify({ plain: plain.stdout, mapped: mapped.stdout, mappedExit: mapped.exitCode, left: ${LEFT} }));
    `);
    expect(r.stderr).toBe('');
    // The outside server, reached from the container's own sockets through pasta ...
    expect(r.json.plain).toBe('outside\nend\n');
    // ... and the lab host's loopback-only server, at the gateway address, only when mapped.
    expect(r.json.mapped).toBe('host-loopback\n');
    expect(r.json.mappedExit).toBe(0);
    expect(r.json.left).toEqual([]);
    expect(pastaProcesses()).toEqual([]);
  });

  it('refuses what it cannot do with typed errors naming the fix, and leaves nothing', () => {
    const r = asUser(`
      import { createServer } from 'node:net';
      import { Container } from 'ctrkit';
      const taken = createServer();
      await new Promise((ok) => taken.listen(18090, '127.0.0.1', ok));
      const out = {};
      const cases = {
        bridge: { network: 'bridge' },
        ports: { network: 'none', ports: ['80'] },
        missing: { network: 'pasta', pasta: { binary: '/nonexistent/pasta' } },
        taken: { network: 'pasta', ports: ['127.0.0.1:18090:80'] },
        address: { network: 'pasta', pasta: { address: '10.0.2.300/24' } },
      };
      for (const [k, o] of Object.entries(cases)) {
        try {
          await Container.run({ ...o, command: ['true'] });
          out[k] = 'ran';
        } catch (e) {
          out[k] = { name: e.name, code: e.code, message: e.message };
        }
      }
      taken.close();
      out.left = ${LEFT};
      console.log(JSON.stringify(out));
    `);
    expect(r.stderr).toBe('');
    const j = r.json as Record<string, { name: string; code: string; message: string }>;
    expect(j.bridge).toMatchObject({ name: 'NetworkError', code: 'ERR_NETWORK_NEEDS_ROOT' });
    expect(j.bridge!.message).toMatch(/needs root.*network: 'pasta'.*passt/);
    expect(j.ports).toMatchObject({ name: 'InvalidOptionError', code: 'ERR_INVALID_OPTION' });
    expect(j.ports!.message).toMatch(/ports need bridge or cni networking \(or pasta, rootless\)/);
    expect(j.missing).toMatchObject({ name: 'NetworkError', code: 'ERR_NETWORK_PASTA_NOT_FOUND' });
    expect(j.missing!.message).toMatch(/install the passt package/);
    expect(j.taken).toMatchObject({ name: 'NetworkError', code: 'ERR_NETWORK_PORT_IN_USE' });
    expect(j.taken!.message).toContain('127.0.0.1:18090/tcp is in use');
    expect(j.address).toMatchObject({ name: 'InvalidOptionError', code: 'ERR_INVALID_OPTION' });
    expect(j.left).toEqual([]);
    expect(pastaProcesses()).toEqual([]);
    expect(pastaTempDirs()).toEqual([]);
  });

  it('a detached container keeps its pasta; the owner helper ends pasta when an owner is SIGKILLed', async () => {
    const r = asUser(`
      import { Container } from 'ctrkit';
      const d = await Container.start({ detach: true, network: 'pasta', ports: ['80'], command: ['sh', '-c', 'echo detached > /tmp/index.html; exec httpd -f -p 80 -h /tmp'] });
      const detached = await (await fetch('http://' + d.host + ':' + d.mappedPort(80) + '/')).text();
      await d.stop({ timeout: 1000 });
      await d.remove();
      const c = await Container.start({ network: 'pasta', ports: ['80'], command: ['sh', '-c', 'echo owned > /tmp/index.html; exec httpd -f -p 80 -h /tmp'] });
      const owned = await (await fetch('http://' + c.host + ':' + c.mappedPort(80) + '/')).text();
      console.log(JSON.stringify({ detached, owned, pasta: c.network.pasta.pid, init: c.pid, owner: process.pid }));
      process.kill(process.pid, 'SIGKILL');
    `);
    expect(r.status).toBe(null);
    expect(r.json).toMatchObject({ detached: 'detached\n', owned: 'owned\n' });
    const pasta = Number(r.json.pasta);
    const init = Number(r.json.init);
    expect(await eventually(() => !runs(pasta) && !runs(init), 10_000)).toBe(true);
    expect(await helperGone(Number(r.json.owner), 10_000)).toBe(true);
    expect(pastaProcesses()).toEqual([]);
    const after = asUser(`
      import { Container } from 'ctrkit';
      console.log(JSON.stringify({ left: ${LEFT} }));
    `);
    expect(after.json.left).toEqual([]);
  });

  it('the CLI gives a rootless caller pasta by default: ctrkit run -p', () => {
    const r = asUser(`
      import { execFileSync } from 'node:child_process';
      const out = execFileSync(process.execPath, ['node_modules/ctrkit/dist/cli/main.js', 'run', '--rm', '--rootfs', 'builtin', '-p', '18081:80', 'sh', '-c', 'ip -o -4 addr show eth0'], { encoding: 'utf8' });
      console.log(JSON.stringify({ out }));
    `);
    expect(r.stderr).toBe('');
    expect(String(r.json.out)).toMatch(new RegExp(`eth0\\s+inet ${HOST_IP.replace(/\./g, '\\.')}/24 `));
    expect(pastaProcesses()).toEqual([]);
  });

  it('pasta has no business with root: a root caller is told to use bridge', async () => {
    const { Container } = await import('ctrkit');
    await expect(Container.run({ network: 'pasta', command: ['true'] })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'network' });
  });
});

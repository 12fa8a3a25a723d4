// Chapter 5.1.2 — the namespace table's other four rows, each shown on its own:
//   UTS     hostname and domain name         CLONE_NEWUTS     2.6.19
//   IPC     System V IPC, POSIX queues       CLONE_NEWIPC     2.6.19
//   Cgroup  the cgroup root a process sees   CLONE_NEWCGROUP  4.6
//   Time    the monotonic and boot clocks    CLONE_NEWTIME    5.6
// Each run creates only the one namespace it shows (plus none other), with the host's own
// programs (hostname, ipcmk, ipcs, cat), like `unshare --uts` etc. would.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { text } from 'node:stream/consumers';
import { Container } from 'ctrkit';
import { namespaceInfo, unshare } from 'ctrkit/namespaces';

/** Runs `sh -c script` in new namespaces and returns what it printed. */
async function inside(script, options) {
  const p = await unshare({ command: ['sh', '-c', script], stdio: ['ignore', 'pipe', 'inherit'], ...options });
  const [out] = await Promise.all([text(p.stdout), p.exited]);
  return out.trim();
}
const row = (t) => {
  const i = namespaceInfo(t);
  return `${i.title.padEnd(6)} ${i.flagName.padEnd(15)} since ${i.since.padEnd(6)}`;
};
/** Keys of the System V message queues `ipcs -q` lists. */
const queueKeys = (out) =>
  out
    .split('\n')
    .filter((l) => /^0x[0-9a-f]+\s/.test(l))
    .map((l) => l.split(/\s+/)[0]);

// UTS: sethostname inside changes only the new namespace's name.
const before = hostname();
const uts = await inside('hostname ctk-uts-demo; hostname', { namespaces: ['uts'] });
console.log(`${row('uts')} hostname inside: ${uts}, on the host: ${hostname()} (unchanged: ${hostname() === before})`);

// IPC: a message queue made on the host is not there inside, and one made inside is not on the host.
const made = execFileSync('ipcmk', ['-Q'], { encoding: 'utf8' }).match(/(\d+)/)[1];
try {
  const hostKey = execFileSync('ipcs', ['-q'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(/\s+/))
    .find((f) => f[1] === made)[0];
  const insideOut = await inside('ipcmk -Q >/dev/null; ipcs -q', { namespaces: ['ipc'] });
  const insideKeys = queueKeys(insideOut);
  const hostKeys = queueKeys(execFileSync('ipcs', ['-q'], { encoding: 'utf8' }));
  console.log(
    `${row('ipc')} host queue ${hostKey} seen inside: ${insideKeys.includes(hostKey)}; inside: ${insideKeys.length} queue (${insideKeys.join(' ')}), seen on the host: ${insideKeys.some((k) => hostKeys.includes(k))}`,
  );
} finally {
  execFileSync('ipcrm', ['-q', made]);
}

// Cgroup: a container in its own cgroup (ctk-<id>, made and removed by ctrkit) reads
// /proc/self/cgroup as `/` with a cgroup namespace, and as its real path without one.
const cg = async (namespaces) => (await Container.run({ command: ['cat', '/proc/self/cgroup'], memory: '64m', namespaces })).stdout;
const memLine = (out) => out.split('\n').find((l) => /^\d+:memory:/.test(l));
console.log(
  `${row('cgroup')} /proc/self/cgroup with it: ${memLine(await cg(['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup']))}, without it: ${memLine(await cg(['pid', 'mnt', 'uts', 'ipc', 'net']))}`,
);

// Time: the boot-time and monotonic clocks get an offset (here +10 days); uptime reads boottime.
const days = 10;
const offset = days * 86400;
const hostUp = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const timeUp = Number((await inside('cat /proc/uptime', { namespaces: ['time'], timeOffsets: { boottime: offset, monotonic: offset } })).split(' ')[0]);
console.log(
  `${row('time')} uptime inside: ${timeUp.toFixed(0)} s, on the host: ${hostUp.toFixed(0)} s, difference: ${((timeUp - hostUp) / 86400).toFixed(2)} days (offset ${days} days)`,
);

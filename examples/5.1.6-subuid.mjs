// Chapter 5.1.6 — /etc/subuid: `user1:100000:65536` delegates host uids 100000-165535 to
// user1, for the user namespaces of user1's containers: uid 0-65535 inside = 100000-165535 outside.
//
// As a normal user, ctrkit reads your own line (newuidmap checks it too) and maps you to root
// inside and your range to uids 1 and up. Root needs no delegation (it may map any range), so
// as root this shows the line of the test user `ctkuser` (when there is one) and what ctrkit
// would map for it, then maps the chapter's range itself:
// uidMap [{ inside: 0, outside: 100000, count: 65536 }].
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Container } from 'ctrkit';
import { defaultIdMaps, readSubIds } from 'ctrkit/namespaces';

const show = (map) => map.map((m) => `${m.inside}:${m.outside}:${m.count}`).join(' ');
const asRoot = process.getuid() === 0;

// 1. Whose line: ours, or (as root) the test user's.
let who = { user: userInfo().username, uid: process.getuid(), gid: process.getgid() };
if (asRoot) {
  try {
    const id = (flag) => Number(execFileSync('id', [flag, 'ctkuser'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    who = { user: 'ctkuser', uid: id('-u'), gid: id('-g') };
    console.log('running as root, which may map any range without /etc/subuid; showing the test user ctkuser instead');
  } catch {
    console.log('running as root, which may map any range without /etc/subuid (and there is no user ctkuser to show)');
  }
}
const lines = (file) => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.split(':')[0] === who.user || l.split(':')[0] === String(who.uid));
  } catch {
    return [];
  }
};
for (const file of ['/etc/subuid', '/etc/subgid']) {
  const found = lines(file);
  console.log(`$ grep ${who.user} ${file}\n${found.length ? found.join('\n') : `(no line for ${who.user})`}`);
}
const ranges = readSubIds('/etc/subuid', who.user, who.uid);
console.log(`readSubIds: ${ranges.map((r) => `start ${r.start}, count ${r.count} (host uids ${r.start}-${r.start + r.count - 1})`).join('; ') || 'none'}`);
if (who.uid !== 0) {
  const maps = defaultIdMaps(who);
  console.log(`defaultIdMaps for ${who.user} (inside:outside:count): uid ${show(maps.uidMap)}, gid ${show(maps.gidMap)}`);
}

// 2. A container in a user namespace, with a host directory bound in to see ownership outside.
const map = [{ inside: 0, outside: 100000, count: 65536 }];
const uidMap = asRoot ? map : defaultIdMaps().uidMap;
console.log(`\ncontainer uid_map (inside:outside:count): ${show(uidMap)}${asRoot ? '' : " (ctrkit's default for you)"}`);
const dir = mkdtempSync(join(tmpdir(), 'ctk-subuid-'));
try {
  // Root inside is uid 100000 outside: give it the directory, as one would a volume.
  if (asRoot) chownSync(dir, 100000, 100000);
  const r = await Container.run({
    command: [
      'sh',
      '-c',
      [
        'echo "inside: $(id)"',
        'sed "s/^/uid_map: /" /proc/self/uid_map',
        'echo hello > /shared/created-by-root && ls -ln /shared | sed -n "s/^/inside:  /p" | grep created',
        'touch /shared/chowned-to-1000 && chown 1000:1000 /shared/chowned-to-1000 && echo "inside: chown 1000:1000 chowned-to-1000: ok"',
        // As root, ctrkit shows the image to the mapped root through an idmapped mount: its
        // files are root's inside, though nothing was chowned (rootless: unmapped, 65534).
        'ls -lnd /bin/busybox | sed "s/^/rootfs file, owned by host root: /"',
      ].join('; '),
    ],
    ...(asRoot ? { uidMap: map, gidMap: map } : {}),
    namespaces: ['user', 'pid', 'mnt', 'uts', 'ipc', 'net'],
    binds: [{ source: dir, target: '/shared' }],
  });
  process.stdout.write(r.stdout + r.stderr);
  for (const [name, inside] of [
    ['created-by-root', 0],
    ['chowned-to-1000', 1000],
  ]) {
    const st = statSync(join(dir, name));
    console.log(`outside: ${name} (uid ${inside} inside) is owned by uid ${st.uid}, gid ${st.gid}`);
  }
  if (r.exitCode !== 0) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

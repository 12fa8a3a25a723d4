// How ctrkit-runtime puts a container into a cgroup v2 cgroup, where a thread cannot join one
// alone: the runtime's process visits the cgroup while its spawner thread starts the init there,
// then leaves. Checked here with this hybrid host's v2 tree (/sys/fs/cgroup/unified), which has
// no resource controllers but is a v2 hierarchy all the same: the init ends up alone in the
// cgroup, the visitor back home, and the init's cgroup namespace rooted at its cgroup.
// (test/runtime-v2.test.ts runs the whole runtime on a pure v2 host whose procfs has pidns=.)
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rootfs, tempDir } from './helpers.js';

const unified = '/sys/fs/cgroup/unified';
const script = `
import { readFileSync, writeFileSync } from 'node:fs';
import { visitCgroup } from '../dist/runtime/v2-visit.js';
import { createHeld } from '../dist/namespaces/held.js';
import { mkfifo, exitNow } from '../dist/sys/spawn.js';
const [dir, fifo, rootfs, report] = process.argv.slice(1); // node -e: no script in argv
mkfifo(fifo, 0o600);
const visit = visitCgroup(dir, '${unified}');
const { pid } = await createHeld({ command: ['sh', '-c', 'grep ^0:: /proc/self/cgroup'], rootfs, stdio: 'inherit' }, fifo, { cgroupJoined: true });
visit.leave();
const v2 = (f) => readFileSync(f, 'utf8').split('\\n').find((l) => l.startsWith('0::'));
writeFileSync(report, JSON.stringify({ pid, procs: readFileSync(dir + '/cgroup.procs', 'utf8').trim(), self: v2('/proc/self/cgroup'), init: v2('/proc/' + pid + '/cgroup') }));
exitNow(0);
`;

describe.skipIf(!existsSync(`${unified}/cgroup.procs`) || process.env.CTRKIT_START_PATH === 'stage')('a v2 cgroup visited for a held start', () => {
  it('leaves the init alone in the cgroup, rooted there, and the visitor where it was', () => {
    const [tmp, cleanup] = tempDir();
    const dir = join(unified, `ctk-visit-${process.pid}`);
    mkdirSync(dir);
    try {
      const fifo = join(tmp, 'exec.fifo');
      const report = join(tmp, 'report.json');
      const out = join(tmp, 'out');
      // Files, not pipes, for its output: the init it leaves waiting inherits them.
      const fd = openSync(out, 'w');
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir, fifo, rootfs, report], { cwd: 'test', stdio: ['ignore', fd, fd] });
      closeSync(fd);
      expect(r.status, readFileSync(out, 'utf8')).toBe(0);
      const seen = JSON.parse(readFileSync(report, 'utf8')) as { pid: number; procs: string; self: string; init: string };
      expect(seen.procs).toBe(String(seen.pid)); // the init alone: the visitor left
      expect(seen.init).toBe(`0::/ctk-visit-${process.pid}`);
      expect(seen.self).not.toContain('ctk-visit');
      // Released, it sees its own cgroup as the root of its cgroup namespace, and ends.
      spawnSync('sh', ['-c', `exec 3>${fifo}`]);
      for (let i = 0; i < 100 && readFileSync(`${dir}/cgroup.procs`, 'utf8').trim() !== ''; i++) spawnSync('sleep', ['0.02']);
      expect(readFileSync(out, 'utf8')).toBe('0::/\n');
      expect(readFileSync(`${dir}/cgroup.procs`, 'utf8').trim()).toBe('');
    } finally {
      rmdirSync(dir);
      cleanup();
    }
  });
});

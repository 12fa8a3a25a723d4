/**
 * Chapter 5.2.3's example on whatever cgroup2 tree the host has. Runs here (hybrid: the tree
 * at /sys/fs/cgroup/unified has no resource controllers, but PSI files) and in the cgroup v2
 * VM lane (`npm run test:cgroup2`, or `bash scripts/cgroup2-vm.sh test/cgroup-v2-examples.test.ts`),
 * where memory.max and cpu.weight are there too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectCgroupLayout } from 'ctrkit/cgroups';

/** PSI is readable unless the kernel was booted with psi=0 (or lacks it). */
function psiOn(): boolean {
  try {
    return readFileSync('/proc/pressure/cpu', 'utf8').startsWith('some ');
  } catch {
    return false;
  }
}

describe("the chapter's 5.2.3 experiment (cgroup v2), as an example", () => {
  it('5.2.3: a v2 cgroup is one directory with cgroup.* files, the v2 path in /proc/self/cgroup, and *.pressure', async () => {
    const layout = await detectCgroupLayout();
    const out = execFileSync(process.execPath, ['examples/5.2.3-cgroup-v2.mjs'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (!layout.unified) {
      expect(out).toMatch(/^no cgroup2 hierarchy/m);
      return;
    }
    const root = layout.unified.path;
    expect(out).toContain(`layout: ${layout.mode}, cgroup2 at ${root}`);
    const files = out
      .split(/^\$ ls .*\n/m)[1]!
      .split('\n')[0]!
      .split(/\s+/);
    for (const f of ['cgroup.controllers', 'cgroup.subtree_control', 'cgroup.procs', 'cgroup.events']) expect(files).toContain(f);
    expect(out).toMatch(/^\/proc\/self\/cgroup of a process in it: 0::\/ctk-ex-\d+$/m);
    const controllers = readFileSync(`${root}/cgroup.subtree_control`, 'utf8');
    if (controllers.includes('memory')) expect(out).toMatch(/-> v2 \S+\/memory\.max: max$/m);
    else expect(out).toMatch(/memory\.max: absent \(the memory controller/);
    if (psiOn()) {
      for (const r of ['cpu', 'memory', 'io'])
        expect(out).toMatch(new RegExp(`^\\$ cat ${r}\\.pressure\\nsome avg10=[\\d.]+ avg60=[\\d.]+ avg300=[\\d.]+ total=\\d+$`, 'm'));
      expect(out).toMatch(/^pressure\(\): cpu\.some\.avg10=[\d.]+, memory\.full\.avg10=[\d.]+, io\.some\.total=\d+$/m);
    }
    expect(out).toMatch(/^removed: true$/m);
    expect(existsSync(`${root}/ctk-ex-${process.pid}`)).toBe(false);
  });
});

// 5.5, containers vs VMs: the example prints the chapter's table with this machine's numbers.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** QEMU processes started by the example (their -initrd is in its temp dir). */
function exampleVms(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.includes('ctk-vm-vs-container-') ? [cmd.replace(/\0/g, ' ')] : [];
      } catch {
        return [];
      }
    });
}

describe('5.5: containers vs VMs, measured', () => {
  it('starts 2 containers and 2 QEMU microVMs and prints the table with numbers in every row', () => {
    const out = execFileSync(process.execPath, ['examples/5.5-container-vs-vm.mjs'], {
      encoding: 'utf8',
      env: { ...process.env, CTK_N: '2' },
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 900_000,
    });
    expect(out).toMatch(/^VM accelerator: (kvm|tcg) \(.+\); each VM: QEMU microvm, 128M guest RAM, 1 vCPU, no network \(-nic none\)/m);
    // Two of each were measured.
    expect(out).toMatch(/^ {2}containers: \d+ m?s, \d+(\.\d+)? m?s$/m);
    expect(out).toMatch(/^ {2}VMs: +\d+(\.\d+)? m?s, \d+(\.\d+)? m?s( {2}\(\d start\(s\) abandoned and retried: .*\))?$/m);

    const table = out.split('\n').filter((l) => l.startsWith('|'));
    expect(table).toHaveLength(6); // header, separator, four rows
    const cells = table.map((l) =>
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
    expect(cells[0]).toEqual(['', 'container (ctrkit)', expect.stringMatching(/^VM \(QEMU microvm, (KVM|TCG)\)$/)]);
    expect(cells[1]!.every((c) => /^-+$/.test(c))).toBe(true);
    const rows = Object.fromEntries(cells.slice(2).map(([k, c, v]) => [k!.replace(/ \(.*$/, ''), { c: c!, v: v! }]));
    expect(Object.keys(rows)).toEqual(['isolation', 'start time to "ready"', 'host memory per instance, PSS', 'density in 1024 MiB']);
    // Every row has numbers on both sides.
    for (const { c, v } of Object.values(rows)) {
      expect(c).toMatch(/\d/);
      expect(v).toMatch(/\d/);
    }
    // The isolation row names the kernels: the host's for the container, the guest's own for the VM.
    const host = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    expect(rows.isolation!.c).toContain(`shares the host kernel ${host}`);
    expect(rows.isolation!.v).toMatch(/^own guest kernel \S+/);
    const toMs = (s: string) => (s.endsWith(' ms') ? Number(s.slice(0, -3)) : Number(s.slice(0, -2)) * 1000);
    expect(toMs(rows['start time to "ready"']!.c)).toBeGreaterThan(0);
    expect(toMs(rows['start time to "ready"']!.v)).toBeGreaterThan(0);
    const pss = (s: string) => Number(/^([\d.]+) MiB \(([\d.]+) MiB\)$/.exec(s)![1]);
    expect(pss(rows['host memory per instance, PSS']!.c)).toBeGreaterThan(0);
    expect(pss(rows['host memory per instance, PSS']!.v)).toBeGreaterThan(0);
    const density = (s: string) => Number(/^(\d+)/.exec(s)![1]);
    // Density follows from the memory row: floor(budget / PSS).
    expect(density(rows['density in 1024 MiB']!.v)).toBe(Math.floor(1024 / pss(rows['host memory per instance, PSS']!.v)));
    expect(out).toMatch(/^ {2}once per owning process, not per container: ctrkit's owner helper [\d.]+ MiB PSS/m);
    expect(out).toMatch(/^isolation, plainly: every container runs on the host's one kernel/m);

    // Nothing left: no VM of its, no temp dir.
    expect(exampleVms()).toEqual([]);
    expect(readdirSync('/tmp').filter((e) => e.startsWith('ctk-vm-vs-container-'))).toEqual([]);
  }, 900_000);
});

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { detectCgroupLayout } from 'ctrkit/cgroups';
import { interfacesOf } from 'ctrkit/network';
import { overlaySupported } from 'ctrkit/overlay';
import { unshare } from 'ctrkit/namespaces';

/** Runs an ES module in a fresh Node process and returns what it prints. */
function fresh(code: string): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }).trim();
}

describe('package layout', () => {
  const loadsKoffi = (specifier: string, call = '') =>
    fresh(`import * as m from '${specifier}'; ${call}
      import { readFileSync } from 'node:fs';
      console.log(readFileSync('/proc/self/maps', 'utf8').includes('koffi.node'));`);

  it('importing ctrkit/oci, ctrkit/cgroups or even ctrkit does not load the FFI layer', () => {
    expect(loadsKoffi('ctrkit/oci')).toBe('false');
    expect(loadsKoffi('ctrkit/cgroups')).toBe('false');
    expect(loadsKoffi('ctrkit')).toBe('false');
    // ...until a call needs it.
    expect(loadsKoffi('ctrkit', "await m.Container.run({ command: ['true'] });")).toBe('true');
  });

  it('every subpath resolves through the package exports, with types', () => {
    const pkg = JSON.parse(fresh("import p from 'ctrkit/package.json' with { type: 'json' }; console.log(JSON.stringify(p))")) as {
      exports: Record<string, { types?: string; import?: string }>;
      sideEffects: boolean;
    };
    expect(pkg.sideEffects).toBe(false);
    for (const sub of ['.', './namespaces', './cgroups', './overlay', './network', './oci', './monitor']) {
      expect(pkg.exports[sub]!.types, sub).toMatch(/\.d\.ts$/);
      const name = sub === '.' ? 'ctrkit' : `ctrkit/${sub.slice(2)}`;
      expect(Number(fresh(`const m = await import('${name}'); console.log(Object.keys(m).length)`)), name).toBeGreaterThan(0);
    }
  });
});

describe('small readers of the other blocks', () => {
  it("detects this machine's hybrid cgroup layout, and v1/v2 from sample mount tables", async () => {
    const here = await detectCgroupLayout();
    expect(['v1', 'v2', 'hybrid']).toContain(here.mode);
    expect(here.mounts.length).toBeGreaterThan(0);
    const v2 = await detectCgroupLayout('30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n');
    expect(v2.mode).toBe('v2');
    expect(v2.unified?.path).toBe('/sys/fs/cgroup');
    const v1 = await detectCgroupLayout('31 25 0:27 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n');
    expect(v1).toMatchObject({ mode: 'v1', mounts: [{ version: 1, path: '/sys/fs/cgroup/memory', controllers: ['memory'] }] });
    const hybrid = await detectCgroupLayout(
      '31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n',
    );
    expect(hybrid.mode).toBe('hybrid');
    expect(hybrid.mounts[0]!.controllers).toEqual(['cpu', 'cpuacct']);
  });

  it("lists the interfaces of a process's network namespace", async () => {
    const p = await unshare({ command: ['sleep', '10'], namespaces: ['net'], stdio: 'ignore' });
    try {
      expect((await interfacesOf(p.pid)).map((i) => i.name)).toEqual(['lo']);
    } finally {
      await p[Symbol.asyncDispose]();
    }
    expect((await interfacesOf('self')).length).toBeGreaterThan(1);
  });

  it('knows that this kernel has overlayfs', async () => {
    expect(await overlaySupported()).toBe(true);
  });
});

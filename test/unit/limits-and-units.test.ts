// Pure: Docker's resource flags mapped onto the cgroup setters, and the unit parsers under
// them. Nothing is created (cgroupFor only records the limits), so no root and no cgroupfs.
import { describe, expect, it } from 'vitest';
import { cgroupFor } from '../../src/container/limits.js';
import { ownCgroupV2, noV1Delegation } from '../../src/cgroups/delegation.js';
import { CgroupDelegationError, CgroupValueError } from '../../src/cgroups/errors.js';
import { cpusToQuota, parseBytes, sharesToWeight, weightToShares } from '../../src/cgroups/units.js';
import { InvalidOptionError } from '../../src/errors.js';

describe('cgroup units', () => {
  it('parses byte sizes as Docker does, and refuses the rest naming the file', () => {
    expect(parseBytes('512m', 'memory.max')).toBe(512 * 1024 ** 2);
    expect(parseBytes('1.5g', 'memory.max')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes(4096, 'memory.max')).toBe(4096);
    expect(parseBytes('max', 'memory.max')).toBe('max');
    expect(() => parseBytes('512x', 'memory.max')).toThrow(CgroupValueError);
    expect(() => parseBytes('512x', 'memory.max')).toThrow(/^memory\.max: invalid value "512x"/);
  });

  it('turns CPUs into a CFS quota and shares into weights (and back)', () => {
    expect(cpusToQuota(0.5, 100_000, 'cpu.max')).toBe(50_000);
    expect(cpusToQuota(2, 100_000, 'cpu.max')).toBe(200_000);
    expect(sharesToWeight(1024)).toBe(39);
    expect(weightToShares(sharesToWeight(1024))).toBeGreaterThan(900);
    expect(() => cpusToQuota(0, 100_000, 'cpu.max')).toThrow(CgroupValueError);
  });
});

describe('limits mapping (cgroupFor)', () => {
  it('maps memory, memorySwap (memory plus swap), cpus and pids', () => {
    const cg = cgroupFor('ctk-unit/a', { cgroupVersion: 2, memory: '512m', memorySwap: '1g', cpus: 0.5, pids: 64 });
    expect(cg.limits()).toMatchObject({
      memoryMax: 512 * 1024 ** 2,
      memorySwapMax: 512 * 1024 ** 2,
      cpuMax: { quotaUs: 50_000, periodUs: 100_000 },
      pidsMax: 64,
    });
  });

  it('refuses a swap limit without a memory limit, or below it', () => {
    expect(() => cgroupFor('ctk-unit/b', { cgroupVersion: 2, memorySwap: '1g' })).toThrow(InvalidOptionError);
    expect(() => cgroupFor('ctk-unit/b', { cgroupVersion: 2, memory: '1g', memorySwap: '512m' })).toThrow(/at least `memory`/);
  });

  it('refuses a device rate that is not DEVICE:RATE', () => {
    expect(() => cgroupFor('ctk-unit/c', { cgroupVersion: 2, deviceReadBps: ['10mb'] })).toThrow(/DEVICE:RATE/);
  });
});

describe('cgroup v2 delegation (the pure parts)', () => {
  it("reads the caller's cgroup from /proc/self/cgroup's 0:: line", () => {
    expect(ownCgroupV2('0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n')).toBe(
      '/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope',
    );
    expect(ownCgroupV2('12:memory:/x\n1:name=systemd:/y\n0::/ctk-user-1001/tests\n')).toBe('/ctk-user-1001/tests');
    expect(ownCgroupV2('0::\n')).toBe('/');
    expect(ownCgroupV2('12:memory:/x\n')).toBeUndefined();
  });

  it('refuses cgroup v1 with a typed error naming what to configure', () => {
    const e = noV1Delegation();
    expect(e).toBeInstanceOf(CgroupDelegationError);
    expect(e).toMatchObject({ name: 'CgroupDelegationError', code: 'ERR_CGROUP_NOT_DELEGATED', version: 1 });
    expect(e.message).toMatch(/systemd\.unified_cgroup_hierarchy=1/);
    expect(e.message).toContain('systemd-run --user --scope -p Delegate=yes');
  });
});

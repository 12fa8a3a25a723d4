// Pure: the device allow-list's rule checks and v1 semantics, as the BPF program and the v1
// controller both use them.
import { describe, expect, it } from 'vitest';
import {
  ACC_MKNOD,
  ACC_READ,
  ACC_WRITE,
  checkDeviceRule,
  DEFAULT_DEVICE_RULES,
  deviceAccessAllowed,
  formatDeviceRule,
  reduceDeviceRules,
} from '../../src/cgroups/device-rules.js';
import { CgroupValueError } from '../../src/cgroups/errors.js';

const allow = (r: (typeof DEFAULT_DEVICE_RULES)[number]) => checkDeviceRule(r, true);

describe('device rules', () => {
  it('formats rules as the v1 devices files read them', () => {
    expect(formatDeviceRule({ type: 'c', major: 1, minor: 3, access: 'rwm' })).toBe('c 1:3 rwm');
    expect(formatDeviceRule({ type: 'b', major: '*', minor: '*', access: 'm' })).toBe('b *:* m');
  });

  it('refuses out-of-range numbers, bad types and access, and a partial "a" rule', () => {
    expect(() => checkDeviceRule({ type: 'x' as 'c', major: 1, minor: 1, access: 'r' }, true)).toThrow(CgroupValueError);
    expect(() => checkDeviceRule({ type: 'c', major: 4096, minor: 1, access: 'r' }, true)).toThrow(/major number/);
    expect(() => checkDeviceRule({ type: 'c', major: 1, minor: 1, access: 'x' }, true)).toThrow(/r, w and m/);
    expect(() => checkDeviceRule({ type: 'a', major: 1, minor: '*', access: 'rwm' }, false)).toThrow(/all devices/);
  });

  it('the default list allows /dev/null and mknod of anything, and nothing else', () => {
    const set = reduceDeviceRules(DEFAULT_DEVICE_RULES.map(allow));
    expect(deviceAccessAllowed(set, 'c', 1, 3, ACC_READ | ACC_WRITE)).toBe(true); // /dev/null
    expect(deviceAccessAllowed(set, 'b', 8, 0, ACC_MKNOD)).toBe(true);
    expect(deviceAccessAllowed(set, 'b', 8, 0, ACC_READ)).toBe(false); // /dev/sda
    expect(deviceAccessAllowed(set, 'c', 136, 4, ACC_READ | ACC_WRITE)).toBe(true); // a pty
  });
});

/**
 * Device rules as the v1 devices controller understands them, and the one effective rule set
 * both backends enforce. The v2 program is generated from what this reduction leaves, so a
 * rule list means the same thing on a v1 and on a v2 host (runc's devices emulator does the
 * same for the same reason).
 */
import { CgroupValueError } from './errors.js';
import type { DeviceCgroupRule, DeviceRule } from './resources.js';

/**
 * The device rules runc adds to every container (libcontainer/specconv `AllowedDevices`),
 * in runc's order. Docker, containerd and Podman containers get exactly these unless told
 * otherwise:
 *
 * - `c *:* m`, `b *:* m`: mknod of any character or block device. Creating a node opens
 *   nothing: using it still needs a rule for its numbers. (runc's own comment calls this
 *   questionable; it is kept for compatibility, and so is it here. Leave these two out for
 *   a stricter set.)
 * - `c 1:3`, `1:8`, `1:7`, `5:0`, `1:5`, `1:9` `rwm`: null, random, full, tty, zero, urandom.
 * - `c 136:* rwm`: the pseudo-terminal secondaries (/dev/pts/N); `c 5:2 rwm`: /dev/ptmx.
 * - `c 10:200 rwm`: /dev/net/tun (removed in runc 1.2.0-rc1, restored for compatibility).
 *
 * Not in it: /dev/console 5:1 (runc allows the console through the terminal it sets up),
 * /dev/fuse 10:229, /dev/kmsg 1:11, and every block device.
 *
 * @example
 * ```ts
 * import { Cgroup, DEFAULT_DEVICE_RULES } from 'ctrkit/cgroups';
 * const cg = Cgroup.forHost('ctk-web').devicesDefault();        // the same as:
 * for (const rule of DEFAULT_DEVICE_RULES) cg.devicesAllow(rule);
 * ```
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze(
  (
    [
      { type: 'c', major: '*', minor: '*', access: 'm' },
      { type: 'b', major: '*', minor: '*', access: 'm' },
      { type: 'c', major: 1, minor: 3, access: 'rwm' },
      { type: 'c', major: 1, minor: 8, access: 'rwm' },
      { type: 'c', major: 1, minor: 7, access: 'rwm' },
      { type: 'c', major: 5, minor: 0, access: 'rwm' },
      { type: 'c', major: 1, minor: 5, access: 'rwm' },
      { type: 'c', major: 1, minor: 9, access: 'rwm' },
      { type: 'c', major: 136, minor: '*', access: 'rwm' },
      { type: 'c', major: 5, minor: 2, access: 'rwm' },
      { type: 'c', major: 10, minor: 200, access: 'rwm' },
    ] as const
  ).map((r) => Object.freeze({ ...r })),
);

/** Access bits, as both the v1 controller and `struct bpf_cgroup_dev_ctx` number them. @internal */
export const ACC_MKNOD = 1;
/** @internal */
export const ACC_READ = 2;
/** @internal */
export const ACC_WRITE = 4;
/** @internal */
export const ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE;

/** One exception of the effective set: a device class and the access bits it covers. @internal */
export interface DeviceException {
  readonly type: 'c' | 'b';
  readonly major: number | '*';
  readonly minor: number | '*';
  /** ACC_* bits. */
  readonly access: number;
}

/**
 * What a rule list comes down to, as the v1 controller keeps it: a default verdict and the
 * exceptions to it (allowed devices when the default denies, denied ones when it allows).
 * @internal
 */
export interface DeviceRuleSet {
  readonly defaultAllow: boolean;
  readonly exceptions: readonly DeviceException[];
}

/** `c 1:3 rwm`, as devices.allow takes it. @internal */
export function formatDeviceRule(rule: DeviceRule): string {
  return rule.type === 'a' ? 'a' : `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}

/** Access letters to ACC_* bits. @internal */
export function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access) bits |= ch === 'm' ? ACC_MKNOD : ch === 'r' ? ACC_READ : ch === 'w' ? ACC_WRITE : 0;
  return bits;
}

const isNumber = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/**
 * Checks one rule and returns a plain copy of it. Numbers are bounded by the kernel's dev_t
 * (12-bit major, 20-bit minor), which also keeps them exact as an eBPF immediate.
 * @internal
 */
export function checkDeviceRule(rule: DeviceRule, allow: boolean): DeviceCgroupRule {
  const file = allow ? 'devices.allow' : 'devices.deny';
  const { type, major, minor, access } = rule;
  if (type !== 'a' && type !== 'c' && type !== 'b') throw new CgroupValueError(file, type, '"a", "c" or "b"');
  if (major !== '*' && !isNumber(major, 4095)) throw new CgroupValueError(file, major, 'a major number from 0 to 4095, or "*"');
  if (minor !== '*' && !isNumber(minor, 1_048_575)) throw new CgroupValueError(file, minor, 'a minor number from 0 to 1048575, or "*"');
  if (typeof access !== 'string' || !/^[rwm]{1,3}$/.test(access)) throw new CgroupValueError(file, access, 'a combination of r, w and m');
  // The v1 kernel reads "a" alone and ignores the rest: a narrower "a" rule would silently mean all.
  if (type === 'a' && (major !== '*' || minor !== '*' || accessBits(access) !== ACC_ALL)) {
    throw new CgroupValueError(file, `${type} ${major}:${minor} ${access}`, '"a" only as { type: "a", major: "*", minor: "*", access: "rwm" } (all devices)');
  }
  return { type, major, minor, access, allow };
}

const keyOf = (e: { type: string; major: number | '*'; minor: number | '*' }) => `${e.type} ${e.major}:${e.minor}`;

/**
 * Applies rules in order, starting from "deny everything", with the v1 controller's
 * semantics: an `a` rule resets the default and drops the exceptions; a rule of the default's
 * own verdict removes access from the exception with exactly its numbers; the other verdict
 * adds (or widens) an exception.
 *
 * v1 silently ignores removing part of a wildcard exception (`allow c *:* m`, then `deny
 * c 1:3 m` leaves 1:3 creatable). That rule is refused here instead, as runc refuses it, so
 * nobody believes in a restriction that is not there.
 * @internal
 */
export function reduceDeviceRules(rules: readonly DeviceCgroupRule[]): DeviceRuleSet {
  let defaultAllow = false;
  const exceptions = new Map<string, DeviceException>();
  for (const rule of rules) {
    if (rule.type === 'a') {
      defaultAllow = rule.allow;
      exceptions.clear();
      continue;
    }
    const key = keyOf(rule);
    const bits = accessBits(rule.access);
    const current = exceptions.get(key);
    if (rule.allow !== defaultAllow) {
      exceptions.set(key, { type: rule.type, major: rule.major, minor: rule.minor, access: (current?.access ?? 0) | bits });
      continue;
    }
    for (const wider of [
      { ...rule, major: '*' as const },
      { ...rule, minor: '*' as const },
      { ...rule, major: '*' as const, minor: '*' as const },
    ]) {
      const w = exceptions.get(keyOf(wider));
      if (keyOf(wider) !== key && w && (w.access & bits) !== 0) {
        throw new CgroupValueError(
          rule.allow ? 'devices.allow' : 'devices.deny',
          formatDeviceRule(rule),
          `a rule that does not cut into the wider rule "${keyOf(w)}" set before it (the v1 controller would ignore it silently)`,
        );
      }
    }
    if (!current) continue;
    const left = current.access & ~bits;
    if (left === 0) exceptions.delete(key);
    else exceptions.set(key, { ...current, access: left });
  }
  return { defaultAllow, exceptions: [...exceptions.values()] };
}

/**
 * The verdict of a rule set for one access, as the v1 controller decides it: with a deny
 * default, one exception must cover the whole access; with an allow default, no exception
 * may share any bit of it. The eBPF program must agree with this everywhere.
 * @internal
 */
export function deviceAccessAllowed(set: DeviceRuleSet, type: 'c' | 'b', major: number, minor: number, access: number): boolean {
  const hits = set.exceptions.filter((e) => e.type === type && (e.major === '*' || e.major === major) && (e.minor === '*' || e.minor === minor));
  return set.defaultAllow ? !hits.some((e) => (e.access & access) !== 0) : hits.some((e) => (access & ~e.access) === 0);
}

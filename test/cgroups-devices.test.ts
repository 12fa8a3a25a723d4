// Device access control: the rule reduction and the eBPF program (pure, checked by a small
// interpreter here), the kernel's verifier accepting every program, and, on cgroup v2 (this
// machine's unified tree, and the pure-v2 VM of scripts/cgroup2-vm.sh), a real process that
// can use /dev/null but not a block device. Everything made here is named ctk-devtest-* and
// removed in `finally`, and the last test checks that nothing is left.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cgroup, CgroupValueError, DEFAULT_DEVICE_RULES, detectCgroupLayout, type CgroupV2, type DeviceCgroupRule, type DeviceRule } from 'ctrkit/cgroups';
import { deviceProgram } from '../src/cgroups/device-bpf.js';
import { deviceAccessAllowed, formatDeviceRule, reduceDeviceRules } from '../src/cgroups/device-rules.js';
import { detachDeviceFilters } from '../dist/cgroups/device-filter.js';
import { BPF_PROG_TYPE_CGROUP_DEVICE, progFdById, progLoad } from '../src/sys/bpf.js';

const layout = await detectCgroupLayout();
const v2Root = layout.unified?.path;
const isRoot = process.getuid?.() === 0;
let n = 0;
const name = () => `ctk-devtest-${process.pid}-${++n}`;

const MKNOD = 1,
  READ = 2,
  WRITE = 4;
const allow = (r: DeviceRule): DeviceCgroupRule => ({ ...r, allow: true });
const deny = (r: DeviceRule): DeviceCgroupRule => ({ ...r, allow: false });
const c = (major: number | '*', minor: number | '*', access: string): DeviceRule => ({ type: 'c', major, minor, access });
const b = (major: number | '*', minor: number | '*', access: string): DeviceRule => ({ type: 'b', major, minor, access });
const ALL: DeviceRule = { type: 'a', major: '*', minor: '*', access: 'rwm' };
/** The defaults without runc's "mknod anything" pair: what a stricter runtime would use. */
const STRICT = DEFAULT_DEVICE_RULES.filter((r) => !(r.major === '*' && r.access === 'm'));

/**
 * Runs a BPF_PROG_TYPE_CGROUP_DEVICE program on one access, the way the kernel would: the
 * context is { access_type = access << 16 | type, major, minor }. Knows exactly the opcodes a
 * device program needs and fails on any other, on backward jumps (no loops) and on reading a
 * register before it is written.
 */
function runProgram(prog: Buffer, type: 'b' | 'c', major: number, minor: number, access: number): number {
  const ctx = [((access << 16) | (type === 'b' ? 1 : 2)) >>> 0, major, minor];
  const reg: (number | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  const ctxPointer = -1; // r1 holds the context pointer until it is overwritten
  reg[1] = ctxPointer;
  const get = (r: number, pc: number) => {
    const v = reg[r];
    if (v === undefined) throw new Error(`r${r} read before written at ${pc}`);
    return v;
  };
  for (let pc = 0, steps = 0; pc < prog.length / 8; pc++, steps++) {
    if (steps > 4096) throw new Error('no exit');
    const code = prog.readUInt8(pc * 8);
    const dst = prog.readUInt8(pc * 8 + 1) & 0xf;
    const src = prog.readUInt8(pc * 8 + 1) >> 4;
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = prog.readInt32LE(pc * 8 + 4);
    if (off < 0) throw new Error(`backward jump at ${pc}`);
    switch (code) {
      case 0x61: // ldxw dst, [src + off]
        if (get(src, pc) !== ctxPointer || off % 4 !== 0 || off > 8) throw new Error(`bad load at ${pc}`);
        reg[dst] = ctx[off / 4];
        break;
      case 0x54:
        reg[dst] = (get(dst, pc) & imm) >>> 0;
        break;
      case 0x74:
        reg[dst] = get(dst, pc) >>> imm;
        break;
      case 0xb4:
        reg[dst] = imm >>> 0;
        break;
      case 0xbc:
        reg[dst] = get(src, pc) >>> 0;
        break;
      case 0x15:
        if (get(dst, pc) === imm) pc += off;
        break;
      case 0x55:
        if (get(dst, pc) !== imm) pc += off;
        break;
      case 0x5d:
        if (get(dst, pc) !== get(src, pc)) pc += off;
        break;
      case 0x95:
        return get(0, pc);
      default:
        throw new Error(`opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end');
}

const RULE_SETS: Record<string, DeviceCgroupRule[]> = {
  'runc defaults': DEFAULT_DEVICE_RULES.map(allow),
  'strict (no mknod wildcards)': STRICT.map(allow),
  'nothing at all': [],
  'allow-all with denials': [allow(ALL), deny(c(1, 5, 'r')), deny(b('*', '*', 'w')), deny(c(10, '*', 'rwm'))],
  'partial access and merging': [allow(c(1, 3, 'r')), allow(c(1, 3, 'w')), allow(b(7, '*', 'm')), allow(c('*', 11, 'w')), deny(c(1, 3, 'w'))],
  'reset by a later "a"': [allow(c(1, 3, 'rwm')), allow(ALL), deny(ALL), allow(c(1, 9, 'r'))],
};

describe('device rules and the eBPF program (pure)', () => {
  it("DEFAULT_DEVICE_RULES is runc's AllowedDevices, in runc's order", () => {
    expect(DEFAULT_DEVICE_RULES.map(formatDeviceRule)).toEqual([
      'c *:* m',
      'b *:* m',
      'c 1:3 rwm',
      'c 1:8 rwm',
      'c 1:7 rwm',
      'c 5:0 rwm',
      'c 1:5 rwm',
      'c 1:9 rwm',
      'c 136:* rwm',
      'c 5:2 rwm',
      'c 10:200 rwm',
    ]);
    expect(Object.isFrozen(DEFAULT_DEVICE_RULES) && Object.isFrozen(DEFAULT_DEVICE_RULES[0])).toBe(true);
  });

  it('encodes struct bpf_insn like runc: the context loads, then one block per rule', () => {
    const prog = deviceProgram([allow(c(1, 3, 'rwm'))]);
    const hex = (i: number) => prog.subarray(i * 8, i * 8 + 8).toString('hex');
    // code, dst|src<<4, off (le16), imm (le32)
    expect([0, 1, 2, 3, 4, 5].map(hex)).toEqual([
      '6112000000000000', // r2 = *(u32 *)(r1 + 0)
      '54020000ffff0000', // w2 &= 0xffff          (type)
      '6113000000000000', // r3 = *(u32 *)(r1 + 0)
      '7403000010000000', // w3 >>= 16             (access)
      '6114040000000000', // r4 = *(u32 *)(r1 + 4) (major)
      '6115080000000000', // r5 = *(u32 *)(r1 + 8) (minor)
    ]);
    expect([6, 7, 8, 9, 10, 11, 12].map(hex)).toEqual([
      '5502040002000000', // if r2 != CHAR goto +4
      '5504030001000000', // if r4 != 1 goto +3
      '5505020003000000', // if r5 != 3 goto +2
      'b400000001000000', // w0 = 1
      '9500000000000000', // exit
      'b400000000000000', // w0 = 0 (the default: deny)
      '9500000000000000', // exit
    ]);
    expect(prog.length).toBe(13 * 8);
  });

  it('the runc defaults allow what a container needs and nothing more', () => {
    const prog = deviceProgram(DEFAULT_DEVICE_RULES.map(allow));
    const ok = (t: 'b' | 'c', maj: number, min: number, acc: number) => runProgram(prog, t, maj, min, acc) === 1;
    expect(ok('c', 1, 3, READ | WRITE)).toBe(true); //     /dev/null
    expect(ok('c', 1, 5, READ)).toBe(true); //             /dev/zero
    expect(ok('c', 136, 7, READ | WRITE)).toBe(true); //   /dev/pts/7
    expect(ok('c', 5, 2, READ | WRITE)).toBe(true); //     /dev/ptmx
    expect(ok('c', 1, 11, WRITE)).toBe(false); //          /dev/kmsg
    expect(ok('c', 10, 229, READ | WRITE)).toBe(false); // /dev/fuse
    expect(ok('c', 5, 1, READ | WRITE)).toBe(false); //    /dev/console
    expect(ok('b', 7, 0, READ)).toBe(false); //            /dev/loop0
    expect(ok('b', 8, 0, WRITE)).toBe(false); //           /dev/sda
    expect(ok('b', 8, 0, MKNOD)).toBe(true); //            mknod: runc allows any
    expect(ok('b', 8, 0, MKNOD | READ)).toBe(false); //    ... but not with more
    const strict = deviceProgram(STRICT.map(allow));
    expect(runProgram(strict, 'b', 8, 0, MKNOD)).toBe(0);
    expect(runProgram(strict, 'c', 1, 3, MKNOD)).toBe(1);
  });

  it('agrees with the v1 controller semantics on every type, number and access', () => {
    for (const [label, rules] of Object.entries(RULE_SETS)) {
      const prog = deviceProgram(rules);
      const set = reduceDeviceRules(rules);
      const numbers = [0, 1, 3, 5, 7, 8, 9, 10, 11, 136, 200, 229, 4095, 1048575];
      for (const t of ['b', 'c'] as const) {
        for (const maj of numbers) {
          for (const min of numbers) {
            for (let acc = 1; acc <= 7; acc++) {
              const got = runProgram(prog, t, maj, min, acc);
              const want = deviceAccessAllowed(set, t, maj, min, acc) ? 1 : 0;
              if (got !== want) throw new Error(`${label}: ${t} ${maj}:${min} access ${acc}: program says ${got}, rules say ${want}`);
            }
          }
        }
      }
    }
    // A few verdicts written out by hand, so the reference itself is checked too.
    const denials = reduceDeviceRules(RULE_SETS['allow-all with denials']!);
    expect(deviceAccessAllowed(denials, 'c', 1, 5, READ)).toBe(false);
    expect(deviceAccessAllowed(denials, 'c', 1, 5, WRITE)).toBe(true);
    expect(deviceAccessAllowed(denials, 'c', 1, 5, READ | WRITE)).toBe(false); // any overlap denies
    expect(deviceAccessAllowed(denials, 'b', 8, 0, READ)).toBe(true);
    const partial = reduceDeviceRules(RULE_SETS['partial access and merging']!);
    expect(deviceAccessAllowed(partial, 'c', 1, 3, READ)).toBe(true);
    expect(deviceAccessAllowed(partial, 'c', 1, 3, WRITE)).toBe(false); // removed again by the deny
    expect(deviceAccessAllowed(partial, 'c', 4, 11, WRITE)).toBe(true);
    expect(deviceAccessAllowed(partial, 'c', 4, 11, READ | WRITE)).toBe(false); // must be covered whole
    const reset = reduceDeviceRules(RULE_SETS['reset by a later "a"']!);
    expect([deviceAccessAllowed(reset, 'c', 1, 3, READ), deviceAccessAllowed(reset, 'c', 1, 9, READ)]).toEqual([false, true]);
  });

  it('refuses rules the kernel would misread, in the setter, on both versions', () => {
    const cg = () => Cgroup.v2('ctk-devtest-x', { root: '/tmp' });
    expect(() =>
      cg()
        .devicesDefault()
        .devicesDeny(c(1, 3, 'm')),
    ).toThrow(/cut into the wider rule "c \*:\*"/);
    expect(() =>
      cg()
        .devicesDefault()
        .devicesDeny(c(1, 3, 'm')),
    ).toThrow(CgroupValueError);
    expect(() => cg().devicesAllow({ type: 'a', major: '*', minor: '*', access: 'r' })).toThrow(/"a" only as/);
    expect(() => cg().devicesAllow(c(4096, 0, 'r'))).toThrow(/major number from 0 to 4095/);
    expect(() => cg().devicesAllow(c(1, -1, 'r'))).toThrow(/minor number/);
    expect(() => cg().devicesAllow(c(1, 3, 'x'))).toThrow(/r, w and m/);
    // Narrowing a rule with exactly the same numbers is what v1 does too: allowed.
    expect(
      cg()
        .devicesAllow(c(1, 3, 'rwm'))
        .devicesDeny(c(1, 3, 'w'))
        .limits().devices,
    ).toEqual([allow(c(1, 3, 'rwm')), deny(c(1, 3, 'w'))]);
  });
});

describe.runIf(isRoot)("the kernel's verifier", () => {
  it('accepts the program of every rule set', () => {
    for (const [label, rules] of Object.entries(RULE_SETS)) {
      const r = progLoad(BPF_PROG_TYPE_CGROUP_DEVICE, deviceProgram(rules), 'MIT', 'ctk_devtest');
      expect(r, label).toHaveProperty('fd');
      if ('fd' in r) closeSync(r.fd);
    }
  });

  it('refuses a broken program and the error carries its log', () => {
    const exitOnly = Buffer.from('9500000000000000', 'hex'); // exit without setting r0
    const r = progLoad(BPF_PROG_TYPE_CGROUP_DEVICE, exitOnly, 'MIT', 'ctk_devtest');
    expect(r).toMatchObject({ errno: 13 }); // EACCES
    expect('log' in r && r.log).toMatch(/R0 !read_ok/);
  });
});

/** A process in `cg` that tries each access (open, open and read, open for writing, mknod) and reports "ok" or the errno name. */
async function probe(
  cg: CgroupV2,
  checks: Record<string, { op: 'open' | 'read' | 'write' | 'mknod'; path: string; node?: string }>,
): Promise<Record<string, string>> {
  // The child waits on stdin until it has been moved into the cgroup: every access it makes
  // after that is decided by the cgroup's device program.
  const script = `
    const fs = require('fs'), { spawnSync } = require('child_process');
    process.stdin.once('data', () => {
      const out = {};
      for (const [k, c] of Object.entries(JSON.parse(process.argv[1]))) {
        if (c.op === 'mknod') {
          const r = spawnSync('mknod', [c.path, ...c.node.split(' ')], { encoding: 'utf8' });
          out[k] = r.status === 0 ? 'ok' : /Operation not permitted/.test(r.stderr) ? 'EPERM' : r.stderr.trim();
          continue;
        }
        try {
          const fd = fs.openSync(c.path, c.op === 'write' ? 'w' : 'r');
          if (c.op === 'read') fs.readSync(fd, Buffer.alloc(4), 0, 4, null);
          fs.closeSync(fd);
          out[k] = 'ok';
        } catch (e) { out[k] = e.code; }
      }
      process.stdout.write(JSON.stringify(out));
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify(checks)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    await cg.addProcess(child.pid!);
    child.stdin.write('go\n');
    expect(await exited).toBe(0);
  } finally {
    child.kill('SIGKILL');
  }
  return JSON.parse(out) as Record<string, string>;
}

/** Major and minor of a device node. */
function numbers(path: string): [number, number] {
  const rdev = statSync(path).rdev;
  return [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >>> 12) & ~0xff)];
}

async function gone(id: number): Promise<boolean> {
  // Programs are freed by a kernel worker shortly after their last reference goes.
  for (let i = 0; i < 500; i++) {
    try {
      closeSync(progFdById(id));
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return true;
      throw e;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

describe.runIf(isRoot && v2Root !== undefined)(`cgroup v2 device programs on a live process (${v2Root})`, () => {
  it('runc defaults: null and zero work; a block device, /dev/kmsg and a mknod-ed block node do not', async () => {
    const dir = mkdtempSync('/tmp/ctk-devtest-');
    let loop: string | undefined;
    const cg = Cgroup.v2(name()).devicesDefault();
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'ctk-disk.img')}`, 'bs=1M', 'count=4', 'status=none']);
      loop = execFileSync('losetup', ['--find', '--show', join(dir, 'ctk-disk.img')], { encoding: 'utf8' }).trim();
      const [maj, min] = numbers(loop);
      await cg.create();
      expect(await cg.devicePrograms()).toHaveLength(1);
      const r = await probe(cg, {
        nullRead: { op: 'read', path: '/dev/null' },
        nullWrite: { op: 'write', path: '/dev/null' },
        zeroRead: { op: 'read', path: '/dev/zero' },
        urandomRead: { op: 'read', path: '/dev/urandom' },
        loopRead: { op: 'read', path: loop },
        kmsgWrite: { op: 'write', path: '/dev/kmsg' },
        mknodBlock: { op: 'mknod', path: join(dir, 'ctk-blk'), node: `b ${maj} ${min}` },
        mknodBlockOpen: { op: 'read', path: join(dir, 'ctk-blk') },
      });
      expect(r).toEqual({
        nullRead: 'ok',
        nullWrite: 'ok',
        zeroRead: 'ok',
        urandomRead: 'ok',
        loopRead: 'EPERM',
        kmsgWrite: 'EPERM',
        mknodBlock: 'ok', // runc's defaults allow mknod of anything ...
        mknodBlockOpen: 'EPERM', // ... and nothing that was made that way
      });
      // The same process outside the cgroup: the host itself is not restricted.
      expect(readFileSync(loop).length).toBe(4 * 1024 * 1024);
    } finally {
      await cg.remove().catch(() => undefined);
      if (loop) execFileSync('losetup', ['-d', loop]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without the mknod wildcards, mknod of a block node is refused; a deny-list denies only what it names', async () => {
    const dir = mkdtempSync('/tmp/ctk-devtest-');
    const strict = Cgroup.v2(name());
    for (const rule of STRICT) strict.devicesAllow(rule);
    const denyList = Cgroup.v2(name())
      .devicesAllow(ALL)
      .devicesDeny(c(1, 5, 'r'))
      .devicesDeny(b('*', '*', 'm'));
    try {
      await strict.create();
      expect(
        await probe(strict, {
          mknodBlock: { op: 'mknod', path: join(dir, 'ctk-blk'), node: 'b 7 0' },
          mknodNull: { op: 'mknod', path: join(dir, 'ctk-null'), node: 'c 1 3' },
          nullRead: { op: 'read', path: '/dev/null' },
        }),
      ).toEqual({ mknodBlock: 'EPERM', mknodNull: 'ok', nullRead: 'ok' });
      await denyList.create();
      expect(
        await probe(denyList, {
          zeroRead: { op: 'read', path: '/dev/zero' },
          zeroWrite: { op: 'write', path: '/dev/zero' },
          nullRead: { op: 'read', path: '/dev/null' },
          mknodBlock: { op: 'mknod', path: join(dir, 'ctk-blk2'), node: 'b 7 0' },
          mknodChar: { op: 'mknod', path: join(dir, 'ctk-zero'), node: 'c 1 5' },
        }),
      ).toEqual({ zeroRead: 'EPERM', zeroWrite: 'ok', nullRead: 'ok', mknodBlock: 'EPERM', mknodChar: 'ok' });
    } finally {
      await strict.remove().catch(() => undefined);
      await denyList.remove().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('apply() replaces the program (never two left behind); detaching lifts the filter; removing the cgroup frees it', async () => {
    const cg = Cgroup.v2(name()).devicesDefault();
    try {
      await cg.create();
      const [first] = await cg.devicePrograms();
      expect(await probe(cg, { kmsg: { op: 'write', path: '/dev/kmsg' } })).toEqual({ kmsg: 'EPERM' });
      // docker update: one more device allowed.
      await cg.devicesAllow(c(1, 11, 'w')).apply();
      const ids = await cg.devicePrograms();
      expect(ids).toHaveLength(1);
      expect(ids[0]).not.toBe(first);
      expect(await gone(first!)).toBe(true); // detached, and nothing else held it
      expect(await probe(cg, { kmsg: { op: 'write', path: '/dev/kmsg' }, loop: { op: 'open', path: '/dev/loop-control' } })).toEqual({
        kmsg: 'ok',
        loop: 'EPERM',
      });
      // Detached by hand: no filter, no restriction.
      detachDeviceFilters(cg.dir);
      expect(await cg.devicePrograms()).toEqual([]);
      expect(await probe(cg, { loop: { op: 'open', path: '/dev/loop-control' } })).toEqual({ loop: 'ok' });
      // Attached again, then the cgroup removed: the program goes with it.
      await cg.apply();
      const [last] = await cg.devicePrograms();
      await cg.remove();
      expect(await gone(last!)).toBe(true);
    } finally {
      await cg.remove().catch(() => undefined);
    }
  });
});

describe.runIf(isRoot && layout.mounts.some((m) => m.version === 1 && m.controllers.includes('devices')))('cgroup v1 devices', () => {
  it('the v1 backend writes the same list to devices.allow / devices.deny', async () => {
    await using cg = await Cgroup.v1(name())
      .devicesAllow(c(1, 3, 'rwm'))
      .devicesAllow(c(1, 5, 'rwm'))
      .devicesDeny(c(1, 5, 'w'))
      .create();
    expect(
      readFileSync(join(cg.dirs.get('devices')!, 'devices.list'), 'utf8')
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(['c 1:3 rwm', 'c 1:5 rm']);
  });
});

describe('cleanup', () => {
  it('no ctk-devtest cgroups or files remain', () => {
    const roots = layout.mounts.map((m) => m.path);
    const left = roots.flatMap((r) => {
      try {
        return readdirSync(r)
          .filter((e) => e.startsWith('ctk-devtest'))
          .map((e) => join(r, e));
      } catch {
        return [];
      }
    });
    for (const d of left) rmdirSync(d);
    const files = readdirSync('/tmp').filter((e) => e.startsWith('ctk-devtest'));
    for (const f of files) rmSync(join('/tmp', f), { recursive: true, force: true });
    expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' })).not.toMatch(/ctk-devtest/);
    expect([...left, ...files]).toEqual([]);
  });
});

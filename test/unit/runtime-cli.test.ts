// ctrkit-runtime's pure parts: runc's command line as clients write it, signals, config.json
// fields turned into ctrkit's options, and what is refused by name.
import { describe, expect, it } from 'vitest';
import { containerId, list, parseCommandLine, str } from '../../src/runtime/args.js';
import { cgroupPathOf } from '../../src/runtime/cgroup.js';
import { capabilitiesOf, envRecord, rlimitsOf, splitRlimits } from '../../src/runtime/config.js';
import { RuntimeError } from '../../src/runtime/errors.js';
import { mountPlan, parseMountOptions } from '../../src/runtime/mounts.js';
import { ociState, type ContainerRecord } from '../../src/runtime/state.js';
import { parseSignal } from '../../src/runtime/verbs/kill.js';

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RuntimeError);
    return (e as RuntimeError).code;
  }
  throw new Error('did not throw');
};

describe("runc's command line", () => {
  it('takes global flags, the command, its flags in every form, the id and what follows', () => {
    const cl = parseCommandLine(['--root', '/r', '--log=/l.json', '--log-format', 'json', 'create', '--bundle=/b', '--pid-file', '/p', 'id1']);
    expect([str(cl.globals, 'root'), str(cl.globals, 'log'), str(cl.globals, 'log-format')]).toEqual(['/r', '/l.json', 'json']);
    expect([cl.command, str(cl.flags, 'bundle'), str(cl.flags, 'pid-file'), containerId(cl)]).toEqual(['create', '/b', '/p', 'id1']);
    const kill = parseCommandLine(['kill', '--all', 'id2', 'KILL']);
    expect([kill.flags.get('all'), kill.args]).toEqual([true, ['id2', 'KILL']]);
    // Everything after the id is the command's own: `-c` goes to sh, not to exec.
    const exec = parseCommandLine(['exec', '-e', 'A=1', '--env=B=2', '--detach=false', 'id3', 'sh', '-c', 'echo -n']);
    expect([list(exec.flags, 'env'), exec.flags.get('detach'), exec.args]).toEqual([['A=1', 'B=2'], false, ['id3', 'sh', '-c', 'echo -n']]);
    expect(parseCommandLine(['update', '--resources=-', 'id4']).flags.get('resources')).toBe('-');
  });

  it('refuses what it does not know, with a usage error', () => {
    expect(usage(() => parseCommandLine(['--bogus', 'state', 'x']))).toBe('ERR_RUNTIME_USAGE');
    expect(usage(() => parseCommandLine(['frobnicate']))).toBe('ERR_RUNTIME_USAGE');
    expect(usage(() => parseCommandLine(['create', '--bundle']))).toBe('ERR_RUNTIME_USAGE');
    expect(usage(() => parseCommandLine(['delete', '--force=maybe', 'x']))).toBe('ERR_RUNTIME_USAGE');
    expect(usage(() => containerId(parseCommandLine(['state'])))).toBe('ERR_RUNTIME_USAGE');
  });

  it('reads signals as numbers, names and SIG names', () => {
    expect([parseSignal('9'), parseSignal('KILL'), parseSignal('SIGKILL'), parseSignal('term'), parseSignal('USR1')]).toEqual([9, 9, 9, 15, 10]);
    expect(usage(() => parseSignal('SIGNOPE'))).toBe('ERR_RUNTIME_USAGE');
    expect(usage(() => parseSignal('0'))).toBe('ERR_RUNTIME_USAGE');
  });
});

describe('config.json into options', () => {
  it('mount options become flags, propagation and file system data', () => {
    expect(parseMountOptions(['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'], 'm')).toEqual({
      flags: 0x2 | 0x8 | 0x4,
      propagation: 0,
      data: 'mode=1777,size=65536k',
    });
    expect(parseMountOptions(['rbind', 'ro', 'rprivate'], 'm')).toEqual({ flags: 0x1000 | 0x4000 | 0x1, propagation: (1 << 18) | 0x4000, data: '' });
    expect(parseMountOptions(['ro', 'rw'], 'm').flags).toBe(0);
    expect(usage(() => parseMountOptions(['idmap'], 'mounts[3].options'))).toBe('ERR_RUNTIME_CONFIG');
  });

  it('standard mounts are the root set-up’s own; others are mounts of the plan, binds relative to the bundle', () => {
    const plan = mountPlan(
      [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' },
        { destination: '/data', type: 'bind', source: 'vol', options: ['rbind', 'ro'] },
        { destination: '/run/', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
      ],
      '/bundle',
      undefined,
    );
    expect(plan).toEqual([
      { op: 'mount', source: '/bundle/vol', target: '/data', fstype: 'bind', flags: 0x1000 | 0x4000 | 0x1, data: undefined, propagation: undefined },
      { op: 'mount', source: 'tmpfs', target: '/run', fstype: 'tmpfs', flags: 0, data: 'size=1m', propagation: undefined },
    ]);
    expect(usage(() => mountPlan([{ destination: 'relative' }], '/b', undefined))).toBe('ERR_RUNTIME_CONFIG');
  });

  it('capabilities, environment and rlimits', () => {
    expect(
      capabilitiesOf({ capabilities: { bounding: ['CAP_KILL', 'cap_chown'], effective: [], permitted: [], inheritable: undefined, ambient: undefined } }),
    ).toEqual(['KILL', 'CHOWN']);
    expect(envRecord(['A=1', 'B=x=y', 'A=2'], 'env')).toEqual({ A: '2', B: 'x=y' });
    expect(usage(() => envRecord(['NOEQUALS'], 'process.env'))).toBe('ERR_RUNTIME_CONFIG');
    const limits = rlimitsOf({
      rlimits: [
        { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
        { type: 'RLIMIT_AS', soft: 2 ** 64, hard: 2 ** 64 },
      ],
    });
    expect(limits).toEqual([
      { resource: 7, soft: 1024n, hard: 4096n },
      { resource: 9, soft: 0xffffffffffffffffn, hard: 0xffffffffffffffffn },
    ]);
    expect(usage(() => rlimitsOf({ rlimits: [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }] }))).toBe('ERR_RUNTIME_CONFIG');
    // Root's init takes every limit from outside; another uid's harmless ones come from this process.
    expect(splitRlimits(limits, 0)).toEqual({ own: [], init: limits });
    expect(splitRlimits(limits, 1000)).toEqual({ own: [limits[0]], init: [limits[1]] });
  });

  it('cgroup paths: absolute as given, relative and absent under ctk-runtime, systemd slices', () => {
    expect(cgroupPathOf('/k8s/pod1/c1', 'c1', false)).toBe('/k8s/pod1/c1');
    expect(cgroupPathOf('rel/c1', 'c1', false)).toBe('/ctk-runtime/rel/c1');
    expect(cgroupPathOf(undefined, 'c1', false)).toBe('/ctk-runtime/c1');
    expect(cgroupPathOf('system.slice:docker:abc', 'abc', true)).toBe('/system.slice/docker-abc.scope');
    expect(usage(() => cgroupPathOf('/a/../b', 'x', false))).toBe('ERR_RUNTIME_CONFIG');
  });

  it('the state object says pid 0 once stopped, and annotations only when there are some', () => {
    const rec: ContainerRecord = { id: 'c', pid: 42, pidStart: '1', bundle: '/b', rootfs: '/b/r', created: 't', cgroupPath: '/x', namespaces: [] };
    expect(ociState(rec, 'running')).toEqual({
      ociVersion: '1.0.2',
      id: 'c',
      status: 'running',
      pid: 42,
      bundle: '/b',
      rootfs: '/b/r',
      created: 't',
      owner: '',
    });
    expect(ociState({ ...rec, annotations: { a: 'b' } }, 'stopped')).toMatchObject({ pid: 0, annotations: { a: 'b' } });
  });
});

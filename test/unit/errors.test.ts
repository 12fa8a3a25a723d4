// Pure: one error shape. `code` is the stable string, `errno` the number and `errnoName` its
// name wherever an errno is carried, and CtrkitErrorCode names every code (checked by tsc,
// which `npm run typecheck` runs over the tests).
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CtrkitErrorCode } from '../../src/error-codes.js';
import { type CgroupValueError, DeviceProgramError } from '../../src/cgroups/errors.js';
import { InitError, initErrorFrom } from '../../src/namespaces/errors.js';
import { NetlinkError, type NetworkError } from '../../src/network/errors.js';
import { ImageReferenceError } from '../../src/oci/reference.js';
import { OverlayError } from '../../src/overlay/errors.js';
import { SysError } from '../../src/sys/sys-error.js';
import type { AbortError, InvalidOptionError } from '../../src/errors.js';

describe('the error shape', () => {
  it('SysError: code is the errno name, errno the number', () => {
    const e = new SysError('mount', 1, '/x');
    expect(e).toMatchObject({ code: 'EPERM', errno: 1, errnoName: 'EPERM', syscall: 'mount', path: '/x', message: 'mount on /x: EPERM' });
  });

  it('NetlinkError: code ERR_NETLINK, errno the number, errnoName its name', () => {
    expect(new NetlinkError('RTM_NEWLINK veth x', 17, 'File exists')).toMatchObject({ code: 'ERR_NETLINK', errno: 17, errnoName: 'EEXIST' });
  });

  it('InitError: the errno from the wire, whatever sign Node gave it', () => {
    const fromNode = new InitError('cwd', { name: 'Error', message: 'chdir /x: ENOENT', code: 'ENOENT', errno: -2, syscall: 'chdir', path: '/x' });
    expect(fromNode).toMatchObject({ code: 'ERR_INIT_STEP', step: 'cwd', errno: 2, errnoName: 'ENOENT', syscall: 'chdir' });
    const plain = new InitError('config', { name: 'TypeError', message: 'bad' });
    expect([plain.errno, plain.errnoName]).toEqual([undefined, undefined]);
    expect(initErrorFrom('exec', { name: 'SysError', message: 'execve', code: 'EACCES', errno: 13 }, 'x', '')).toMatchObject({
      code: 'ERR_COMMAND_NOT_EXECUTABLE',
      errno: 13,
    });
  });

  it('a setdomainname failure is its own step', () => {
    expect(new InitError('domainname', { name: 'SysError', message: 'setdomainname: EPERM', code: 'EPERM', errno: 1 }).message).toMatch(/^\[domainname\]/);
  });

  it('OverlayError and DeviceProgramError: errno the number, errnoName its name', () => {
    expect(new OverlayError('ERR_OVERLAY_BUSY', 'busy', { errnoName: 'EBUSY' })).toMatchObject({ errno: 16, errnoName: 'EBUSY' });
    expect(new DeviceProgramError('attach', '/sys/fs/cgroup/x', 'refused', { errnoName: 'EPERM' })).toMatchObject({
      code: 'ERR_CGROUP_DEVICES',
      errno: 1,
      errnoName: 'EPERM',
    });
  });

  it('every class names its code precisely, and CtrkitErrorCode holds them all', () => {
    expectTypeOf<SysError['code']>().toMatchTypeOf<CtrkitErrorCode>();
    expectTypeOf<NetlinkError['code']>().toEqualTypeOf<'ERR_NETLINK'>();
    expectTypeOf<CgroupValueError['code']>().toEqualTypeOf<'ERR_CGROUP_VALUE'>();
    expectTypeOf<ImageReferenceError['code']>().toEqualTypeOf<'ERR_INVALID_REFERENCE'>();
    expectTypeOf<NetworkError['code']>().toMatchTypeOf<CtrkitErrorCode>();
    expectTypeOf<InvalidOptionError['code'] | AbortError['code']>().toMatchTypeOf<CtrkitErrorCode>();
    // Not widened to string anywhere: a made-up code is not a CtrkitErrorCode.
    expectTypeOf<'ERR_MADE_UP'>().not.toMatchTypeOf<CtrkitErrorCode>();
    expect(new ImageReferenceError('X', 'bad').name).toBe('ImageReferenceError');
  });
});

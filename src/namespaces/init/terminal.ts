/**
 * The command's session and terminal, set up by the stage just before it drops privileges.
 * @internal
 */
import { O_CLOEXEC, O_NOCTTY, O_RDWR, AT_FDCWD, TIOCSCTTY } from '../../sys/constants.js';
import { close, fchown, ioctlInt, openat, setsid } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import type { StageChannel } from './channel.js';
import type { StageConfig } from './config.js';

/**
 * A session of the command's own, with no controlling terminal: a container started from a
 * terminal must not share it, or its processes could read the caller's keyboard, get its
 * job-control signals, or push input into the caller's shell with TIOCSTI.
 */
export function newSession(): void {
  setsid();
}

/**
 * Asks the parent for a pseudo-terminal in the devpts instance now at /dev/pts, opens its
 * slave and makes it the controlling terminal of our (new) session. Returns the slave's fd,
 * which becomes the command's 0, 1 and 2.
 */
export function openTerminal(channel: StageChannel, config: StageConfig): number {
  channel.send({ t: 'tty' });
  const { n } = channel.receive('tty');
  const path = `/dev/pts/${n}`;
  // O_NOCTTY, then TIOCSCTTY: the terminal is acquired explicitly, not as a side effect.
  const fd = openat(AT_FDCWD, path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  try {
    ioctlInt(fd, TIOCSCTTY, 0);
    if (config.user) giveTo(fd, config.user.uid, path);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/**
 * A user's terminal is theirs, as login(1) and runc make it: programs like ssh or mesg
 * check. The terminal works without it, so where the kernel refuses the change (its group
 * is not mapped in our user namespace) it stays as it is.
 */
function giveTo(fd: number, uid: number, path: string): void {
  try {
    fchown(fd, uid, -1, path);
  } catch (e) {
    if (!(e instanceof SysError) || (e.code !== 'EPERM' && e.code !== 'EINVAL')) throw e;
  }
}

import { readFileSync, statSync } from 'node:fs';

/**
 * The inode number of the initial user namespace (PROC_USER_INIT_INO), fixed by the
 * kernel since 3.8: every other user namespace has a different one.
 */
const INITIAL_USER_NS_INODE = 0xeffffffd;

/**
 * True when the calling process runs in a user namespace other than the host's — where
 * overlayfs needs `userxattr`, because `trusted.*` xattrs need CAP_SYS_ADMIN in the
 * initial namespace. Synchronous and cheap (one stat), so an init stage can call it.
 */
export function inUserNamespace(): boolean {
  try {
    return statSync('/proc/self/ns/user').ino !== INITIAL_USER_NS_INODE;
  } catch {
    // No /proc/self/ns (an old or unusual /proc): the initial namespace maps every id.
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  }
}

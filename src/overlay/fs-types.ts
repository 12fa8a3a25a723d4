/**
 * Filesystem types by statfs f_type magic, for messages and for deciding where an overlay
 * upper can live. Numbers from <linux/magic.h>.
 * @internal
 */

const OVERLAYFS_MAGIC = 0x794c7630;

const NAMES: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [OVERLAYFS_MAGIC, 'overlay'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
  [0x4d44, 'vfat'],
  [0x2011bab0, 'exfat'],
  [0x5346544e, 'ntfs'],
  [0x6969, 'nfs'],
  [0xff534d42, 'cifs'],
  [0xfe534d42, 'smb2'],
  [0x01021997, '9p'],
  [0x65735546, 'fuse'],
  [0x73717368, 'squashfs'],
  [0xe0f5e1e2, 'erofs'],
  [0x9660, 'iso9660'],
]);

/**
 * Filesystems known not to work as an overlay upper, with the reason: the kernel refuses
 * them, or they cannot store whiteouts (a 0:0 character device) or the opaque xattr, so
 * deleting a lower file or replacing a lower directory would fail later. Known without
 * touching the disk (one statfs), so even the synchronous mount refuses them; anything
 * else that lacks what an upper needs (ramfs, a filesystem mounted without xattrs ...) is
 * found by the probe in ./probe.ts.
 */
const NOT_AN_UPPER: ReadonlyMap<number, string> = new Map([
  [OVERLAYFS_MAGIC, 'it is itself an overlay, which overlayfs refuses as an upper (the nested case: a builder running inside a container)'],
  [0x4d44, 'vfat has neither device nodes (whiteouts) nor extended attributes'],
  [0x2011bab0, 'exfat has neither device nodes (whiteouts) nor extended attributes'],
  [0x6969, 'NFS is a remote filesystem, which overlayfs refuses as an upper'],
  [0xff534d42, 'CIFS is a remote filesystem, which overlayfs refuses as an upper'],
  [0xfe534d42, 'SMB is a remote filesystem, which overlayfs refuses as an upper'],
  [0x01021997, '9p is a remote filesystem, which overlayfs refuses as an upper'],
  [0x73717368, 'squashfs is read-only'],
  [0xe0f5e1e2, 'erofs is read-only'],
  [0x9660, 'iso9660 is read-only'],
]);

/** A readable name of a filesystem type, e.g. `ext4` or `0x12345678`. */
export function filesystemName(magic: number): string {
  return NAMES.get(magic) ?? `0x${(magic >>> 0).toString(16)}`;
}

/** Why a filesystem cannot hold an overlay upper, or undefined when nothing is known against it. */
export function notAnUpperBecause(magic: number): string | undefined {
  return NOT_AN_UPPER.get(magic >>> 0);
}

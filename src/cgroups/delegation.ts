/**
 * cgroup v2 delegation: where an unprivileged caller may create cgroups. cgroupfs belongs to
 * root, except the subtrees root hands over (systemd's `Delegate=yes`, user@.service): a
 * directory whose owner is the user, with its cgroup.procs, cgroup.subtree_control and
 * cgroup.threads. Inside it the user may create cgroups, enable the controllers its parent
 * enabled for it, and move its own processes; the limits written there bind everything below.
 * @internal
 */
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CgroupDelegationError } from './errors.js';

/**
 * The leaf ctrkit moves the caller's processes into when the caller's own cgroup is the
 * delegated one (rootless Podman's "runtime" subtree): cgroup v2 enables controllers only
 * for children of cgroups without processes.
 */
export const CALLER_LEAF = 'ctk-caller';

/** The caller's cgroup in the unified hierarchy (the `0::` line of /proc/self/cgroup), e.g. `/user.slice/...`. */
export function ownCgroupV2(text: string = readFileSync('/proc/self/cgroup', 'utf8')): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::')) return line.slice(3) || '/';
  return undefined;
}

/** Whether this process may write `path` (a cgroup file or directory). @internal */
export function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the caller may create cgroups in `dir`, move processes into it and enable controllers below it. */
function manages(dir: string): boolean {
  return writable(dir) && writable(join(dir, 'cgroup.procs')) && writable(join(dir, 'cgroup.subtree_control'));
}

function processesOf(dir: string): string[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The command that tells root (or systemd) how to delegate, in every message. */
function howToDelegate(uid: number): string {
  return (
    'run under a systemd user session with delegation (`systemd-run --user --scope -p Delegate=yes node app.js`), or have root delegate a subtree ' +
    `the way systemd does for user@.service: \`mkdir /sys/fs/cgroup/ctk-user-${uid}; echo '+memory +pids +cpu +io' > /sys/fs/cgroup/cgroup.subtree_control; ` +
    `chown ${uid} /sys/fs/cgroup/ctk-user-${uid} /sys/fs/cgroup/ctk-user-${uid}/{cgroup.procs,cgroup.subtree_control,cgroup.threads}\`, ` +
    `then start the caller in it (\`echo $$ > /sys/fs/cgroup/ctk-user-${uid}/cgroup.procs\`, as root); or leave the limits out`
  );
}

/** Moves every process of `dir` into its leaf {@link CALLER_LEAF}, so `dir` may enable controllers. */
function moveIntoLeaf(dir: string, own: string): void {
  const leaf = join(dir, CALLER_LEAF);
  try {
    mkdirSync(leaf);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new CgroupDelegationError(2, `cgroup v2 delegation: cannot create ${leaf} for the processes of ${own}: ${(e as NodeJS.ErrnoException).code}`, {
        cgroup: own,
        file: leaf,
        cause: e,
      });
    }
  }
  // Processes may fork while they are moved: a few passes.
  for (let pass = 0; pass < 10; pass++) {
    const pids = processesOf(dir);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        writeFileSync(join(leaf, 'cgroup.procs'), pid);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') continue; // gone meanwhile
        throw new CgroupDelegationError(
          2,
          `cgroup v2 delegation: ${own} is delegated, but process ${pid} in it cannot be moved to ${leaf} (${(e as NodeJS.ErrnoException).code}), ` +
            'and cgroup v2 enables controllers only for children of cgroups without processes: start the caller in a leaf cgroup of its own',
          { cgroup: own, file: leaf, cause: e },
        );
      }
    }
  }
  throw new CgroupDelegationError(2, `cgroup v2 delegation: the processes of ${own} keep coming back while moved to ${leaf}`, { cgroup: own, file: leaf });
}

/**
 * Where an unprivileged caller's containers get their cgroups, below the cgroup2 mount
 * `root` (a path relative to it), the way rootless runtimes find it: from the caller's own
 * cgroup (`/proc/self/cgroup`), the first of
 *
 * 1. the parent of the caller's cgroup, when the caller's cgroup is the leaf ctrkit moved it
 *    into before (`…/ctk-caller`);
 * 2. the caller's own cgroup, when the caller owns it (a delegated scope: `systemd-run --user
 *    --scope -p Delegate=yes`); its processes (the caller's) are moved into the leaf
 *    `ctk-caller` below it first, as rootless Podman does, since cgroup v2 enables
 *    controllers only for children of cgroups without processes;
 * 3. the parent of the caller's cgroup, when the caller owns that one and it holds no
 *    processes (the caller sits in a leaf root made inside a subtree delegated to it).
 *
 * Throws {@link CgroupDelegationError}, naming what to configure, when none is the caller's.
 * `move: false` only tells where (for `prune()`, which looks for leftovers there).
 */
export function delegatedParent(root: string, ownCgroup: string | undefined = ownCgroupV2(), options: { readonly move?: boolean } = {}): string {
  const uid = process.getuid?.() ?? -1;
  if (ownCgroup === undefined) {
    throw new CgroupDelegationError(2, `cgroup v2 delegation: /proc/self/cgroup names no cgroup2 membership for this process; ${howToDelegate(uid)}`);
  }
  const rel = ownCgroup.replace(/^\/+|\/+$/g, '');
  const parent = rel.includes('/') ? dirname(rel) : '';
  const usableParent = () => parent !== '' && manages(join(root, parent)) && processesOf(join(root, parent)).length === 0;
  if (rel !== '' && basename(rel) === CALLER_LEAF && usableParent()) return parent;
  if (rel !== '' && manages(join(root, rel))) {
    if (options.move !== false) moveIntoLeaf(join(root, rel), ownCgroup);
    return rel;
  }
  if (rel !== '' && usableParent()) return parent;
  throw new CgroupDelegationError(
    2,
    `cgroup v2 delegation: this process's cgroup ${ownCgroup} (${join(root, rel)}) is not delegated to uid ${uid}, ` +
      `so the container's limits (memory, pids, cpu, io) have nowhere to go: ${howToDelegate(uid)}`,
    { cgroup: ownCgroup, file: join(root, rel) },
  );
}

/** The error for an unprivileged caller on cgroup v1 (or a hybrid host), which cannot delegate. */
export function noV1Delegation(): CgroupDelegationError {
  return new CgroupDelegationError(
    1,
    "cgroup v1 delegation: this host binds its resource controllers to cgroup v1, whose hierarchies are root's and cannot be delegated safely, " +
      "so an unprivileged caller's container cannot get limits (memory, pids, cpu, io): boot the host with the unified hierarchy " +
      '(cgroup v2: systemd.unified_cgroup_hierarchy=1) and delegate a subtree to the user (systemd-run --user --scope -p Delegate=yes), run as root, or leave the limits out',
  );
}

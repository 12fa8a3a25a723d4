/**
 * The last steps before the command runs: find it, drop privileges, hand over exactly the
 * right file descriptors and signal state, and execve.
 * @internal
 */
import { constants as osConstants } from 'node:os';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import {
  CLOSE_RANGE_CLOEXEC,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  O_NONBLOCK,
  PR_CAPBSET_DROP,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_CLEAR_ALL,
  PR_CAP_AMBIENT_RAISE,
  PR_SET_NO_NEW_PRIVS,
} from '../../sys/constants.js';
import { capset, capsetSets, close, closeRange, dup3, fcntl, prctl, resetSignal, umask, unblockAllSignals } from '../../sys/libc.js';
import { SysError } from '../../sys/sys-error.js';
import { DEFAULT_PATH, STDERR_FD } from './config.js';
import { fdPath, openInRoot } from './inroot.js';

/**
 * Resolves argv[0] the way execvp would, but against the container's PATH (from its
 * environment) inside its root. A name with a slash is used as it is; execve reports it.
 */
export function lookupCommand(name: string, env: readonly string[]): string {
  if (name.includes('/')) return name;
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  let denied = false;
  for (const dir of pathVar.split(':')) {
    const candidate = `${dir || '.'}/${name}`;
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  const err = new SysError('execvp', denied ? 13 : 2, name, denied ? 'found on PATH but not executable' : `not found in PATH=${pathVar}`);
  throw err;
}

/**
 * {@link lookupCommand} for a root the caller has not entered yet (`rootFd`, an O_PATH fd of
 * it): each candidate is resolved with RESOLVE_IN_ROOT, so a symlink means what it means
 * inside. Returns the path as the command will see it, for an exec after the pivot.
 */
export function lookupCommandIn(rootFd: number, name: string, env: readonly string[], cwd: string): string {
  const check = (path: string): 'ok' | 'missing' | 'denied' => {
    const fd = openInRoot(rootFd, path, path);
    if (fd < 0) return 'missing';
    try {
      const st = statSync(fdPath(fd));
      if (!st.isFile()) return st.isDirectory() ? 'missing' : 'denied';
      return st.mode & 0o111 ? 'ok' : 'denied';
    } finally {
      close(fd);
    }
  };
  if (name.includes('/')) {
    const r = check(name.startsWith('/') ? name : `${cwd}/${name}`);
    if (r === 'ok') return name;
    throw new SysError('execve', r === 'denied' ? 13 : 2, name);
  }
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  let denied = false;
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue; // a relative PATH entry means the cwd, which is not entered yet
    const candidate = `${dir}/${name}`;
    const r = check(candidate);
    if (r === 'ok') return candidate;
    if (r === 'denied') denied = true;
  }
  throw new SysError('execvp', denied ? 13 : 2, name, denied ? 'found on PATH but not executable' : `not found in PATH=${pathVar}`);
}

/** The highest capability number this kernel knows. Read before /proc is replaced. */
export function lastCapability(): number {
  return Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
}

/**
 * Keeps only `keep` in every capability set: the bounding set first (so exec cannot regain
 * anything), then ambient, then effective/permitted/inheritable.
 */
export function restrictCapabilities(keep: readonly number[], lastCap: number): void {
  const wanted = new Set(keep);
  for (let cap = 0; cap <= lastCap; cap++) {
    if (!wanted.has(cap)) prctl(PR_CAPBSET_DROP, cap);
  }
  clearAmbientCapabilities();
  let mask = 0n;
  for (const cap of wanted) if (cap <= lastCap) mask |= 1n << BigInt(cap);
  capset(mask);
}

/** After a change to a uid that is not root (with KEEPCAPS): the permitted set made effective again. */
export function effectiveFromPermitted(): void {
  const status = readFileSync('/proc/thread-self/status', 'utf8');
  const set = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? '0'}`);
  capsetSets(set('CapPrm'), set('CapPrm'), set('CapInh'));
}

/** Raises `caps` (each permitted and inheritable) into the ambient set, which the exec of a non-root user keeps. */
export function raiseAmbient(caps: readonly number[], lastCap: number): void {
  for (const cap of caps) if (cap <= lastCap) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
}

/** Empties the ambient set, so capabilities follow the usual rules for the command's uid. */
export function clearAmbientCapabilities(): void {
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
}

/** Sets no_new_privs: setuid binaries and file capabilities grant nothing after exec. */
export function setNoNewPrivileges(): void {
  prctl(PR_SET_NO_NEW_PRIVS, 1);
}

/**
 * fd 0 and 1 are the command's; fd 2 is the stage's diagnostics pipe and is replaced by the
 * command's real stderr (fd 4). With a terminal, its slave replaces all three instead.
 * Node marks 0-2 close-on-exec and may leave them non-blocking: undo both. Everything from 3
 * up is closed on exec (the sync socket included, which is how the parent learns the exec
 * happened).
 * @param terminal - the open slave of the command's terminal, or null
 */
export function prepareFds(terminal: number | null): void {
  if (terminal === null) dup3(STDERR_FD, 2);
  else {
    for (const fd of [0, 1, 2]) dup3(terminal, fd);
    close(terminal);
  }
  for (const fd of [0, 1, 2]) {
    try {
      fcntl(fd, F_SETFD, 0);
      const fl = fcntl(fd, F_GETFL);
      if (fl & O_NONBLOCK) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    } catch (e) {
      if (!(e instanceof SysError) || e.code !== 'EBADF') throw e;
    }
  }
  closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
}

/**
 * Node ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across execve:
 * reset every disposition and unblock everything, and give the command the usual umask.
 */
export function resetSignals(mask = 0o022): void {
  for (let sig = 1; sig <= 64; sig++) {
    // SIGKILL and SIGSTOP cannot be changed; 32 and 33 are glibc's own (below SIGRTMIN), which Node has no names for.
    if (sig === osConstants.signals.SIGKILL || sig === osConstants.signals.SIGSTOP || sig === 32 || sig === 33) continue;
    resetSignal(sig);
  }
  unblockAllSignals();
  umask(mask);
}

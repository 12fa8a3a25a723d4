/**
 * `exec [--process FILE | flags] [--detach] [--pid-file FILE] ID [CMD...]`: a process in a running
 * container's namespaces and cgroup, with its seccomp filter and the process's own capabilities
 * and no_new_privs. It is a direct child of this command (nothing in between), so with
 * --detach it passes to the caller's subreaper when this command ends; without, this command
 * waits and exits with its status.
 * @internal
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bool, containerId, list, str, type CommandLine } from '../args.js';
import { ambientOf, capabilitiesOf, checkProcess, splitRlimits, envRecord, rlimitsOf, userOf, type OciProcess } from '../config.js';
import type { Context } from '../context.js';
import { checkConsole, sendConsole } from '../console.js';
import { badConfig, RuntimeError } from '../errors.js';
import { readRecord, statusOf, type ContainerRecord } from '../state.js';

/** The process to run: --process's file (or stdin for `-`), else the command line and flags. */
function processOf(cl: CommandLine, rec: ContainerRecord): OciProcess {
  const file = str(cl.flags, 'process');
  if (file) {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    try {
      return JSON.parse(text) as OciProcess;
    } catch (e) {
      throw badConfig(file, `not JSON: ${(e as Error).message}`);
    }
  }
  const caps = [...(rec.capabilities ?? []), ...list(cl.flags, 'cap')].map((c) => `CAP_${c.replace(/^CAP_/i, '').toUpperCase()}`);
  const user = str(cl.flags, 'user');
  const [uid, gid] = (user ?? '0:0').split(':').map(Number);
  return {
    args: cl.args.slice(1),
    env: [...(rec.env ?? []), ...list(cl.flags, 'env')],
    cwd: str(cl.flags, 'cwd') ?? rec.cwd ?? '/',
    user: { uid: uid ?? 0, gid: gid ?? 0, additionalGids: list(cl.flags, 'additional-gids').map(Number) },
    capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: undefined, ambient: undefined },
    noNewPrivileges: (rec.noNewPrivileges ?? false) || bool(cl.flags, 'no-new-privs'),
    terminal: bool(cl.flags, 'tty'),
  };
}

export default async function exec(cl: CommandLine, ctx: Context): Promise<number> {
  const rec = readRecord(ctx.root, containerId(cl));
  const status = statusOf(ctx.root, rec);
  if (status !== 'running' && status !== 'paused') throw new RuntimeError('ERR_RUNTIME_STATE', `cannot exec in a ${status} container`);
  if (status === 'paused' && !bool(cl.flags, 'ignore-paused'))
    throw new RuntimeError('ERR_RUNTIME_STATE', 'cannot exec in a paused container (use --ignore-paused)');
  const p = processOf(cl, rec);
  checkProcess(p, 'process');
  const consoleSocket = str(cl.flags, 'console-socket');
  checkConsole(p.terminal ?? false, consoleSocket);
  const rlimits = rlimitsOf(p);
  const [{ securityConfig }, { execJoined }, { openCgroup }, { setProcessLimit, watchPidfd }] = await Promise.all([
    import('../../namespaces/process-config.js'),
    import('../../namespaces/held.js'),
    import('../cgroup.js'),
    import('../../sys/spawn.js'),
  ]);
  const { envList } = await import('../../namespaces/validate.js');
  const { capabilityNumbers } = await import('../../namespaces/capabilities.js');
  const ambient = ambientOf(p);
  const cgroup = await openCgroup(rec.cgroupPath);
  const { extraDirs, extraTasks, joinExtraV2 } = await import('../hierarchies.js');
  const extra = cgroup.version === 1 ? extraDirs(cgroup, rec.cgroupPath) : undefined;
  const security = securityConfig({
    capabilities: capabilitiesOf(p),
    noNewPrivileges: p.noNewPrivileges ?? false,
    seccomp: (rec.seccomp as Parameters<typeof securityConfig>[0]['seccomp']) ?? 'unconfined',
    user: userOf(p),
  });
  const limits = splitRlimits(rlimits, p.user?.uid ?? 0);
  for (const r of limits.own) setProcessLimit(process.pid, r.resource, r.soft, r.hard);
  // cgroup v2: this process visits the container's cgroup while it spawns (see ../v2-visit.ts).
  const visit = cgroup.version === 2 ? (await import('../v2-visit.js')).visitCgroup(cgroup.dir) : undefined;
  let started: Awaited<ReturnType<typeof execJoined>>;
  try {
    started = await execJoined({
      target: rec.pid,
      cgroupTasks: cgroup.version === 1 && extra ? [...cgroup.taskFiles(), ...extraTasks(extra)] : [],
      config: {
        ...security,
        ambient: ambient && capabilityNumbers(ambient),
        argv: p.args!,
        env: envList(envRecord(p.env, 'process.env')),
        cwd: p.cwd ?? '/',
        umask: p.user?.umask,
        namespaces: rec.namespaces as never,
      },
      terminal: p.terminal ? { size: p.consoleSize && { rows: p.consoleSize.height, cols: p.consoleSize.width } } : undefined,
      cgroupJoined: visit !== undefined,
    });
  } finally {
    visit?.leave();
  }
  const { pid, pidfd, terminal } = started;
  if (terminal !== undefined) await sendConsole(consoleSocket!, terminal);
  if (extra) joinExtraV2(extra, pid);
  for (const r of limits.init) setProcessLimit(pid, r.resource, r.soft, r.hard);
  // Nothing of this command stays behind it: its threads end and their park cgroups go.
  const { endStartThreads } = await import('../../namespaces/held.js');
  await endStartThreads();
  const pidFile = str(cl.flags, 'pid-file');
  if (pidFile) writeFileSync(resolve(pidFile), String(pid));
  if (bool(cl.flags, 'detach')) return 0;
  const exit = await new Promise<{ exitCode: number | null; signal: number | null }>((done) => watchPidfd(pidfd, done));
  return exit.exitCode ?? 128 + (exit.signal ?? 0);
}

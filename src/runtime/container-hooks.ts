/**
 * startContainer hooks: run in the container's namespaces and cgroups, after `start` and before
 * the container's process execs (the runtime-spec's place for them), each a process started
 * the way `exec` starts one, with the state on its stdin. Their path resolves in the container.
 * @internal
 */
import { closeSync, writeSync } from 'node:fs';
import { RuntimeError } from './errors.js';
import type { ContainerRecord, Hook, OciState } from './state.js';

/** Runs `hooks` in turn inside the container of `rec`; throws RuntimeError (ERR_RUNTIME_HOOK) at the first failure. */
export async function runContainerHooks(rec: ContainerRecord, hooks: readonly Hook[], state: OciState): Promise<void> {
  const [{ execJoined, endStartThreads }, { openCgroup }, { extraDirs, extraTasks }, { pipe }, { watchPidfd }, { capabilityNumbers }] = await Promise.all([
    import('../namespaces/held.js'),
    import('./cgroup.js'),
    import('./hierarchies.js'),
    import('../sys/libc.js'),
    import('../sys/spawn.js'),
    import('../namespaces/capabilities.js'),
  ]);
  const cgroup = await openCgroup(rec.cgroupPath);
  const cgroupTasks = cgroup.version === 1 ? [...cgroup.taskFiles(), ...extraTasks(extraDirs(cgroup, rec.cgroupPath))] : [];
  try {
    for (const [i, h] of hooks.entries()) {
      const [read, write] = pipe();
      try {
        writeSync(write, JSON.stringify(state)); // well under a pipe's buffer
      } finally {
        closeSync(write);
      }
      let started: { pid: number; pidfd: number };
      // cgroup v2: this process visits the container's cgroup while it spawns (see ./v2-visit.ts).
      const visit = cgroup.version === 2 ? (await import('./v2-visit.js')).visitCgroup(cgroup.dir) : undefined;
      try {
        started = await execJoined({
          cgroupJoined: visit !== undefined,
          target: rec.pid,
          cgroupTasks,
          config: {
            argv: h.args?.length ? [h.path, ...h.args.slice(1)] : [h.path],
            env: [...(h.env ?? [])],
            cwd: '/',
            capabilities: rec.capabilities ? capabilityNumbers(rec.capabilities) : null,
            noNewPrivileges: rec.noNewPrivileges ?? false,
            namespaces: rec.namespaces as never,
          },
          stdio: [read, 1, 2],
        });
      } catch (e) {
        throw new RuntimeError('ERR_RUNTIME_HOOK', `startContainer[${i}] hook ${h.path}: ${(e as Error).message}`, { cause: e });
      } finally {
        visit?.leave();
        closeSync(read);
      }
      const exit = await waitWithTimeout(started.pid, started.pidfd, h.timeout, watchPidfd);
      if (exit.exitCode !== 0) {
        const how =
          exit.exitCode === null ? `was killed by signal ${exit.signal}${h.timeout ? ` (timeout ${h.timeout} s)` : ''}` : `exited with status ${exit.exitCode}`;
        throw new RuntimeError('ERR_RUNTIME_HOOK', `startContainer[${i}] hook ${h.path} ${how}`);
      }
    }
  } finally {
    await endStartThreads();
  }
}

type Exit = { exitCode: number | null; signal: number | null };

function waitWithTimeout(pid: number, pidfd: number, timeout: number | undefined, watch: (fd: number, cb: (e: Exit) => void) => unknown): Promise<Exit> {
  return new Promise((resolve) => {
    const timer = timeout ? setTimeout(() => process.kill(pid, 'SIGKILL'), timeout * 1000) : undefined;
    watch(pidfd, (e) => {
      clearTimeout(timer);
      resolve(e);
    });
  });
}

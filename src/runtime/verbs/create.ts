/**
 * `create --bundle DIR [--pid-file FILE] ID`: the container's namespaces, cgroup and root made,
 * its init waiting at ROOT/ID/exec.fifo before its process runs, the pid file written; then
 * this process ends with _exit and the init passes to the caller's subreaper (containerd's
 * shim waits on it). Everything made is undone, in reverse, if any step fails.
 * @internal
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { containerId, str, type CommandLine } from '../args.js';
import type { Context } from '../context.js';
import { RuntimeError } from '../errors.js';
import { createPlan, ignoredFields, loadSpec, splitRlimits, type CreatePlan, type OciSpec } from '../config.js';
import { extraDirs, extraTasks, joinExtraV2, makeExtraDirs, removeDefaultParent, removeExtraDirs, type ExtraDirs } from '../hierarchies.js';
import { checkConsole, sendConsole } from '../console.js';
import { runHooks } from '../hooks.js';
import type { CgroupVisit } from '../v2-visit.js';
import { containerDir, execFifo, ociState, procStat, writeRecord, type ContainerRecord } from '../state.js';

/** What `create` works from: the bundle read and planned, before anything is made. */
interface Prepared {
  readonly id: string;
  readonly bundle: string;
  readonly spec: OciSpec;
  readonly plan: CreatePlan;
}

function prepare(cl: CommandLine, ctx: Context): Prepared {
  const id = containerId(cl);
  const bundle = resolve(str(cl.flags, 'bundle') ?? '.');
  const spec = loadSpec(bundle);
  const plan = createPlan(spec, bundle, id, ctx.systemdCgroup);
  checkConsole(spec.process?.terminal ?? false, str(cl.flags, 'console-socket'));
  for (const w of ignoredFields(spec)) ctx.log.warn(w);
  return { id, bundle, spec, plan };
}

/** The container's record, as soon as its init exists. */
function recordOf({ id, bundle, spec, plan }: Prepared, pid: number): ContainerRecord {
  const hooks = spec.hooks ?? {};
  return {
    id,
    pid,
    pidStart: procStat(pid)?.start ?? '',
    bundle,
    rootfs: plan.rootfs,
    created: new Date().toISOString(),
    annotations: spec.annotations,
    cgroupPath: plan.cgroupPath,
    namespaces: plan.namespaces,
    hooks: { poststart: hooks.poststart, poststop: hooks.poststop, startContainer: hooks.startContainer },
    seccomp: spec.linux?.seccomp,
    capabilities: (plan.options.capabilities === 'all' ? undefined : plan.options.capabilities) as string[] | undefined,
    noNewPrivileges: plan.options.noNewPrivileges,
    env: spec.process?.env,
    cwd: plan.options.cwd,
  };
}

/** Makes the state directory; an id in use is ERR_RUNTIME_EXISTS. */
function makeStateDir(root: string, id: string): string {
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const dir = containerDir(root, id);
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError('ERR_RUNTIME_EXISTS', `container with id "${id}" already exists`);
    throw e;
  }
  return dir;
}

/** The container's cgroup made with config.json's resources (an undo step pushed once it exists). */
/**
 * The container's cgroup made with config.json's resources (undo steps pushed as it goes): on
 * v1 the `tasks` files the spawner thread joins (every hierarchy, as runc puts a container);
 * on v2 a visit of this whole process (see ../v2-visit.ts).
 */
async function makeCgroup(plan: CreatePlan, ctx: Context, undo: (() => unknown)[]): Promise<{ cgroupTasks: string[]; extra?: ExtraDirs; visit?: CgroupVisit }> {
  const { applyOciResources, ociCgroup } = await import('../../cgroups/oci-resources.js');
  const resources = (plan.resources ?? {}) as Parameters<typeof applyOciResources>[1];
  const cgroup = ociCgroup(plan.cgroupPath, resources);
  await cgroup.create();
  undo.push(() => cgroup.remove({ kill: true }));
  const extra = cgroup.version === 1 ? extraDirs(cgroup, plan.cgroupPath) : undefined;
  if (extra) {
    makeExtraDirs(extra);
    undo.push(() => removeExtraDirs(extra));
  }
  const applied = await applyOciResources(cgroup, resources, { defaultDevices: true });
  for (const i of applied.ignored) ctx.log.warn(`linux.resources.${i.field}: ignored (${i.reason})`);
  if (cgroup.version === 1) return { cgroupTasks: [...cgroup.taskFiles(), ...extraTasks(extra!)], extra };
  const { visitCgroup } = await import('../v2-visit.js');
  const visit = visitCgroup(cgroup.dir);
  undo.push(() => visit.leave()); // out before the cgroup goes (undo runs in reverse)
  return { cgroupTasks: [], visit };
}

/** Does what `create` does; resolves with the init's PID (the caller then ends this process). */
export async function createContainer(cl: CommandLine, ctx: Context): Promise<{ pid: number; record: ContainerRecord }> {
  const p = prepare(cl, ctx);
  const { plan, spec } = p;
  const dir = makeStateDir(ctx.root, p.id);
  const undo: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    // Recorded at once, as `creating`: a create that dies midway leaves what delete --force needs.
    writeRecord(ctx.root, recordOf(p, 0));
    const heldModule = import('../../namespaces/held.js');
    // The start path's threads start up meanwhile (their cgroup tasks files are passed later).
    void heldModule.then((h) => h.warmHeld(plan.options));
    const { mkfifo, setProcessLimit } = await import('../../sys/spawn.js');
    const fifo = execFifo(ctx.root, p.id);
    mkfifo(fifo, 0o600);
    const { cgroupTasks, extra, visit } = await makeCgroup(plan, ctx, undo);
    const rlimits = splitRlimits(plan.rlimits, plan.options.user?.uid ?? 0);
    for (const r of rlimits.own) setProcessLimit(process.pid, r.resource, r.soft, r.hard);
    let record: ContainerRecord | undefined;
    const { createHeld } = await heldModule;
    const hooks = spec.hooks ?? {};
    const { pid, terminal } = await createHeld(
      {
        ...plan.options,
        cgroupTasks,
        onNamespaces: async ({ pid }) => {
          if (extra) joinExtraV2(extra, pid); // a hybrid host's v2 tree
          for (const r of rlimits.init) setProcessLimit(pid, r.resource, r.soft, r.hard);
          if (plan.oomScoreAdj !== undefined) writeFileSync(`/proc/${pid}/oom_score_adj`, String(plan.oomScoreAdj));
          const rec = recordOf(p, pid);
          record = rec;
          writeRecord(ctx.root, rec);
          // The runtime-spec's order; createRuntime sees "creating", the others "created" (as
          // runtime-tools checks prestart's, and crun gives it).
          await runHooks('prestart', hooks.prestart, ociState(rec, 'created'));
          await runHooks('createRuntime', hooks.createRuntime, ociState(rec, 'creating'));
          await runHooks('createContainer', hooks.createContainer, ociState(rec, 'created'));
        },
      },
      fifo,
      { joinPaths: plan.joinPaths, propagation: plan.propagation, cgroupJoined: visit !== undefined },
    );
    visit?.leave(); // the init stays in the container's cgroup; this process goes home
    if (terminal !== undefined) await sendConsole(str(cl.flags, 'console-socket')!, terminal);
    const pidFile = str(cl.flags, 'pid-file');
    // Bare digits: go-runc and runtime-tools parse the file whole with Atoi.
    if (pidFile) writeFileSync(resolve(pidFile), String(pid));
    return { pid, record: record! };
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (err) {
        ctx.log.warn(`cleanup after a failed create: ${(err as Error).message}`);
      }
    }
    // The start path's threads and their parks go too: this process ends with the error.
    const { endStartThreads } = await import('../../namespaces/held.js');
    await endStartThreads();
    removeDefaultParent(plan.cgroupPath);
    throw e;
  }
}

export default async function create(cl: CommandLine, ctx: Context): Promise<never> {
  await createContainer(cl, ctx);
  const { exitNow } = await import('../../sys/spawn.js');
  // The spawner thread waits in posix_spawn until start: a normal exit would wait for it.
  return exitNow(0);
}

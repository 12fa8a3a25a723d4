#!/usr/bin/env node
/**
 * `ctrkit-runtime`: ctrkit as an OCI runtime, with runc's command line, for containerd's shim,
 * Docker, Podman and runtime-tools. Each call is a short-lived process, so each command loads
 * only its own module (`state` reads a file and /proc, nothing more).
 * @internal
 */
import { bool, parseCommandLine, str, type CommandLine } from './args.js';
import { RuntimeLog } from './log.js';
import { DEFAULT_ROOT } from './state.js';
import type { Context } from './context.js';

const VERSION = '0.1.0';
const USAGE = `usage: ctrkit-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [FLAGS] ID [ARGS]

An OCI runtime with runc's command line (containerd, Docker, Podman, runtime-tools).

COMMANDS:
  create    --bundle DIR [--pid-file F] [--console-socket S] ID   set up a container; its init waits for start
  start     ID                        run the created container's process
  run       --bundle DIR [--detach] ID  create + start (+ wait)
  state     ID                        the OCI state as JSON
  kill      [--all] ID [SIGNAL]       send a signal (default SIGTERM)
  delete    [--force] ID              remove a stopped (or created; with --force any) container
  exec      [--process F | ... ] ID [CMD...]  run a process in a running container
  ps        [--format table|json] ID  the container's processes
  pause     ID / resume ID            freeze / thaw the container's cgroup
  list      [--format table|json] [-q]  the containers under --root
  events    [--stats] [--interval 5s] ID  stats (and OOM events) as JSON
  update    --resources FILE|- ID     apply an OCI LinuxResources object
  features                            what this runtime supports, as JSON
  spec      [--bundle DIR]            write a default config.json`;

/** The module and function of each command. */
const COMMANDS: Readonly<Record<string, () => Promise<{ default: (cl: CommandLine, ctx: Context) => Promise<number | undefined> | number | undefined }>>> = {
  create: () => import('./verbs/create.js'),
  run: () => import('./verbs/run.js'),
  start: () => import('./verbs/start.js'),
  state: () => import('./verbs/state.js'),
  kill: () => import('./verbs/kill.js'),
  delete: () => import('./verbs/delete.js'),
  exec: () => import('./verbs/exec.js'),
  ps: () => import('./verbs/ps.js'),
  pause: () => import('./verbs/pause.js'),
  resume: () => import('./verbs/resume.js'),
  list: () => import('./verbs/list.js'),
  events: () => import('./verbs/events.js'),
  update: () => import('./verbs/update.js'),
  features: () => import('./verbs/features.js'),
  spec: () => import('./verbs/spec.js'),
};

async function main(argv: readonly string[]): Promise<number> {
  let log = new RuntimeLog(undefined, 'text', false);
  try {
    const cl = parseCommandLine(argv);
    const format = str(cl.globals, 'log-format') ?? 'text';
    log = new RuntimeLog(str(cl.globals, 'log'), format === 'json' ? 'json' : 'text', bool(cl.globals, 'debug'));
    if (format !== 'text' && format !== 'json') throw new Error(`invalid --log-format "${format}" (text or json)`);
    if (bool(cl.globals, 'version')) {
      process.stdout.write(`ctrkit-runtime version ${VERSION}\nspec: 1.2.0\n`);
      return 0;
    }
    if (!cl.command || bool(cl.globals, 'help')) {
      process.stdout.write(`${USAGE}\n`);
      return cl.command || bool(cl.globals, 'help') ? 0 : 1;
    }
    const load = COMMANDS[cl.command];
    if (!load) throw new Error(`"${cl.command}" is not implemented`);
    log.debug(`${cl.command} ${argv.join(' ')}`);
    const ctx: Context = { root: str(cl.globals, 'root') ?? DEFAULT_ROOT, log, systemdCgroup: bool(cl.globals, 'systemd-cgroup') };
    return (await (await load()).default(cl, ctx)) ?? 0;
  } catch (e) {
    log.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
}

// An explicit exit: idle start-path threads must not keep a finished command alive.
process.exit(await main(process.argv.slice(2)));

/**
 * runc's command line as its clients write it: global flags, the command, its flags, the
 * container id, then positional arguments (`kill ID SIGNAL`). Flags come as `--flag value`,
 * `--flag=value` or `-f value`; a boolean takes `--flag`, `--flag=true` or `--flag=false`.
 * @internal
 */
import { RuntimeError } from './errors.js';

/** One flag of a command: its names (long first) and whether it takes a value (or several). */
interface FlagSpec {
  readonly names: readonly string[];
  readonly kind: 'bool' | 'value' | 'list';
}

const f = (kind: FlagSpec['kind'], ...names: string[]): FlagSpec => ({ names, kind });

const GLOBAL: readonly FlagSpec[] = [
  f('value', 'root'),
  f('value', 'log'),
  f('value', 'log-format'),
  f('bool', 'systemd-cgroup'),
  f('bool', 'debug'),
  f('value', 'rootless'),
  f('value', 'criu'),
  f('bool', 'version', 'v'),
  f('bool', 'help', 'h'),
];

const CREATE: readonly FlagSpec[] = [
  f('value', 'bundle', 'b'),
  f('value', 'pid-file'),
  f('value', 'console-socket'),
  f('bool', 'no-pivot'),
  f('bool', 'no-new-keyring'),
  f('value', 'preserve-fds'),
  f('value', 'pidfd-socket'),
];

/** The flags of each command. */
const COMMANDS: Readonly<Record<string, readonly FlagSpec[]>> = {
  create: CREATE,
  run: [...CREATE, f('bool', 'detach', 'd'), f('bool', 'keep')],
  start: [],
  state: [],
  kill: [f('bool', 'all', 'a')],
  delete: [f('bool', 'force', 'f')],
  exec: [
    f('value', 'process', 'p'),
    f('bool', 'detach', 'd'),
    f('value', 'pid-file'),
    f('value', 'console-socket'),
    f('value', 'pidfd-socket'),
    f('bool', 'tty', 't'),
    f('value', 'cwd'),
    f('list', 'env', 'e'),
    f('value', 'user', 'u'),
    f('list', 'additional-gids', 'g'),
    f('list', 'cap', 'c'),
    f('bool', 'no-new-privs'),
    f('value', 'process-label'),
    f('value', 'apparmor'),
    f('value', 'preserve-fds'),
    f('value', 'cgroup'),
    f('bool', 'ignore-paused'),
  ],
  ps: [f('value', 'format', 'f')],
  pause: [],
  resume: [],
  list: [f('value', 'format', 'f'), f('bool', 'quiet', 'q')],
  events: [f('bool', 'stats'), f('value', 'interval')],
  update: [
    f('value', 'resources', 'r'),
    f('value', 'memory'),
    f('value', 'memory-reservation'),
    f('value', 'memory-swap'),
    f('value', 'kernel-memory'),
    f('value', 'kernel-memory-tcp'),
    f('value', 'cpu-shares'),
    f('value', 'cpu-quota'),
    f('value', 'cpu-period'),
    f('value', 'cpu-rt-period'),
    f('value', 'cpu-rt-runtime'),
    f('value', 'cpuset-cpus'),
    f('value', 'cpuset-mems'),
    f('value', 'blkio-weight'),
    f('value', 'pids-limit'),
    f('value', 'l3-cache-schema'),
    f('value', 'mem-bw-schema'),
  ],
  features: [],
  spec: [f('value', 'bundle', 'b'), f('bool', 'rootless')],
  checkpoint: [],
  restore: [],
};

/** The value of a flag: a string, several (list flags), or a boolean. */
export type FlagValue = string | boolean | string[];

/** A parsed command line. */
export interface CommandLine {
  readonly globals: ReadonlyMap<string, FlagValue>;
  /** The command, or '' when none was given (`--version`, `--help`). */
  readonly command: string;
  readonly flags: ReadonlyMap<string, FlagValue>;
  readonly args: readonly string[];
}

function usage(message: string): RuntimeError {
  return new RuntimeError('ERR_RUNTIME_USAGE', message);
}

/** Reads flags from `argv[i]` on while they belong to `specs`; returns the index after them. */
function readFlags(
  argv: readonly string[],
  i: number,
  specs: readonly FlagSpec[],
  into: Map<string, FlagValue>,
  stopAtNonFlag: boolean,
  args: string[],
): number {
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      return argv.length;
    }
    if (!a.startsWith('-') || a === '-') {
      if (stopAtNonFlag) return i;
      args.push(a);
      i++;
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = specs.find((s) => s.names.includes(name));
    if (!spec) throw usage(`flag provided but not defined: -${name}`);
    const key = spec.names[0]!;
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (spec.kind === 'bool') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw usage(`invalid boolean value "${value}" for -${name}`);
      into.set(key, value !== 'false');
      i++;
      continue;
    }
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined) throw usage(`flag needs an argument: -${name}`);
      i++;
    }
    i++;
    if (spec.kind === 'list') into.set(key, [...((into.get(key) as string[] | undefined) ?? []), value]);
    else into.set(key, value);
  }
  return i;
}

/**
 * Parses a runtime command line. Throws {@link RuntimeError} (`ERR_RUNTIME_USAGE`) for an
 * unknown command or flag. Arguments after the container id are kept as they are (`exec ID
 * sh -c ...` passes `-c` on), so a command's flags must come before its id.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const globals = new Map<string, FlagValue>();
  const none: string[] = [];
  let i = readFlags(argv, 0, GLOBAL, globals, true, none);
  const command = argv[i] ?? '';
  if (!command) return { globals, command: '', flags: new Map(), args: [] };
  const specs = COMMANDS[command];
  if (!specs) throw usage(`unknown command "${command}"`);
  i++;
  const flags = new Map<string, FlagValue>();
  const args: string[] = [];
  // Flags until the first positional (the id); everything after it is positional.
  i = readFlags(argv, i, specs, flags, true, args);
  args.push(...argv.slice(i));
  return { globals, command, flags, args };
}

/** A string flag's value, or undefined. */
export function str(flags: ReadonlyMap<string, FlagValue>, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A boolean flag's value. */
export function bool(flags: ReadonlyMap<string, FlagValue>, name: string): boolean {
  return flags.get(name) === true;
}

/** A list flag's values. */
export function list(flags: ReadonlyMap<string, FlagValue>, name: string): string[] {
  const v = flags.get(name);
  return Array.isArray(v) ? v : [];
}

/** The container id: the first positional argument, required. */
export function containerId(cl: CommandLine): string {
  const id = cl.args[0];
  if (!id) throw usage(`"${cl.command}" requires a container id`);
  return id;
}

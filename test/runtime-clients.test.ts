// The runtime as real clients drive it: containerd's shim (through ctr) and dockerd call it as
// they call runc. The binary is CTRKIT_RUNTIME_BIN (runc proves the harness itself) or, by
// default, ctrkit's own dist/runtime/main.js. Daemons, image and dirs: test/runtime/clients-lab.ts.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CTR_IMAGE,
  type ClientsLab,
  DOCKER_IMAGE,
  DOCKER_RUNTIME,
  type HostSnapshot,
  cgroupMounts,
  cgroupOf,
  hostSnapshot,
  parseTaskPids,
  parseTaskStatus,
  startClientsLab,
  until,
} from './runtime/clients-lab.js';

const RUNTIME = process.env.CTRKIT_RUNTIME_BIN ?? fileURLToPath(new URL('../dist/runtime/main.js', import.meta.url));
// Each runtime call is a Node process (~100 ms) and a client makes several per container.
const CASE_TIMEOUT = 120_000;

let lab: ClientsLab;
let before: HostSnapshot;
beforeAll(async () => {
  before = hostSnapshot();
  lab = await startClientsLab({ runtime: RUNTIME, docker: true });
}, 180_000);
afterAll(async () => {
  await lab?.stop();
}, 120_000);

/** The status `ctr task ls` shows for `id` (undefined when there is no such task). */
function taskStatus(id: string): string | undefined {
  return parseTaskStatus(lab.ctr('task', 'ls').stdout).get(id);
}

/** The hierarchies (mount points) in which the cgroup `path` still exists. */
function cgroupDirs(path: string): string[] {
  return cgroupMounts().filter((m) => existsSync(`${m}${path}`));
}

/**
 * The lines of /proc/PID/cgroup ("ID:controllers:path") that do not put `pid` in `path`: [] when
 * all do, as with runc (every v1 hierarchy, name=systemd and the v2 tree). Checked with
 * expect.soft: a misplaced process fails the case, and the rest of the lifecycle still runs.
 */
function outsideCgroup(pid: number, path: string): string[] {
  const lines = cgroupOf(pid);
  return lines.length === 0 ? ['(no cgroup lines)'] : lines.filter((l) => !l.endsWith(`:${path}`));
}

describe('through containerd (ctr, containerd-shim-runc-v2)', () => {
  it(
    'run --rm: the output of echo',
    () => {
      const r = lab.ctr('run', '--rm', ...lab.runFlags('ctk-echo'), CTR_IMAGE, 'ctk-echo', 'echo', 'hello');
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ status: 0, stdout: 'hello\n' });
    },
    CASE_TIMEOUT,
  );

  it(
    'run --rm: the exit status of the container',
    () => {
      const r = lab.ctr('run', '--rm', ...lab.runFlags('ctk-exit'), CTR_IMAGE, 'ctk-exit', 'sh', '-c', 'echo bye; exit 3');
      expect(r).toMatchObject({ status: 3, stdout: 'bye\n' });
    },
    CASE_TIMEOUT,
  );

  it(
    'a detached task: exec, ps, pause/resume, kill, delete',
    async () => {
      const id = 'ctk-task';
      const run = lab.ctr('run', '-d', ...lab.runFlags(id), CTR_IMAGE, id, 'sleep', '1000');
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(taskStatus(id)).toBe('RUNNING');

      // The init is in the cgroup ctr asked for, and the runtime keeps its state under --runc-root.
      const [init] = parseTaskPids(lab.ctr('task', 'ps', id).stdout);
      expect(init).toBeGreaterThan(1);
      expect.soft(outsideCgroup(init!, lab.ctrCgroup(id))).toEqual([]);
      expect(cgroupDirs(lab.ctrCgroup(id)).length).toBeGreaterThan(0);
      expect(readdirSync(`${lab.runtimeRoot}/default`).length).toBeGreaterThan(0);

      const exec = lab.ctr('task', 'exec', '--fifo-dir', `${lab.dir}/fifo`, '--exec-id', 'ctk-e1', id, 'sh', '-c', 'echo in; echo err >&2; exit 0');
      expect(exec).toMatchObject({ status: 0, stdout: 'in\n', stderr: 'err\n' });
      const failing = lab.ctr('task', 'exec', '--fifo-dir', `${lab.dir}/fifo`, '--exec-id', 'ctk-e2', id, 'sh', '-c', 'exit 5');
      expect(failing.status).toBe(5);

      // A second process beside the init: ps lists both, both in the container's cgroup.
      const detached = lab.ctr('task', 'exec', '-d', '--fifo-dir', `${lab.dir}/fifo`, '--exec-id', 'ctk-e3', id, 'sleep', '999');
      expect(detached.status).toBe(0);
      expect(await until(() => parseTaskPids(lab.ctr('task', 'ps', id).stdout).length === 2)).toBe(true);
      const pids = parseTaskPids(lab.ctr('task', 'ps', id).stdout);
      expect(pids).toContain(init);
      for (const pid of pids) expect.soft(outsideCgroup(pid, lab.ctrCgroup(id))).toEqual([]);

      expect(lab.ctr('task', 'pause', id).status).toBe(0);
      expect(taskStatus(id)).toBe('PAUSED');
      expect(lab.ctr('task', 'resume', id).status).toBe(0);
      expect(taskStatus(id)).toBe('RUNNING');
      // Thawed for real: a new process runs to its end.
      const after = lab.ctr('task', 'exec', '--fifo-dir', `${lab.dir}/fifo`, '--exec-id', 'ctk-e4', id, 'echo', 'thawed');
      expect(after).toMatchObject({ status: 0, stdout: 'thawed\n' });

      expect(lab.ctr('task', 'kill', '-s', 'SIGKILL', id).status).toBe(0);
      expect(await until(() => taskStatus(id) === 'STOPPED')).toBe(true);
      expect(await until(() => pids.every((p) => !existsSync(`/proc/${p}/cgroup`)))).toBe(true);
      // ctr reports the exit status of the deleted task as a warning: 128 + SIGKILL.
      const del = lab.ctr('task', 'delete', id);
      expect(del.status).toBe(0);
      expect(del.stderr).toContain(`task ${id} exit with non-zero exit code 137`);
      expect(taskStatus(id)).toBeUndefined();
      expect(lab.ctr('container', 'delete', id).status).toBe(0);
      expect(lab.ctr('container', 'ls', '-q').stdout).toBe('');
      // The runtime's delete removed the container's cgroup and its state under --root.
      expect(cgroupDirs(lab.ctrCgroup(id))).toEqual([]);
      expect(readdirSync(`${lab.runtimeRoot}/default`)).toEqual([]);
    },
    CASE_TIMEOUT,
  );

  it(
    'a task that ends by itself reports STOPPED and its own exit status',
    async () => {
      const id = 'ctk-ends';
      expect(lab.ctr('run', '-d', ...lab.runFlags(id), CTR_IMAGE, id, 'sh', '-c', 'exit 7').status).toBe(0);
      expect(await until(() => taskStatus(id) === 'STOPPED')).toBe(true);
      const del = lab.ctr('task', 'delete', id);
      expect(del.status).toBe(0);
      expect(del.stderr).toContain(`task ${id} exit with non-zero exit code 7`);
      expect(lab.ctr('container', 'delete', id).status).toBe(0);
    },
    CASE_TIMEOUT,
  );
});

describe('through Docker (dockerd on the same containerd, --add-runtime ctk=BIN)', () => {
  const docker = (...args: string[]) => lab.docker(...args);
  const run = ['run', '--runtime', DOCKER_RUNTIME, '--network', 'none'];

  it(
    'run --rm: the output of echo',
    () => {
      const r = docker(...run, '--rm', DOCKER_IMAGE, 'echo', 'hello');
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ status: 0, stdout: 'hello\n' });
    },
    CASE_TIMEOUT,
  );

  it(
    'run --rm: the exit status of the container',
    () => {
      expect(docker(...run, '--rm', DOCKER_IMAGE, 'sh', '-c', 'exit 3').status).toBe(3);
    },
    CASE_TIMEOUT,
  );

  it(
    'run -d, exec, rm -f',
    async () => {
      const started = docker(...run, '-d', '--name', 'ctk-docker-d', DOCKER_IMAGE, 'sleep', '1000');
      expect(started.stderr).toBe('');
      expect(started.status).toBe(0);
      const id = started.stdout.trim();
      expect(id).toMatch(/^[0-9a-f]{64}$/);

      const state = docker('inspect', '-f', '{{.State.Running}} {{.State.Pid}} {{.HostConfig.Runtime}}', id).stdout.trim().split(' ');
      expect(state[0]).toBe('true');
      expect(state[2]).toBe(DOCKER_RUNTIME);
      const pid = Number(state[1]);
      expect(pid).toBeGreaterThan(1);
      expect.soft(outsideCgroup(pid, lab.dockerCgroup(id))).toEqual([]);

      expect(docker('exec', id, 'sh', '-c', 'echo in; echo $HOSTNAME')).toMatchObject({ status: 0, stdout: `in\n${id.slice(0, 12)}\n` });
      expect(docker('exec', id, 'sh', '-c', 'exit 4').status).toBe(4);
      expect(docker('top', id).stdout).toMatch(/sleep 1000/);

      const rm = docker('rm', '-f', id);
      expect(rm).toMatchObject({ status: 0, stdout: `${id}\n` });
      expect(docker('ps', '-aq').stdout).toBe('');
      expect(await until(() => !existsSync(`/proc/${pid}/cgroup`))).toBe(true);
      expect(cgroupDirs(lab.dockerCgroup(id))).toEqual([]);
    },
    CASE_TIMEOUT,
  );
});

describe('afterwards', () => {
  it(
    'nothing of the containers is left, and stopping the lab leaves nothing at all',
    async () => {
      // Shims exit shortly after their last task is deleted: give them a moment.
      await until(() => lab.leftovers().processes.length === 0);
      expect(lab.leftovers()).toEqual({ processes: [], cgroups: [], state: [], mounts: [] });
      await lab.stop();
      expect(lab.remains()).toEqual({ processes: [], cgroups: [], dirs: [], mounts: [] });
      expect(hostSnapshot()).toEqual(before);
    },
    CASE_TIMEOUT,
  );
});

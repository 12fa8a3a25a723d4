/**
 * Releasing a container from its record alone: what the owner helper does when an owner dies,
 * what `prune()` does for containers whose owner is gone, and what `remove({ force })` does
 * from another process. Every step tolerates what is already gone, so a release can run
 * after a partial creation, twice, or concurrently with the owner's own cleanup.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { logger } from '../../log.js';
import { isAlive, type ProcessIdentity } from '../../sys/liveness.js';
import type { ContainerRecord } from './record.js';
import type { StateStore } from './store.js';

const log = logger('ctrkit:release');

/** Sends `signal` to the process only if it is still that very process (not a recycled PID). @internal */
export async function signalIdentity(id: ProcessIdentity, signal: number): Promise<boolean> {
  if (!isAlive(id)) return false;
  const { close, pidfdOpen, pidfdSendSignal } = await import('../../sys/libc.js');
  let fd: number;
  try {
    fd = pidfdOpen(id.pid);
  } catch {
    return false; // gone meanwhile
  }
  try {
    // The pidfd pins the process: checked after opening it, the identity cannot change anymore.
    return isAlive(id) && pidfdSendSignal(fd, signal);
  } finally {
    close(fd);
  }
}

/** Waits until the process is gone (reaped, or a zombie nobody reaps soon) for at most `ms`. @internal */
export async function waitGone(id: ProcessIdentity, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (isAlive(id) && !isZombie(id.pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** A zombie is as good as gone: nothing of it runs, and its reaper is not ours to wait for. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Kills every process of the container: through its cgroup when it has one, and its init. @internal */
export async function killContainer(record: ContainerRecord): Promise<void> {
  const cg = record.resources.cgroup;
  if (cg) {
    const { Cgroup } = await import('../../cgroups/index.js');
    const handle = cg.version === 2 ? Cgroup.v2(cg.path) : Cgroup.v1(cg.path);
    if (await handle.exists()) await handle.kill().catch((e: unknown) => log('killing cgroup %s: %s', cg.path, (e as Error).message));
  }
  // With a PID namespace, SIGKILL to its init ends every process in it.
  if (record.init && (await signalIdentity(record.init, 9))) await waitGone(record.init, 2000);
}

async function releaseNetwork(record: ContainerRecord): Promise<void> {
  const net = record.resources.network;
  if (net?.pasta) await (await import('../../network/pasta.js')).stopPasta(net.pasta);
  const b = net?.bridge;
  if (!net || !b) return;
  const { NetworkNamespace, Ipam } = await import('../../network/index.js');
  const { removePortMappings } = await import('../../network/nat.js');
  const { Rtnetlink } = await import('../../network/rtnetlink.js');
  const netns = b.netns === undefined ? NetworkNamespace.current() : NetworkNamespace.open(b.netns);
  await removePortMappings(
    netns,
    b.name,
    net.ports.map((p) => ({ ...p, hostIp: p.hostIp })),
    b.leaseOwner,
    b.stateDir,
  );
  {
    using rt = Rtnetlink.open({ netns });
    rt.deleteLink(b.hostIfname, { ifExists: true }); // gone with the container's netns, usually
  }
  if (net.address) await Ipam.open({ name: `${b.name}-${netns.inode}`, subnet: b.subnet, gateway: b.gateway, stateDir: b.stateDir }).release(net.address);
  if (
    b.removeWhenUnused &&
    (() => {
      using rt = Rtnetlink.open({ netns });
      return rt.link(b.name) !== undefined;
    })()
  ) {
    // The default bridge goes with its last container, as when its owner detaches it.
    const { Bridge } = await import('../../network/index.js');
    const bridge = await Bridge.create({ name: b.name, subnet: b.subnet, gateway: b.gateway, netns, stateDir: b.stateDir });
    await bridge.removeIfUnused();
  }
  if (net.named) {
    const { leaveNetwork } = await import('../../network/network.js');
    await leaveNetwork(net.named.stateDir, net.named.name, record.id);
  }
}

/**
 * Ends the container and frees what it held, in reverse order of creation: its processes,
 * its network (port rules, veth, address, pasta), its /etc files, its writable layer, its cgroup,
 * its user namespace range;
 * then drops its record (`removeRecord`) or marks it exited.
 * @internal
 */
export async function releaseRecord(store: StateStore, record: ContainerRecord, options: { readonly removeRecord: boolean }): Promise<void> {
  const step = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      log('releasing %s of %s: %s', what, record.id, (e as Error).message);
    }
  };
  await step('processes', () => killContainer(record));
  await step('network', () => releaseNetwork(record));
  const { etcDir, layerDir, keepLayer, cgroup } = record.resources;
  if (etcDir) await step('/etc files', () => rm(etcDir, { recursive: true, force: true }));
  if (layerDir && !keepLayer) await step('writable layer', () => rm(layerDir, { recursive: true, force: true }));
  if (cgroup) {
    await step('cgroup', async () => {
      const { Cgroup } = await import('../../cgroups/index.js');
      const handle = cgroup.version === 2 ? Cgroup.v2(cgroup.path) : Cgroup.v1(cgroup.path);
      if (await handle.exists()) await handle.remove({ force: true });
    });
  }
  const userns = record.resources.userns;
  // Not while the init lives on: its claim stays, and goes stale (free) once it is gone.
  if (userns && !(record.init && isAlive(record.init))) {
    await step('user namespace range', async () => (await import('../userns.js')).releaseUsernsRange(record.id, userns.uid));
  }
  if (options.removeRecord) await store.remove(record.id, record.name);
  else if (record.status !== 'exited') {
    await store.write({
      ...record,
      status: 'exited',
      finishedAt: new Date().toISOString(),
      exitCode: record.exitCode ?? null,
      signal: record.signal ?? 'SIGKILL',
    });
  }
  log('released %s', record.id);
}

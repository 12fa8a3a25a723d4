/**
 * The owner helper: one per process that owns containers (see ./client.ts). It does two jobs.
 * - Reaper: when the IPC channel to its owner closes (the owner ended, however), it kills and
 *   releases every container the owner held under the state roots it was told to watch.
 * - Host of detached containers: it starts them on the owner's request and is their parent,
 *   so they outlive the owner; it drains their output into their logs and records their exit.
 * It exits once its owner is gone and no detached container of its runs.
 * @internal
 */
import { existsSync } from 'node:fs';
import { logger } from '../../log.js';
import { identify, type ProcessIdentity } from '../../sys/liveness.js';
import { becomeHelper } from '../../owner/client.js';
import type { FromHelper, ToHelper } from '../../owner/protocol.js';

const log = logger('ctrkit:helper');
becomeHelper();

// From the command line, not from process.ppid: the owner may be gone before we get here.
const [ownerPid, ownerStart] = (process.argv[2] ?? '').split(':').map(Number);
const owner: ProcessIdentity | undefined = ownerPid && ownerStart !== undefined ? { pid: ownerPid, start: ownerStart } : undefined;
const roots = new Set<string>();
/** Where the owner discards its containers' layers: the trash it leaves there is deleted. */
const stateDirs = new Set<string>();
/** Networks the owner created: `stateDir\0name`. */
const networks = new Set<string>();
let running = 0;
let ownerGone = false;

function reply(m: FromHelper): void {
  if (process.connected) process.send?.(m);
}

/** Removes the owner's networks that have no member left (the owner is gone). */
async function sweepNetworks(): Promise<void> {
  if (networks.size === 0) return;
  const { leaveNetwork } = await import('../../network/network.js');
  for (const key of networks) {
    const [stateDir, name] = key.split('\0') as [string, string];
    // Removed already (a test's temp dir): taking its lock would make it anew.
    if (!existsSync(stateDir)) continue;
    await leaveNetwork(stateDir, name, undefined, true).catch((e: unknown) => log('network %s: %s', name, (e as Error).message));
  }
}

function maybeExit(): void {
  if (ownerGone && running === 0)
    void sweepNetworks()
      .then(stopOwnThreads)
      .finally(() => process.exit(0));
}

/** The start-path threads of the detached containers this helper started, and their parks. */
async function stopOwnThreads(): Promise<void> {
  const { stopStartThreads } = await import('../../namespaces/fast/threads.js');
  await stopStartThreads().catch((e: unknown) => log('start threads: %s', (e as Error).message));
}

async function reap(): Promise<void> {
  ownerGone = true;
  if (owner) {
    const { StateStore } = await import('../state/store.js');
    const { releaseRecord } = await import('../state/release.js');
    for (const root of roots) {
      const store = new StateStore(root);
      const mine = (await store.list()).filter((r) => !r.detached && r.owner.pid === owner.pid && r.owner.start === owner.start);
      // In parallel: each release is mostly waiting (processes dying, netlink, rm).
      await Promise.all(
        mine.map((r) => releaseRecord(store, r, { removeRecord: true }).catch((e: unknown) => log('releasing %s: %s', r.id, (e as Error).message))),
      );
      log('owner %d gone: released %d containers under %s', owner.pid, mine.length, root);
    }
    // What it discarded and was deleting when it ended (the trash of processes that are gone).
    const { sweepTrash, trashSettled } = await import('../layer-trash.js');
    for (const dir of [...stateDirs, ...roots]) sweepTrash(dir, true);
    await trashSettled();
    // Where the owner's start-path thread waited between its containers.
    const { removeParks } = await import('../parks.js');
    await removeParks(owner.pid).catch((e: unknown) => log('parks: %s', (e as Error).message));
  }
  maybeExit();
}

async function startDetached(m: Extract<ToHelper, { t: 'start' }>): Promise<void> {
  running++;
  try {
    const { startOwnedByHelper } = await import('../container.js');
    const c = await startOwnedByHelper(m.start);
    reply({ t: 'started', req: m.req, id: c.id, root: c.stateRoot });
    void c.wait().finally(async () => {
      if (m.start.autoRemove) await c.remove().catch(() => undefined);
      running--;
      maybeExit();
    });
  } catch (e) {
    running--;
    const err = e as Error & { code?: string; option?: string };
    reply({ t: 'failed', req: m.req, error: { name: err.name, code: err.code, message: err.message, option: err.option } });
    maybeExit();
  }
}

process.on('message', (m: ToHelper) => {
  if (m.t === 'watch') {
    roots.add(m.root);
    if (m.stateDir) stateDirs.add(m.stateDir);
    reply({ t: 'watching', req: m.req });
  } else if (m.t === 'watch-network') {
    networks.add(`${m.stateDir}\0${m.name}`);
    reply({ t: 'watching', req: m.req });
  } else if (m.t === 'start') void startDetached(m);
});
process.on('disconnect', () => void reap());
// Not ours to die of: the owner's terminal and process group are not ours anymore (setsid),
// but a stray signal must not leave the owner's containers behind.
for (const sig of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(sig, () => log('ignoring %s', sig));
process.on('uncaughtException', (e) => log('uncaught: %s', e.stack ?? e.message));
process.on('unhandledRejection', (e) => log('unhandled rejection: %s', (e as Error)?.stack ?? String(e)));

if (!process.connected)
  void reap(); // the owner was gone before we even started
else if (owner) reply({ t: 'ready', helper: identify(process.pid)! });

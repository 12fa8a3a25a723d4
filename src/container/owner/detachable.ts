/**
 * A detached container is started by the owner helper, another process: its options cross
 * the IPC channel as plain data. Live objects become what names them (a Bridge its options
 * and namespace path, an ImageStore its directory, a container handle its PID); code and
 * streams cannot cross and are refused with the option's name.
 * @internal
 */
import { InvalidOptionError } from '../../errors.js';
import type { RunOptions } from '../options.js';

type Plain = Record<string, unknown>;

const REFUSED = ['onNamespaces', 'onLog', 'input', 'cni'] as const;
/** A named network crosses as its name and state directory. */
const NAMED = '__ctrkitNetwork';

/** Plain data for the helper, or an error naming the option that cannot be handed over. */
export function toDetachable(options: RunOptions): Plain {
  for (const k of REFUSED) {
    if (options[k] !== undefined) throw new InvalidOptionError(k, 'cannot be given to a detached container (it is run by another process)');
  }
  const s = options.stdio;
  if (s !== undefined && (typeof s === 'object' ? s : [s]).some((x) => x !== 'ignore')) {
    throw new InvalidOptionError('stdio', 'a detached container has no streams of ours: its output goes to its log');
  }
  // waitFor is code, but runs here: the caller waits on its handle once the helper started it.
  const { signal: _signal, detach: _detach, autoRemove: _autoRemove, waitFor: _waitFor, pullOptions, ...rest } = options;
  const out: Plain = { ...rest };
  if (pullOptions) {
    const { onProgress: _p, ...plain } = pullOptions;
    out.pullOptions = plain;
  }
  if (typeof options.store === 'object') out.store = options.store.dir;
  const b = options.bridge;
  if (b !== undefined) {
    if ('attach' in b) {
      out.bridge = { name: b.name, subnet: b.subnet.cidr, gateway: b.gateway, stateDir: b.stateDir, mtu: b.mtu, netnsPath: b.netns.path };
    } else {
      const { netns, ...plain } = b;
      out.bridge = { ...plain, netnsPath: netns?.path };
    }
  }
  const n = options.network;
  if (typeof n === 'object') {
    out.network = 'container' in n ? { container: typeof n.container === 'number' ? n.container : n.container.pid } : { [NAMED]: n.name, stateDir: n.stateDir };
  }
  return JSON.parse(JSON.stringify(out)) as Plain;
}

/** Options again, inside the helper. */
export async function fromDetachable(plain: Plain): Promise<RunOptions> {
  const options = { ...plain } as Plain;
  const bridge = plain.bridge as (Plain & { netnsPath?: string }) | undefined;
  if (bridge) {
    const { netnsPath, ...rest } = bridge;
    const { NetworkNamespace } = await import('../../network/index.js');
    options.bridge = { ...rest, netns: netnsPath === undefined ? undefined : NetworkNamespace.open(netnsPath) };
  }
  const net = plain.network as Plain | undefined;
  if (net && typeof net[NAMED] === 'string') {
    const { Network } = await import('../../network/network.js');
    options.network = await Network.open(net[NAMED], { stateDir: net.stateDir as string });
  }
  return options as RunOptions;
}

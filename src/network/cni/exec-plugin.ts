/**
 * Runs one CNI plugin binary per the CNI spec's execution protocol: the network
 * configuration on stdin, the parameters in CNI_* environment variables, a result or an
 * error JSON on stdout. Plugins run in the host namespace in use (they enter the container's
 * netns themselves through CNI_NETNS).
 * @internal
 */
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError } from '../../errors.js';
import { CniError } from '../errors.js';
import type { NetworkNamespace } from '../netns.js';

/** The CNI_* parameters of one invocation. @internal */
export interface CniInvocation {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: Readonly<Record<string, string>>;
}

/** Finds a plugin binary in the plugin directories; throws ERR_NETWORK_CNI_PLUGIN_NOT_FOUND. @internal */
export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string> {
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new CniError('ERR_NETWORK_CNI_CONFIG', `"${type}" is not a plugin name`, { plugin: type });
  for (const dir of binDirs) {
    const path = join(dir, type);
    if (
      await access(path, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  throw new CniError('ERR_NETWORK_CNI_PLUGIN_NOT_FOUND', `CNI plugin "${type}" not found in ${binDirs.join(', ')}`, { plugin: type });
}

/** Runs a plugin; returns its parsed stdout (empty object for an empty answer). @internal */
export async function execPlugin(
  netns: NetworkNamespace,
  path: string,
  type: string,
  inv: CniInvocation,
  binDirs: readonly string[],
  config: object,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: inv.command,
    CNI_PATH: binDirs.join(':'),
  };
  if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
  if (inv.args && Object.keys(inv.args).length)
    env.CNI_ARGS = Object.entries(inv.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(';');
  const child = netns.spawn(path, [], { env, stdio: ['pipe', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
  const [code, stdout, stderr] = await new Promise<[number | null, string, string]>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(signal?.aborted ? new AbortError(signal.reason) : e));
    child.on('close', (c) => resolve([c, out, err]));
    child.stdin!.on('error', () => undefined).end(JSON.stringify(config));
  });
  let parsed: Record<string, unknown> = {};
  if (stdout.trim()) {
    try {
      parsed = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new CniError('ERR_NETWORK_CNI_PLUGIN', `CNI plugin ${type} ${inv.command} printed no JSON: ${stdout.slice(0, 200)} ${stderr.slice(0, 200)}`, {
        plugin: type,
      });
    }
  }
  if (code !== 0) {
    const cniCode = typeof parsed.code === 'number' ? parsed.code : undefined;
    const msg = typeof parsed.msg === 'string' ? parsed.msg : stderr.trim() || `exit code ${code}`;
    const details = typeof parsed.details === 'string' ? parsed.details : undefined;
    throw new CniError(
      'ERR_NETWORK_CNI_PLUGIN',
      `CNI plugin ${type} ${inv.command} failed${cniCode ? ` (code ${cniCode})` : ''}: ${msg}${details ? `: ${details}` : ''}`,
      { plugin: type, cniCode, details },
    );
  }
  return parsed;
}

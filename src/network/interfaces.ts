import { readFile } from 'node:fs/promises';

/** An interface of a network namespace and its traffic counters, from /proc/PID/net/dev. */
export interface InterfaceCounters {
  /** Interface name, e.g. `lo`, `eth0`. */
  readonly name: string;
  /** Bytes received. */
  readonly rxBytes: number;
  /** Bytes sent. */
  readonly txBytes: number;
}

/**
 * The network interfaces of the network namespace that process `pid` lives in.
 * A new, empty network namespace has only `lo`.
 * @param pid - a PID, or `'self'`
 */
export async function interfacesOf(pid: number | 'self'): Promise<InterfaceCounters[]> {
  const text = await readFile(`/proc/${pid}/net/dev`, 'utf8');
  return text
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':'))
    .map((l) => {
      const [name = '', rest = ''] = l.split(':');
      const n = rest.trim().split(/\s+/).map(Number);
      return { name: name.trim(), rxBytes: n[0] ?? 0, txBytes: n[8] ?? 0 };
    });
}

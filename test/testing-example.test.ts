// The examples/testing suite (ctrkit/testing fixtures, two files in parallel) runs as a user
// would run it, inside a network namespace made for this test, with a state root of its own —
// and leaves nothing behind there: no container record, no bridge, no nftables table, and
// ip_forward as it found it.
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { NetworkNamespace } from 'ctrkit/network';

let ns: NetworkNamespace;
let root: string;

beforeAll(async () => {
  root = mkdtempSync('/tmp/ctk-testing-');
  ns = await NetworkNamespace.create(`ctk-testing-${process.pid}`);
});

afterAll(async () => {
  await ns?.delete();
  rmSync(root, { recursive: true, force: true });
});

describe('examples/testing', () => {
  it('passes with its two files in parallel, and leaves nothing on the host', async () => {
    const inNs = async (cmd: string) => (await ns.exec(['sh', '-c', cmd])).stdout;
    expect(await inNs('cat /proc/sys/net/ipv4/ip_forward')).toBe('0\n');
    const r = await ns.exec(['npx', 'vitest', 'run', '--config', 'examples/testing/vitest.config.ts', '--reporter', 'verbose'], {
      timeoutMs: 240_000,
      env: { ...process.env, CTRKIT_STATE_ROOT: root, CTRKIT_TEST_REPORT: `${root}/report.json` },
    });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Test Files\s+.*2 passed/);
    expect(r.stdout).toMatch(/Tests\s+.*6 passed/);
    expect(await Container.list({ stateRoot: root, all: true })).toEqual([]);
    expect(await inNs('ip -o link show type bridge')).toBe('');
    expect(await inNs('nft list tables')).toBe('');
    expect(await inNs('cat /proc/sys/net/ipv4/ip_forward')).toBe('0\n');
  }, 300_000);
});

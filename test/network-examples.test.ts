import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** Runs an example as a user would (`node examples/X.mjs`), resolving 'ctrkit' through the package. */
function example(name: string): string {
  return execFileSync(process.execPath, [`examples/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
}

/** What the machine's own namespace shows of ctrkit: must stay empty. */
function leftovers(): string {
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ctk'));
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ctk'));
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('ctk'));
  return [...links, ...netns, ...tables].join('\n');
}

describe("the chapter's networking experiments, as examples", () => {
  it('5.1.4: a named netns shows only lo; a veth end inside with 10.1.1.2/24 answers ping', () => {
    const out = example('5.1.4-veth.mjs');
    expect(out).toMatch(/^links in ctk-container1-\d+: lo$/m);
    expect(out).toMatch(/^links in ctk-container1-\d+ now: lo\(up\) ctkveth1\(up\)$/m);
    expect(out).toMatch(/^addresses in ctk-container1-\d+: 127\.0\.0\.1\/8 10\.1\.1\.2\/24$/m);
    expect(out).toContain('2 packets transmitted, 2 packets received');
    expect(leftovers()).toBe('');
  });

  it('5.4.2: bridge mode (containers reach each other and, masqueraded, the outside), none mode, host mode', () => {
    const out = example('5.4.2-bridge-mode.mjs');
    expect(out).toMatch(/^bridge: container A 10\.88\.0\.\d+, container B 10\.88\.0\.\d+, gateway 10\.88\.0\.1$/m);
    expect(out).toMatch(/^bridge: A pings B: ok$/m);
    expect(out).toMatch(/^bridge: the outside host saw A as 198\.51\.100\.1 /m);
    expect(out).toMatch(/^none: lo$/m);
    expect(leftovers()).toBe('');
  });

  it('5.4.4: -p 8080:80 — a client outside reaches the container through the host and is seen with its own address', () => {
    const out = example('5.4.4-port-mapping.mjs');
    expect(out).toMatch(/published 8080->80\/tcp/);
    expect(out).toMatch(/^client 198\.51\.100\.2 -> 198\.51\.100\.1:8080: the server saw 198\.51\.100\.2$/m);
    expect(out).toMatch(/^from the host through 127\.0\.0\.1:8080: ok$/m);
    expect(leftovers()).toBe('');
  });

  it.skipIf(!existsSync('/usr/lib/cni/bridge'))('5.4.3: the same container through the CNI bridge plugin', () => {
    const out = example('5.4.3-cni.mjs');
    expect(out).toMatch(/^bridge plugin speaks: .*1\.0\.0/m);
    expect(out).toMatch(/^CNI ADD: 10\.22\.0\.\d+\/24 via 10\.22\.0\.1/m);
    expect(out).toMatch(/^outside -> 198\.51\.100\.1:8080: ok$/m);
    expect(leftovers()).toBe('');
  });
});

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** Runs an example as a user would (`node examples/X.mjs`), resolving 'ctrkit' through the package. */
function example(name: string): string {
  return execFileSync(process.execPath, [`examples/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
}

/** What the machine's own namespace shows of ctrkit: must stay empty. */
function leftovers(): string {
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('ctk'));
  // A namespace named after a live process (ctk-...-PID) belongs to a run still going on (other
  // test files on this machine); the examples' own are named after their dead process.
  const alive = (l: string) => {
    const pid = /-(\d+)(\s|$)/.exec(l)?.[1];
    return pid !== undefined && existsSync(`/proc/${pid}`);
  };
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('ctk') && !alive(l));
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('ctk'));
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
    const hostIfs = out.match(/^host: the lab host's interfaces: (.*)$/m)![1]!;
    expect(hostIfs).toMatch(/^lo ctkup ctkbr0 /);
    expect(out).toContain(`host: the host-mode container sees: ${hostIfs}\n`);
    expect(out).toMatch(/^host: outside -> 198\.51\.100\.1:80 \(the lab host's port 80\): host-mode httpd$/m);
    expect(leftovers()).toBe('');
  });

  it('5.4.4: -p 8080:80 — a client outside reaches the container through the host and is seen with its own address', () => {
    const out = example('5.4.4-port-mapping.mjs');
    expect(out).toMatch(/published 8080->80\/tcp/);
    expect(out).toMatch(/^client 198\.51\.100\.2 -> 198\.51\.100\.1:8080: the server saw 198\.51\.100\.2$/m);
    expect(out).toMatch(/^from the host through 127\.0\.0\.1:8080: ok$/m);
    expect(leftovers()).toBe('');
  });

  it('5.4.1 question 4: containers on two hosts reach each other over a flannel-style VXLAN overlay', () => {
    const out = example('5.4.1-cross-host-vxlan.mjs');
    // the kernel state, as iproute2 reads it back on host A
    expect(out).toMatch(/^ {2}ip -d link: vxlan id 1 local 192\.0\.2\.1 dev ctkwire .*dstport 8472 nolearning$/m);
    const macB = out.match(/^host B .* mac ([0-9a-f:]{17})$/m)![1]!;
    expect(out).toContain(`bridge fdb show dev ctk.1: ${macB} dst 192.0.2.2 self permanent`);
    expect(out).toContain(`ip neigh show dev ctk.1: 10.244.2.0 lladdr ${macB} PERMANENT`);
    expect(out).toMatch(/^ {2}ip route show dev ctk\.1: 10\.244\.2\.0\/24 via 10\.244\.2\.0 onlink$/m);
    // the traffic: ping and HTTP from a container on A to one on B, which sees A's own address (no NAT)
    expect(out).toMatch(/^container on host B: 10\.244\.2\.2 /m);
    expect(out).toMatch(/^container on host A: 10\.244\.1\.2$/m);
    expect(out).toContain('2 packets transmitted, 2 packets received');
    expect(out).toMatch(/^ {2}wget: 10\.244\.1\.2 on web-on-b$/m);
    expect(Number(out.match(/^host B ctk\.1 received (\d+) packets from the tunnel$/m)![1])).toBeGreaterThan(2);
    expect(leftovers()).toBe('');
  });

  it('5.4.2/5.4.4: the MASQUERADE and DNAT rules in `nft list table ip ctk` form; iptables-nft does not show them', () => {
    const out = example('5.4.4-nat-rules.mjs');
    const nft = out.split('$ nft list table ip ctk\n')[1]!.split('\n$ ')[0]!;
    expect(nft).toMatch(/^table ip ctk \{$/m);
    expect(nft).toMatch(/^\t\tip saddr 10\.88\.0\.0\/24 oifname != "ctkbr0" masquerade comment "ctk:br:ctkbr0"$/m);
    expect(nft).toMatch(/^\t\t.*tcp dport 8080 dnat to 10\.88\.0\.2:80 comment "ctk:port:ctkbr0:tcp:\*:8080:\d+\.\d+"$/m);
    const ipt = out.split(/\$ iptables-nft -t nat -S {3}\(exit 0\)\n/)[1]!.split('\n$ ')[0]!;
    expect(ipt).not.toMatch(/MASQUERADE|DNAT|8080/);
    expect(out).toMatch(/^iptables' nat table: (present|absent .*); the MASQUERADE and DNAT rules are in "table ip ctk"/m);
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

/**
 * Name resolution on a named network: every member container's /etc/hosts is a file ctrkit
 * wrote and bound into the container, so when a container joins or leaves, each member's
 * file is rewritten *in place* (same inode: the bind mount shows the new content) with a
 * line per member: its address, hostname, container name and aliases. Lookups never leave
 * the container, so a name no member has fails at once (no DNS timeout).
 *
 * Members are files under `stateDir/networks/NAME.members/`, changed only under the
 * networks lock; a member whose init is gone (a crashed owner) is dropped on the next change.
 * @internal
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../log.js';
import { isAlive, type ProcessIdentity } from '../sys/liveness.js';

const log = logger('ctrkit:network');

/** One container on a named network, as its member file records it. @internal */
export interface MemberRecord {
  /** The container id. */
  readonly id: string;
  readonly address: string;
  readonly hostname: string;
  /** The container's name, when it has one. */
  readonly name: string | undefined;
  readonly aliases: readonly string[];
  /** The container's hosts file on the host (bound at /etc/hosts), rewritten on every change. */
  readonly hostsFile: string;
  /** The hosts file as the container's own setup wrote it, before the network's lines. */
  readonly baseHosts: string;
  /** The container's init: a member whose init is gone is stale. */
  readonly init: ProcessIdentity;
}

/** The directory of a network's member files. @internal */
export function membersDir(stateDir: string, network: string): string {
  return join(stateDir, 'networks', `${network}.members`);
}

/** The live members (stale member files are deleted on the way). Call under the networks lock. @internal */
export function liveMembers(stateDir: string, network: string): MemberRecord[] {
  const dir = membersDir(stateDir, network);
  if (!existsSync(dir)) return [];
  const out: MemberRecord[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      const m = JSON.parse(readFileSync(join(dir, f), 'utf8')) as MemberRecord;
      if (isAlive(m.init)) out.push(m);
      else rmSync(join(dir, f), { force: true });
    } catch {
      rmSync(join(dir, f), { force: true }); // half-written by a crashed owner
    }
  }
  return out;
}

/** Adds a member and rewrites every member's hosts file. Call under the networks lock. @internal */
export function addMember(stateDir: string, network: string, member: MemberRecord): void {
  const dir = membersDir(stateDir, network);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, `${member.id}.json`), JSON.stringify(member));
  rewriteHosts(liveMembers(stateDir, network), network);
}

/** Removes a member and rewrites the others' hosts files; true when none is left. Call under the networks lock. @internal */
export function removeMember(stateDir: string, network: string, id: string): boolean {
  rmSync(join(membersDir(stateDir, network), `${id}.json`), { force: true });
  const rest = liveMembers(stateDir, network);
  rewriteHosts(rest, network);
  return rest.length === 0;
}

function rewriteHosts(members: readonly MemberRecord[], network: string): void {
  const lines = members.map((m) => `${m.address}\t${[...new Set([m.hostname, ...(m.name ? [m.name] : []), ...m.aliases])].join(' ')}`);
  const block = `# network ${network} (kept up to date by ctrkit)\n${lines.join('\n')}\n`;
  for (const m of members) {
    try {
      // writeFileSync truncates and writes the existing file: the inode bound into the
      // container stays the same, so the container sees the new content.
      writeFileSync(m.hostsFile, `${m.baseHosts}${block}`);
    } catch (e) {
      log('rewriting the hosts file of %s: %s', m.id, (e as Error).message); // its container just went
    }
  }
}

// Every TypeScript block of the README runs as written, as a plain ES module on the Node this
// suite runs on (20, the declared minimum: no `await using` there), importing the package by
// its name. A block that needs what a test cannot have says so right above it:
// `<!-- readme-test: skip (why) -->`. Each runs in a network namespace of its own with a
// state root of its own, so a block that makes a bridge touches nothing of this machine's.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from 'ctrkit';
import { NetworkNamespace } from 'ctrkit/network';
import { tempDir } from './helpers.js';

interface Block {
  readonly line: number;
  readonly code: string;
  readonly skip: string | undefined;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const skip = /<!-- readme-test: skip \((.+)\) -->/.exec(lines[i - 1] ?? '')?.[1];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    out.push({ line: start + 1, code: body.join('\n'), skip });
  }
  return out;
}

const all = blocks(readFileSync('README.md', 'utf8'));
let dir: string;
let cleanup = () => {};

beforeAll(() => {
  [dir, cleanup] = tempDir();
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(process.cwd(), join(dir, 'node_modules', 'ctrkit'));
});

afterAll(() => cleanup());

describe('README', () => {
  it('has TypeScript blocks, and says why for each it does not run', () => {
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const b of all) if (b.skip === undefined) expect(b.code, `README.md:${b.line} imports what it uses`).toMatch(/^import /m);
  });

  it.each(all.filter((b) => !b.skip).map((b) => [b.line, b] as const))('the block at line %i runs as written', async (line, b) => {
    const file = join(dir, `block-${line}.mjs`);
    writeFileSync(file, b.code);
    const root = join(dir, `root-${line}`);
    const ns = await NetworkNamespace.create(`ctk-readme-${process.pid}-${line}`);
    try {
      const r = await ns.exec([process.execPath, file], { timeoutMs: 60_000, env: { ...process.env, CTRKIT_STATE_ROOT: root } });
      expect(r.stderr, `README.md:${line}`).toBe('');
      expect(r.exitCode, `README.md:${line}: ${r.stdout}`).toBe(0);
      // Whatever the block started, it also ended: no container is left in its state root.
      expect(await Container.list({ stateRoot: root, all: true })).toEqual([]);
    } finally {
      await ns.delete();
    }
  });
});

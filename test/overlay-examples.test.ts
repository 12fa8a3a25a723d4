import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostMounts } from './helpers.js';

/** Runs an example as a user would (`node examples/X.mjs`), resolving 'ctrkit/overlay' through the package. */
function example(name: string): string {
  return execFileSync(process.execPath, [`examples/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Nothing an example made may outlive it: no mount, no temp dir. */
function leftovers(): string[] {
  return [...hostMounts().filter((m) => m.includes('ctk-example')), ...readdirSync('/tmp').filter((d) => d.startsWith('ctk-example'))];
}

describe("the chapter's 5.3 experiments, as examples", () => {
  it('5.3.3: read through merged, write copies up, the lower is unchanged, the upper holds the new copy', () => {
    const out = example('5.3.3-overlay-cow.mjs');
    expect(out).toMatch(/^mounted overlay on \/tmp\/ctk-example-overlay-\w+\/merged \(via fsconfig\)$/m);
    expect(out).toMatch(/^cat merged\/file\.txt: lower layer file$/m);
    expect(out).toMatch(/^cat merged\/file\.txt after the write: modified$/m);
    expect(out).toMatch(/^cat lower\/file\.txt: lower layer file$/m);
    expect(out).toMatch(/^cat upper\/file\.txt: modified$/m);
    expect(out).toMatch(/^diff: modified \/file\.txt$/m);
    expect(leftovers()).toEqual([]);
  });

  it('5.3.3: two lowers (lowerdir=/lower1:/lower2): both show, the top one wins, writes go to upper', () => {
    const out = example('5.3.3-two-lowers.mjs');
    expect(out).toMatch(/^the chapter's form: lowerdir=\/lower1:\/lower2,upperdir=\/upper,workdir=\/work$/m);
    expect(out).toMatch(/^ls merged: only-in-lower1\.txt only-in-lower2\.txt shared\.txt$/m);
    expect(out).toMatch(/^cat merged\/shared\.txt: from lower1$/m);
    expect(out).toMatch(/^after a write to merged\/only-in-lower2\.txt: upper has \[only-in-lower2\.txt\], lower2 still says 2$/m);
    expect(leftovers()).toEqual([]);
  });

  it('5.3.3: the file-operation table: read writes nothing, create and modify land in upper, delete leaves a whiteout', () => {
    const out = example('5.3.3-file-operations.mjs');
    const rows = Object.fromEntries(
      out
        .split('\n')
        .slice(1, 5)
        .map((l) => l.split('|').map((c) => c.trim()))
        .map((r) => [r[0], r.slice(1)]),
    );
    expect(rows.read).toEqual(['read.txt', '"lower"', 'file "lower"', 'absent']);
    expect(rows.create).toEqual(['create.txt', '"new"', 'absent', 'file "new"']);
    expect(rows.modify).toEqual(['modify.txt', '"lower\\nchanged"', 'file "lower"', 'file "lower\\nchanged"']);
    expect(rows.delete).toEqual(['delete.txt', 'ENOENT', 'file "lower"', 'char device 0:0 (whiteout)']);
    expect(out).toMatch(/^diff: added \/create\.txt, deleted \/delete\.txt, modified \/modify\.txt$/m);
    expect(leftovers()).toEqual([]);
  });

  it('5.3.4: a deleted lower file is a 0:0 character device in the upper; a replaced directory is opaque', () => {
    const out = example('5.3.4-whiteouts.mjs');
    expect(out).toMatch(/^merged\/etc now: \[\]$/m);
    expect(out).toMatch(/^lower\/etc still: \[some-config\]$/m);
    expect(out).toMatch(/^c--------- +\d+ root root +0, 0 +some-config$/m);
    expect(out).toMatch(/^merged\/app now: \[new\]$/m);
    expect(out).toMatch(/^lower\/app still: \[a, b\]$/m);
    expect(out).toMatch(/^upper\/app is opaque \(trusted\.overlay\.opaque=y\): true$/m);
    expect(out).toMatch(/^ {2}opaque +\/app +-> app\/\.wh\.\.wh\.\.opq$/m);
    expect(out).toMatch(/^ {2}whiteout +\/etc\/some-config +-> etc\/\.wh\.some-config$/m);
    expect(leftovers()).toEqual([]);
  });

  it('5.3.1: ten containers on one base: the disk grows by their changes, not by ten bases', () => {
    const out = example('5.3.1-shared-base.mjs');
    const [growth, base, change] = out
      .match(/^growth bytes: (\d+), base bytes: (\d+), change bytes: (\d+)$/m)!
      .slice(1)
      .map(Number);
    expect(base).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    expect(growth).toBeGreaterThanOrEqual(change!);
    expect(growth).toBeLessThan(change! + 1024 * 1024); // the changes plus a little metadata
    expect(growth! * 10).toBeLessThan(base!); // far from the 10 x base of full copies
    expect(out).toMatch(/^each container sees: 32\.\d MiB/m);
    expect(out).toMatch(/^ten full copies would need: 320\.0 MiB$/m);
    expect(leftovers()).toEqual([]);
  });
});

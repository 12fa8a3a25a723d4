// Chapter 5.3.3 — OverlayFS copy-on-write, step by step: a file in the lower layer is read
// through the merged view, modified through it, and the lower stays as it was while the
// upper holds the new copy.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay } from 'ctrkit/overlay';

const dir = mkdtempSync('/tmp/ctk-example-overlay-');
try {
  // 1. mkdir -p /tmp/overlay/{lower,upper,work,merged}; echo "lower layer file" > lower/file.txt
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d));
  for (const d of [lower, upper, work, merged]) mkdirSync(d);
  writeFileSync(join(lower, 'file.txt'), 'lower layer file\n');

  // 2. mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work merged
  const m = await Overlay.mount({ lower: [lower], upper, work, target: merged, source: 'ctk-example' });
  try {
    console.log(`mounted overlay on ${merged} (via ${m.api})`);

    // 3. cat merged/file.txt
    console.log(`cat merged/file.txt: ${readFileSync(join(merged, 'file.txt'), 'utf8').trim()}`);

    // 4. echo "modified" > merged/file.txt   (copy-up, then the write)
    writeFileSync(join(merged, 'file.txt'), 'modified\n');
    console.log(`cat merged/file.txt after the write: ${readFileSync(join(merged, 'file.txt'), 'utf8').trim()}`);

    // 5. the layers
    console.log(`cat lower/file.txt: ${readFileSync(join(lower, 'file.txt'), 'utf8').trim()}`);
    console.log(`cat upper/file.txt: ${readFileSync(join(upper, 'file.txt'), 'utf8').trim()}`);
    const changes = await m.diff();
    console.log(`diff: ${changes.map((c) => `${c.kind} ${c.path}`).join(', ')}`);
  } finally {
    await m.unmount();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

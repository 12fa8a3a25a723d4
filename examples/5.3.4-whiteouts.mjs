// Chapter 5.3.4 — Whiteouts: deleting a lower file inside the container leaves a character
// device 0:0 of the same name in the upper layer; replacing a lower directory makes the new
// one opaque (trusted.overlay.opaque=y) so nothing of the lower's shows through. In an OCI
// image layer the same two facts travel as `.wh.NAME` and `.wh..wh..opq` files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay, isOpaque, listWhiteouts, ociOpaqueName, ociWhiteoutName } from 'ctrkit/overlay';

const dir = mkdtempSync('/tmp/ctk-example-whiteouts-');
try {
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d));
  mkdirSync(join(lower, 'etc'), { recursive: true });
  mkdirSync(join(lower, 'app'));
  writeFileSync(join(lower, 'etc/some-config'), 'setting=1\n');
  for (const f of ['a', 'b']) writeFileSync(join(lower, 'app', f), f);

  const m = await Overlay.mount({ lower: [lower], upper, work, target: merged, source: 'ctk-example' });
  try {
    // $ rm /etc/some-config   (inside the container)
    rmSync(join(merged, 'etc/some-config'));
    console.log('$ rm /etc/some-config');
    console.log(`merged/etc now: [${readdirSync(join(merged, 'etc')).join(', ')}]`);
    console.log(`lower/etc still: [${readdirSync(join(lower, 'etc')).join(', ')}]`);
    console.log('$ ls -la upper/etc/');
    const ls = execFileSync('ls', ['-la', '--time-style=+', join(upper, 'etc')], { encoding: 'utf8' });
    process.stdout.write(
      `${ls
        .split('\n')
        .filter((l) => l.endsWith('some-config'))
        .join('\n')}\n`,
    );

    // $ rm -rf /app && mkdir /app && touch /app/new
    rmSync(join(merged, 'app'), { recursive: true });
    mkdirSync(join(merged, 'app'));
    writeFileSync(join(merged, 'app/new'), '');
    console.log('$ rm -rf /app && mkdir /app && touch /app/new');
    console.log(`merged/app now: [${readdirSync(join(merged, 'app')).join(', ')}]`);
    console.log(`lower/app still: [${readdirSync(join(lower, 'app')).sort().join(', ')}]`);
    console.log(`upper/app is opaque (trusted.overlay.opaque=y): ${await isOpaque(join(upper, 'app'), { userxattr: false })}`);

    console.log('markers in the upper, and their OCI layer form:');
    for (const w of await listWhiteouts(upper)) {
      const oci = w.kind === 'whiteout' ? ociWhiteoutName(w.path) : ociOpaqueName(w.path);
      console.log(`  ${w.kind.padEnd(8)} ${w.path.padEnd(18)} -> ${oci}`);
    }
  } finally {
    await m.unmount();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

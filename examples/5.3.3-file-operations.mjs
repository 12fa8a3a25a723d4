// Chapter 5.3.3 — the file-operation table, each row done through the merged view of a
// one-lower overlay and then looked up in the layers:
//   read    from upperdir or lowerdir (upper first)  -> nothing written to upper
//   create  written straight to upperdir              -> a new file in upper only
//   modify  copied up to upperdir, then changed       -> a full copy in upper, lower intact
//   delete  a whiteout in upperdir marks it deleted   -> a 0:0 character device in upper
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay } from 'ctrkit/overlay';

const dir = mkdtempSync('/tmp/ctk-example-fileops-');
/** What a layer holds at `name`. */
function look(layer, name) {
  let st;
  try {
    st = lstatSync(join(layer, name));
  } catch {
    return 'absent';
  }
  if (st.isCharacterDevice()) return `char device ${Math.floor(st.rdev / 256)}:${st.rdev % 256} (whiteout)`;
  return `file "${readFileSync(join(layer, name), 'utf8').trim()}"`;
}
/** What the merged view shows at `name`. */
const see = (merged, name) => {
  try {
    return `"${readFileSync(join(merged, name), 'utf8').trim()}"`;
  } catch (e) {
    return e.code;
  }
};
try {
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(dir, d));
  for (const d of [lower, upper, work, merged]) mkdirSync(d);
  for (const f of ['read.txt', 'modify.txt', 'delete.txt']) writeFileSync(join(lower, f), 'lower\n');

  const m = await Overlay.mount({ lower: [lower], upper, work, target: merged, source: 'ctk-example' });
  try {
    const rows = [];
    const row = (op, name) => rows.push([op, name, see(merged, name), look(lower, name), look(upper, name)]);
    readFileSync(join(merged, 'read.txt'));
    row('read', 'read.txt');
    writeFileSync(join(merged, 'create.txt'), 'new\n');
    row('create', 'create.txt');
    appendFileSync(join(merged, 'modify.txt'), 'changed\n');
    row('modify', 'modify.txt');
    rmSync(join(merged, 'delete.txt'));
    row('delete', 'delete.txt');
    const head = ['operation', 'file', 'merged', 'lower', 'upper'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].replace('\n', '\\n').length)));
    for (const r of [head, ...rows])
      console.log(
        r
          .map((c, i) => c.replace('\n', '\\n').padEnd(widths[i]))
          .join(' | ')
          .trimEnd(),
      );
    const changes = await m.diff();
    console.log(
      `diff: ${changes
        .map((c) => `${c.kind} ${c.path}`)
        .sort()
        .join(', ')}`,
    );
  } finally {
    await m.unmount();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

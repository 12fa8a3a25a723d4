// Container logs in Docker's json-file format: the writer, the reader (tail, since/until,
// streams), follow across rotations. Plain files in a temp dir: no root, no containers.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../src/errors.js';
import { followLogLines, formatLogLines, LogWriter, readLogLines, type LogLine } from '../src/container/logs/index.js';

const root = mkdtempSync('/tmp/ctk-logs-');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh log path in the temp dir, each in a directory of its own (rotated files sit beside it). */
const logPath = () => {
  const dir = mkdtempSync(join(root, `${++n}-`));
  return join(dir, 'c-json.log');
};
const texts = (lines: readonly LogLine[]) => lines.map((l) => l.text);
const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));
const records = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Writes `lines` (numbered `prefix-i`) one chunk of whole lines at a time. */
function writeNumbered(w: LogWriter, count: number, perChunk = 1, prefix = 'line') {
  for (let i = 0; i < count; i += perChunk) {
    let chunk = '';
    for (let j = i; j < Math.min(count, i + perChunk); j++) chunk += `${prefix}-${j}\n`;
    w.write('stdout', Buffer.from(chunk));
  }
}
const numbered = (from: number, to: number, prefix = 'line') => Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

/** Waits until `pred` holds (for a follower to catch up), failing after a few seconds. */
async function waitFor(pred: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 5000; !pred(); await tick()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

async function drain(it: AsyncIterable<LogLine>): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const line of it) out.push(line);
  return out;
}

describe('LogWriter', () => {
  it('stores one record per chunk of whole lines, in json-file format, mode 0640', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    w.write('stdout', Buffer.from('one\ntwo\n'));
    w.write('stderr', Buffer.from('oops\n'));
    w.close();
    const recs = records(path);
    expect(recs).toHaveLength(2);
    expect(recs[0]).toEqual({ log: 'one\ntwo\n', stream: 'stdout', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/) });
    expect(recs[1]).toMatchObject({ log: 'oops\n', stream: 'stderr' });
    expect(statSync(path).mode & 0o777).toBe(0o640);
    const lines = await readLogLines(path);
    expect(lines.map((l) => [l.stream, l.text])).toEqual([
      ['stdout', 'one'],
      ['stdout', 'two'],
      ['stderr', 'oops'],
    ]);
    expect(lines[0]!.time).toBeInstanceOf(Date);
    expect(lines[0]!.partial).toBeUndefined();
  });

  it('keeps lines and multi-byte characters whole across every chunk boundary', async () => {
    const text = 'héllo wörld 😀\nsecond € line\nthird\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const path = logPath();
      const w = LogWriter.open(path);
      w.write('stdout', bytes.subarray(0, cut));
      w.write('stdout', bytes.subarray(cut));
      w.close();
      expect(texts(await readLogLines(path))).toEqual(['héllo wörld 😀', 'second € line', 'third']);
      // Only whole lines are stored with a chunk: the cut-off part waits for the next one.
      expect(
        records(path)
          .map((r) => r.log)
          .join(''),
      ).toBe(text);
    }
  });

  it("keeps each stream's unfinished line apart and the order of records", async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    w.write('stdout', Buffer.from('out-1\nout-'));
    w.write('stderr', Buffer.from('err-1\n'));
    w.write('stdout', Buffer.from('2\nout-3\n'));
    w.write('stderr', Buffer.from('err-2\n'));
    w.close();
    const lines = await readLogLines(path);
    expect(lines.map((l) => `${l.stream}:${l.text}`)).toEqual(['stdout:out-1', 'stderr:err-1', 'stdout:out-2', 'stdout:out-3', 'stderr:err-2']);
    expect(texts(await readLogLines(path, { streams: ['stderr'] }))).toEqual(['err-1', 'err-2']);
    expect(texts(await readLogLines(path, { streams: ['stdout'], tail: 2 }))).toEqual(['out-2', 'out-3']);
  });

  it('flushes an unfinished line on close as a partial record, and an incomplete character as U+FFFD', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    w.write('stdout', Buffer.from('done\nno newline'));
    w.write('stderr', Buffer.from([0x41, 0xe2, 0x82])); // 'A' and two of €'s three bytes
    w.close();
    w.write('stdout', Buffer.from('ignored after close\n'));
    expect(records(path).slice(1)).toEqual([
      expect.objectContaining({ log: 'no newline', stream: 'stdout', partial: true }),
      expect.objectContaining({ log: 'A\ufffd', stream: 'stderr', partial: true }),
    ]);
    const lines = await readLogLines(path);
    expect(lines.map((l) => [l.text, l.partial])).toEqual([
      ['done', undefined],
      ['no newline', true],
      ['A\ufffd', true],
    ]);
  });

  it('stores a line longer than 16 KiB in partial pieces that format back into the line', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    for (let i = 0; i < 5; i++) w.write('stdout', Buffer.alloc(4096, 'x')); // 16 KiB is not yet over, 20 KiB is
    expect(records(path)).toEqual([expect.objectContaining({ log: 'x'.repeat(20480), partial: true })]);
    w.write('stdout', Buffer.from('yz\nnext\n'));
    w.close();
    const lines = await readLogLines(path);
    expect(lines.map((l) => [l.text.length, l.partial])).toEqual([
      [20480, true],
      [2, undefined],
      [4, undefined],
    ]);
    expect(formatLogLines(lines)).toBe(`${'x'.repeat(20480)}yz\nnext\n`);
  });

  it('hands stored lines to subscribers until they unsubscribe; a throwing one is reported, not raised', () => {
    const errors: Error[] = [];
    const w = LogWriter.open(logPath(), { onError: (e) => errors.push(e) });
    const seen: string[] = [];
    const off = w.subscribe((l) => seen.push(`${l.stream}:${l.text}${l.partial ? '…' : ''}`));
    w.subscribe(() => {
      throw new Error('bad listener');
    });
    w.write('stdout', Buffer.from('a\nb\nc'));
    w.write('stderr', Buffer.from('e\n'));
    w.write('stdout', Buffer.from('d\n'));
    off();
    w.write('stdout', Buffer.from('unseen\n'));
    w.close();
    expect(seen).toEqual(['stdout:a', 'stdout:b', 'stderr:e', 'stdout:cd']);
    expect(errors.map((e) => e.message)).toContain('bad listener');
  });

  it('refuses limits out of range', () => {
    expect(() => LogWriter.open(logPath(), { maxSize: 0 })).toThrow(InvalidOptionError);
    expect(() => LogWriter.open(logPath(), { maxFiles: 0 })).toThrow(/maxFiles/);
    expect(() => LogWriter.open(logPath(), { maxFiles: 1.5 })).toThrow(InvalidOptionError);
  });

  it('continues an existing log, ending a record its killed writer left cut short', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    writeNumbered(w, 3);
    w.close();
    appendFileSync(path, '{"log":"cut sho'); // the writer died mid-write
    expect(texts(await readLogLines(path))).toEqual(numbered(0, 3));
    expect(texts(await readLogLines(path, { tail: 1 }))).toEqual(['line-2']);
    const again = LogWriter.open(path);
    again.write('stdout', Buffer.from('after restart\n'));
    again.close();
    expect(texts(await readLogLines(path))).toEqual([...numbered(0, 3), 'after restart']);
    expect(texts(await readLogLines(path, { tail: 2 }))).toEqual(['line-2', 'after restart']);
  });
});

describe('rotation', () => {
  const rotatedFiles = (path: string) => readdirSync(join(path, '..')).sort();

  for (const maxFiles of [1, 2, 3]) {
    it(`keeps ${maxFiles} file(s) within maxSize each`, async () => {
      const path = logPath();
      const maxSize = 4096;
      const w = LogWriter.open(path, { maxSize, maxFiles });
      writeNumbered(w, 1000, 3);
      w.close();
      const names = rotatedFiles(path);
      expect(names).toEqual(['c-json.log', 'c-json.log.1', 'c-json.log.2'].slice(0, maxFiles));
      const recordSize = Math.max(
        ...readFileSync(path, 'utf8')
          .split('\n')
          .map((l) => Buffer.byteLength(l) + 1),
      );
      const sizes = names.map((f) => statSync(join(path, '..', f)).size);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(maxSize);
      expect(sizes.reduce((a, b) => a + b)).toBeLessThanOrEqual(maxSize * maxFiles + recordSize);
      // What is kept is the newest part of the output, in order and without gaps.
      const kept = texts(await readLogLines(path));
      expect(kept.length).toBeGreaterThan(0);
      expect(kept).toEqual(numbered(1000 - kept.length, 1000));
    });
  }

  it('drops a rotated file left by a run with a larger maxFiles', async () => {
    const path = logPath();
    const w3 = LogWriter.open(path, { maxSize: 1024, maxFiles: 3 });
    writeNumbered(w3, 200, 2, 'old');
    w3.close();
    expect(rotatedFiles(path)).toHaveLength(3);
    const w2 = LogWriter.open(path, { maxSize: 1024, maxFiles: 2 });
    writeNumbered(w2, 200, 2, 'new');
    w2.close();
    expect(rotatedFiles(path)).toEqual(['c-json.log', 'c-json.log.1']);
    expect(texts(await readLogLines(path)).every((t) => t.startsWith('new-'))).toBe(true);
  });

  it('tails across a rotation, counting lines rather than records', async () => {
    const path = logPath();
    const w = LogWriter.open(path, { maxSize: 2048, maxFiles: 3 });
    writeNumbered(w, 120, 4);
    w.close();
    const all = texts(await readLogLines(path));
    const current = records(path).flatMap((r) => String(r.log).split('\n').filter(Boolean));
    expect(current.length).toBeLessThan(all.length);
    const tail = current.length + 5; // reaches into PATH.1
    expect(texts(await readLogLines(path, { tail }))).toEqual(all.slice(-tail));
    expect(texts(await readLogLines(path, { tail: 3 }))).toEqual(numbered(117, 120));
    expect(texts(await readLogLines(path, { tail: 100_000 }))).toEqual(all);
    expect(await readLogLines(path, { tail: 0 })).toEqual([]);
  });

  it('tails a 50 MB log from its end', async () => {
    const path = logPath();
    const w = LogWriter.open(path, { maxSize: 1e9, maxFiles: 1 });
    const body = 'y'.repeat(1000);
    let i = 0;
    while (statSync(path).size < 50e6) {
      let chunk = '';
      while (chunk.length < 60_000) chunk += `${i++} ${body}\n`;
      w.write(i % 7 === 0 ? 'stderr' : 'stdout', Buffer.from(chunk));
    }
    w.write('stderr', Buffer.from('last error\n'));
    w.write('stdout', Buffer.from('second last\nlast\n'));
    w.close();
    const lines = await readLogLines(path, { tail: 4 });
    expect(texts(lines)).toEqual([`${i - 1} ${body}`, 'last error', 'second last', 'last']);
    expect(texts(await readLogLines(path, { tail: 1, streams: ['stderr'] }))).toEqual(['last error']);
  });

  it('reads nothing from a log that does not exist', async () => {
    expect(await readLogLines(join(root, 'missing.log'), { tail: 5 })).toEqual([]);
  });
});

describe('since and until', () => {
  const hour = 3_600_000;
  /** A log written by hand with records 5h, 4h ... 1h ago and one now. */
  function timedLog(now: number) {
    const path = logPath();
    const at = [5, 4, 3, 2, 1, 0].map((h) => now - h * hour);
    writeFileSync(path, at.map((t, i) => `${JSON.stringify({ log: `h${5 - i}\n`, stream: 'stdout', time: new Date(t).toISOString() })}\n`).join(''));
    return { path, at };
  }

  it('selects by Date, epoch ms, ISO date and Unix seconds', async () => {
    const { path, at } = timedLog(Date.now());
    expect(texts(await readLogLines(path, { since: new Date(at[3]!) }))).toEqual(['h2', 'h1', 'h0']);
    expect(texts(await readLogLines(path, { since: at[3]!, until: at[4]! }))).toEqual(['h2', 'h1']);
    expect(texts(await readLogLines(path, { until: new Date(at[1]!).toISOString() }))).toEqual(['h5', 'h4']);
    expect(texts(await readLogLines(path, { since: String(at[5]! / 1000) }))).toEqual(['h0']);
    expect(texts(await readLogLines(path, { since: at[1]!, tail: 2 }))).toEqual(['h1', 'h0']);
    expect(texts(await readLogLines(path, { since: at[4]!, tail: 5 }))).toEqual(['h1', 'h0']);
  });

  it('selects by durations back from now, like --since 10m', async () => {
    const { path } = timedLog(Date.now());
    expect(texts(await readLogLines(path, { since: '10m' }))).toEqual(['h0']);
    expect(texts(await readLogLines(path, { since: '1h30m' }))).toEqual(['h1', 'h0']);
    expect(texts(await readLogLines(path, { since: '2h30m', until: '30m' }))).toEqual(['h2', 'h1']);
    expect(texts(await readLogLines(path, { since: '330m' }))).toHaveLength(6);
    expect(texts(await readLogLines(path, { until: '90s' }))).toEqual(['h5', 'h4', 'h3', 'h2', 'h1']);
  });

  it('refuses what is not a time, naming the option', async () => {
    const path = logPath();
    for (const since of ['yesterday', '10x', '1h30', '', 'h', new Date('nope'), Number.NaN]) {
      await expect(readLogLines(path, { since })).rejects.toThrow(InvalidOptionError);
    }
    await expect(readLogLines(path, { until: '2026-13-45' })).rejects.toMatchObject({ option: 'until', code: 'ERR_INVALID_OPTION' });
    await expect(readLogLines(path, { tail: -1 })).rejects.toThrow(/tail/);
    await expect(readLogLines(path, { streams: ['stdin' as 'stdout'] })).rejects.toThrow(/stream/);
    expect(() => followLogLines(path, { since: 'soon', done: () => true })).toThrow(InvalidOptionError);
    expect(() => followLogLines(path, { pollMs: 0, done: () => true })).toThrow(/pollMs/);
  });
});

describe('formatLogLines', () => {
  it('prints like docker logs, with optional RFC 3339 nano timestamps', () => {
    const time = new Date('2026-11-30T04:31:07.123Z');
    const lines: LogLine[] = [
      { stream: 'stdout', text: 'a', time },
      { stream: 'stderr', text: 'long', time, partial: true },
      { stream: 'stderr', text: 'er', time },
    ];
    expect(formatLogLines([])).toBe('');
    expect(formatLogLines(lines)).toBe('a\nlonger\n');
    expect(formatLogLines(lines, { timestamps: true })).toBe('2026-11-30T04:31:07.123000000Z a\n2026-11-30T04:31:07.123000000Z longer\n');
  });
});

describe('followLogLines', () => {
  it('yields the tail, then lines written after it started, and ends once done() is true', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    writeNumbered(w, 5);
    let finished = false;
    const seen: string[] = [];
    const following = (async () => {
      for await (const line of followLogLines(path, { tail: 2, done: () => finished })) seen.push(line.text);
    })();
    await waitFor(() => seen.length === 2, 'the tail');
    expect(seen).toEqual(['line-3', 'line-4']);
    w.write('stdout', Buffer.from('later\n'));
    await waitFor(() => seen.length === 3, 'a line written after the start');
    w.write('stderr', Buffer.from('the very last\n'));
    w.close();
    finished = true; // set at once: the follower must still read what came before
    await following;
    expect(seen).toEqual(['line-3', 'line-4', 'later', 'the very last']);
  });

  it('receives each line as it is written, across rotations', async () => {
    const path = logPath();
    const w = LogWriter.open(path, { maxSize: 300, maxFiles: 2 });
    const it = followLogLines(path, { done: () => false, pollMs: 1000 }); // inotify, not polling
    for (let i = 0; i < 30; i++) {
      w.write('stdout', Buffer.from(`line-${i}\n`));
      expect((await it.next()).value).toMatchObject({ text: `line-${i}` });
    }
    expect(readdirSync(join(path, '..'))).toContain('c-json.log.1');
    // A burst while the follower is not reading, with two rotations in it: the file that was
    // followed is dropped as the oldest, and the one after it is PATH.1, not PATH.
    writeNumbered(w, 5, 1, 'burst');
    const burst: string[] = [];
    while (burst.length < 5) burst.push(((await it.next()).value as LogLine).text);
    expect(burst).toEqual(numbered(0, 5, 'burst'));
    await it.return?.();
    w.close();
  });

  it('waits for a log that does not exist yet, with polling only', async () => {
    const path = logPath();
    let finished = false;
    const seen: string[] = [];
    const following = (async () => {
      for await (const line of followLogLines(path, { done: () => finished, pollMs: 20 })) seen.push(line.text);
    })();
    await tick(50);
    const w = LogWriter.open(path, { maxSize: 400, maxFiles: 1 });
    writeNumbered(w, 3);
    await waitFor(() => seen.length === 3, 'the first lines');
    expect(seen).toEqual(numbered(0, 3));
    writeNumbered(w, 10, 1, 'more'); // maxFiles 1: the file is replaced when full, unread lines with it
    w.close();
    finished = true;
    await following;
    expect(seen.at(-1)).toBe('more-9');
  });

  it('ends without an error when its signal is aborted, waiting or not', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    writeNumbered(w, 3);
    const ac = new AbortController();
    const it = followLogLines(path, { done: () => false, signal: ac.signal });
    expect((await it.next()).value).toMatchObject({ text: 'line-0' });
    ac.abort();
    expect(await it.next()).toEqual({ done: true, value: undefined });

    const ac2 = new AbortController();
    const it2 = followLogLines(path, { tail: 0, done: () => false, signal: ac2.signal });
    const pending = it2.next(); // nothing new: waits
    await tick(30);
    ac2.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    w.close();
  });

  it('honours since, until and streams for new lines too', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    w.write('stdout', Buffer.from('before\n'));
    let finished = false;
    const result = drain(followLogLines(path, { since: '1m', streams: ['stderr'], done: async () => finished }));
    await tick(20);
    w.write('stdout', Buffer.from('out\n'));
    w.write('stderr', Buffer.from('err\n'));
    w.close();
    finished = true;
    expect(texts(await result)).toEqual(['err']);
    // An until in the past ends the follow by itself.
    expect(await drain(followLogLines(path, { until: '1h', done: () => false }))).toEqual([]);
  });

  it('skips a corrupt last record and carries on when the file is continued', async () => {
    const path = logPath();
    const w = LogWriter.open(path);
    writeNumbered(w, 2);
    w.close();
    appendFileSync(path, '{"log":"trunc');
    let finished = false;
    const result = drain(followLogLines(path, { done: () => finished }));
    await tick(30);
    const again = LogWriter.open(path);
    again.write('stdout', Buffer.from('resumed\n'));
    again.close();
    finished = true;
    expect(texts(await result)).toEqual(['line-0', 'line-1', 'resumed']);
  });
});

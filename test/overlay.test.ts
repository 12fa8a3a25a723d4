import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from 'ctrkit';
import {
  LayerDirs,
  Overlay,
  OverlayError,
  OverlayMount,
  isOpaque,
  isWhiteout,
  listWhiteouts,
  mountOverlaySync,
  unmountOverlaySync,
  createWhiteout,
  markOpaque,
} from 'ctrkit/overlay';
import { fsType, hostMounts, tempDir } from './helpers.js';

/** Mount points at or below `dir`, decoded from /proc/self/mountinfo (octal escapes such as \040). */
function mountsUnder(dir: string): string[] {
  return hostMounts()
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

let dir = '';
let removeDir = () => {};
beforeEach(() => {
  [dir, removeDir] = tempDir();
});
afterEach(() => {
  // A leak is a failure, but the machine is cleaned up either way.
  const left = mountsUnder(dir);
  for (const m of left.reverse()) execFileSync('umount', ['--lazy', m]);
  removeDir();
  expect(left, 'mounts left behind by the test').toEqual([]);
});

/** mkdir -p of several dirs below the test dir; returns their paths. */
function dirs(...names: string[]): string[] {
  return names.map((n) => {
    const p = join(dir, n);
    mkdirSync(p, { recursive: true });
    return p;
  });
}

function mountTmpfs(path: string, name: string, size = '64m'): void {
  mkdirSync(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, name, path]);
}

describe("5.3.3: copy-on-write, exactly the chapter's experiment", () => {
  it('reads the lower through merged; a write copies up; the lower is unchanged and the upper holds the new copy', async () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    writeFileSync(join(lower!, 'file.txt'), 'lower layer file\n');
    const before = statSync(join(lower!, 'file.txt'));
    const m = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-533' });
    try {
      expect(m).toBeInstanceOf(OverlayMount);
      expect(mountsUnder(dir)).toEqual([merged]);
      expect(readFileSync(join(merged!, 'file.txt'), 'utf8')).toBe('lower layer file\n');
      expect(readdirSync(upper!)).toEqual([]); // reading copies nothing
      writeFileSync(join(merged!, 'file.txt'), 'modified\n');
      expect(readFileSync(join(merged!, 'file.txt'), 'utf8')).toBe('modified\n');
      expect(readFileSync(join(lower!, 'file.txt'), 'utf8')).toBe('lower layer file\n');
      expect(statSync(join(lower!, 'file.txt')).mtimeMs).toBe(before.mtimeMs);
      expect(readFileSync(join(upper!, 'file.txt'), 'utf8')).toBe('modified\n');
      expect(readdirSync(upper!)).toEqual(['file.txt']);
      expect(await m.diff()).toEqual([{ path: '/file.txt', kind: 'modified', type: 'file' }]);
    } finally {
      await m.unmount();
    }
    expect(m.mounted).toBe(false);
    expect(mountsUnder(dir)).toEqual([]);
    expect(readFileSync(join(upper!, 'file.txt'), 'utf8')).toBe('modified\n'); // the upper outlives the mount
  });
});

describe('5.3.4: whiteouts and opaque directories', () => {
  it('deleting a lower file leaves a character device 0:0 in the upper; an opaque directory hides the whole lower directory', async () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    mkdirSync(join(lower!, 'etc'));
    writeFileSync(join(lower!, 'etc/some-config'), 'x\n');
    mkdirSync(join(lower!, 'app/lib'), { recursive: true });
    for (const f of ['a', 'b', 'lib/c']) writeFileSync(join(lower!, 'app', f), f);
    const m = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-534' });
    try {
      // rm /etc/some-config inside the container
      rmSync(join(merged!, 'etc/some-config'));
      expect(readdirSync(join(merged!, 'etc'))).toEqual([]);
      const wh = lstatSync(join(upper!, 'etc/some-config'));
      expect(wh.isCharacterDevice()).toBe(true);
      expect(wh.rdev).toBe(0); // 0:0
      expect(wh.mode & 0o7777).toBe(0); // c---------
      expect(await isWhiteout(join(upper!, 'etc/some-config'))).toBe(true);
      expect(readFileSync(join(lower!, 'etc/some-config'), 'utf8')).toBe('x\n');

      // rm -rf /app && mkdir /app: the new /app is opaque, nothing of the lower /app shows
      rmSync(join(merged!, 'app'), { recursive: true });
      mkdirSync(join(merged!, 'app'));
      writeFileSync(join(merged!, 'app/new'), 'n');
      expect(readdirSync(join(merged!, 'app'))).toEqual(['new']);
      expect(await isOpaque(join(upper!, 'app'))).toBe(true);
      expect(await isOpaque(join(upper!, 'app'), { userxattr: false })).toBe(true); // trusted.overlay.opaque
      expect(await isOpaque(join(upper!, 'app'), { userxattr: true })).toBe(false);
      expect(readdirSync(join(lower!, 'app')).sort()).toEqual(['a', 'b', 'lib']);
      expect(await listWhiteouts(upper!)).toEqual([
        { path: '/app', kind: 'opaque' },
        { path: '/etc/some-config', kind: 'whiteout' },
      ]);
    } finally {
      await m.unmount();
    }
  });

  it('markers made with createWhiteout and markOpaque are honoured by the kernel', async () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    mkdirSync(join(lower!, 'd'));
    for (const f of ['gone', 'kept', 'd/hidden']) writeFileSync(join(lower!, f), f);
    await createWhiteout(join(upper!, 'gone'));
    mkdirSync(join(upper!, 'd'));
    writeFileSync(join(upper!, 'd/own'), 'own');
    await markOpaque(join(upper!, 'd'), { userxattr: false });
    const m = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-534b' });
    try {
      expect(readdirSync(merged!).sort()).toEqual(['d', 'kept']);
      expect(readdirSync(join(merged!, 'd'))).toEqual(['own']);
    } finally {
      await m.unmount();
    }
  });
});

describe('5.3.1: ten containers on one base share it', () => {
  it('disk usage grows by their own changes, not by ten copies of the base (measured with statfs)', async () => {
    const fs = join(dir, 'fs');
    mountTmpfs(fs, 'ctk-531', '256m'); // a filesystem of its own, so statfs counts only this experiment
    const mounts: OverlayMount[] = [];
    try {
      const base = join(fs, 'base');
      mkdirSync(join(base, 'usr/lib'), { recursive: true });
      for (let i = 0; i < 16; i++) writeFileSync(join(base, `usr/lib/lib${i}.so`), randomBytes(1 << 20));
      writeFileSync(join(base, 'config'), 'base\n');
      const used = () => {
        const s = statfsSync(fs);
        return (s.blocks - s.bfree) * s.bsize;
      };
      const baseBytes = used();
      const change = 64 * 1024;
      for (let i = 0; i < 10; i++) {
        const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(fs, `c${i}`, d));
        mounts.push(await Overlay.mount({ lower: [base], upper: upper!, work: work!, target: merged!, source: `ctk-531-c${i}` }));
      }
      for (const [i, m] of mounts.entries()) {
        writeFileSync(join(m.target, `own-${i}`), randomBytes(change));
        writeFileSync(join(m.target, 'config'), `container ${i}\n`);
      }
      const growth = used() - baseBytes;
      // Every container sees the whole base ...
      for (const m of mounts) expect(readdirSync(join(m.target, 'usr/lib'))).toHaveLength(16);
      expect(readFileSync(join(mounts[3]!.target, 'config'), 'utf8')).toBe('container 3\n');
      expect(readFileSync(join(base, 'config'), 'utf8')).toBe('base\n');
      // ... yet the disk holds the base once plus each container's own change (and a little metadata).
      expect(growth).toBeGreaterThanOrEqual(10 * change);
      expect(growth).toBeLessThan(10 * change + 1024 * 1024);
      expect(growth).toBeLessThan(baseBytes / 10);
    } finally {
      for (const m of mounts) await m.unmount();
      execFileSync('umount', [fs]);
    }
  });
});

describe('many lowers', () => {
  function layers(n: number): string[] {
    return Array.from({ length: n }, (_, i) => {
      const l = join(dir, 'layers', `l${String(i).padStart(3, '0')}`);
      mkdirSync(l, { recursive: true });
      writeFileSync(join(l, 'common'), `layer ${i}\n`);
      writeFileSync(join(l, `only-${i}`), `${i}`);
      if (i >= 5) writeFileSync(join(l, 'shadowed'), `layer ${i}\n`);
      return l;
    });
  }

  for (const api of ['fsconfig', 'legacy'] as const) {
    it(`mounts 128 lowers via ${api}; the merged view shows the topmost file of each name`, async () => {
      const lower = layers(128);
      const [merged] = dirs('merged');
      const m = await Overlay.mount({ lower, target: merged!, api, source: 'ctk-128' });
      try {
        expect(m.api).toBe(api);
        expect(readFileSync(join(merged!, 'common'), 'utf8')).toBe('layer 0\n');
        expect(readFileSync(join(merged!, 'shadowed'), 'utf8')).toBe('layer 5\n');
        const names = readdirSync(merged!);
        expect(names.filter((n) => n.startsWith('only-'))).toHaveLength(128);
        expect(readFileSync(join(merged!, 'only-127'), 'utf8')).toBe('127');
        const line = readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .find((l) => l.startsWith(`${m.mountId} `))!;
        // fsconfig lists each lower as its own lowerdir+; the legacy option string did not fit
        // one page with these paths, so they went in as /proc/self/fd/N.
        if (api === 'fsconfig') expect(line.match(/lowerdir\+=/g)).toHaveLength(128);
        else expect(line).toContain('lowerdir=/proc/self/fd/');
      } finally {
        await m.unmount();
      }
    });
  }
});

describe('read-only overlays', () => {
  it('without an upper every write fails with EROFS', async () => {
    const [a, b, merged] = dirs('a', 'b', 'merged');
    writeFileSync(join(a!, 'f'), 'top');
    writeFileSync(join(b!, 'f'), 'bottom');
    writeFileSync(join(b!, 'g'), 'g');
    const m = await Overlay.mount({ lower: [a!, b!], target: merged!, source: 'ctk-ro' });
    try {
      expect(m.readonly).toBe(true);
      expect(readFileSync(join(merged!, 'f'), 'utf8')).toBe('top');
      expect(() => writeFileSync(join(merged!, 'f'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
      expect(() => writeFileSync(join(merged!, 'new'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
      expect(() => rmSync(join(merged!, 'g'))).toThrow(expect.objectContaining({ code: 'EROFS' }));
      expect(await m.diff()).toEqual([]);
    } finally {
      await m.unmount();
    }
  });
});

describe('the synchronous form for an init stage', () => {
  it('mountOverlaySync/unmountOverlaySync mount and unmount without awaiting', () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    writeFileSync(join(lower!, 'f'), 'f');
    const m = mountOverlaySync({ lower: [lower!], upper, work, target: merged!, source: 'ctk-sync' });
    try {
      expect(m).toMatchObject({ target: merged, lower: [lower], upper, work, userxattr: false, api: 'fsconfig' });
      expect(m.mountId).toBeGreaterThan(0);
      writeFileSync(join(merged!, 'g'), 'g');
      expect(readFileSync(join(upper!, 'g'), 'utf8')).toBe('g');
    } finally {
      unmountOverlaySync(merged!);
    }
    expect(mountsUnder(dir)).toEqual([]);
  });
});

describe('throwaway layer dirs', () => {
  it('LayerDirs makes upper/work/merged side by side and will not remove them while mounted', async () => {
    const [lower] = dirs('lower');
    writeFileSync(join(lower!, 'f'), 'f');
    const d = await LayerDirs.create({ parent: dir, prefix: 'ctk-c1-' });
    expect(d.dir.startsWith(join(dir, 'ctk-c1-'))).toBe(true);
    const m = await Overlay.mount({ lower: [lower!], upper: d.upper, work: d.work, target: d.merged, source: 'ctk-dirs' });
    try {
      writeFileSync(join(d.merged, 'g'), 'g');
      await expect(d.remove()).rejects.toMatchObject({ code: 'ERR_OVERLAY_BUSY' });
      expect(readFileSync(join(d.upper, 'g'), 'utf8')).toBe('g');
    } finally {
      await m.unmount();
    }
    await d[Symbol.asyncDispose]();
    expect(readdirSync(dir)).toEqual(['lower']);
    expect(readFileSync(join(lower!, 'f'), 'utf8')).toBe('f');
  });
});

describe('bad input: a typed error naming the cause, nothing left mounted', () => {
  async function refused(options: Parameters<typeof Overlay.mount>[0], code: string, mentions: string | RegExp): Promise<OverlayError> {
    const before = hostMounts();
    const err = await Overlay.mount(options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OverlayError);
    expect((err as OverlayError).code).toBe(code);
    expect((err as OverlayError).message).toMatch(mentions);
    expect(hostMounts()).toEqual(before);
    return err as OverlayError;
  }

  it('a missing lower (and nothing is created for the mount)', async () => {
    const [l1] = dirs('l1');
    const missing = join(dir, 'no-such-layer');
    const e = await refused(
      { lower: [l1!, missing], upper: join(dir, 'u'), work: join(dir, 'w'), target: join(dir, 'm') },
      'ERR_OVERLAY_LOWER_MISSING',
      missing,
    );
    expect(e.path).toBe(missing);
    expect(e.message).toMatch(/lower\[1\] .* does not exist/);
    expect(readdirSync(dir)).toEqual(['l1']);
    expect(() => mountOverlaySync({ lower: [missing, l1!], target: join(dir, 'l1') })).toThrow(expect.objectContaining({ code: 'ERR_OVERLAY_LOWER_MISSING' }));
  });

  it('an upper on a filesystem that cannot hold the opaque marker: ramfs, found by the probe', async () => {
    const ram = join(dir, 'ram');
    mkdirSync(ram);
    execFileSync('mount', ['-t', 'ramfs', 'ctk-ramfs', ram]);
    try {
      const [lower, merged] = dirs('lower', 'merged');
      // overlayfs itself would mount this (it only logs "failed to set xattr on upper") and fail
      // at the first `rm -rf dir && mkdir dir`; the probe refuses it up front.
      await refused(
        { lower: [lower!], upper: join(ram, 'u'), work: join(ram, 'w'), target: merged! },
        'ERR_OVERLAY_UPPER_UNSUPPORTED',
        /upper .*ram\/u cannot be an overlay upper: it cannot store the opaque marker trusted\.overlay\.opaque \((ENOTSUP|EOPNOTSUPP)\)/,
      );
      expect(readdirSync(join(ram, 'w'))).toEqual([]); // the probe cleaned up after itself
    } finally {
      execFileSync('umount', [ram]);
    }
  });

  it('an upper inside the merged view of another overlay', async () => {
    const [lower, upper, work, merged, lower2, merged2] = dirs('lower', 'upper', 'work', 'merged', 'lower2', 'merged2');
    const outer = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-outer' });
    try {
      const e = await refused(
        { lower: [lower2!], upper: join(merged!, 'u'), work: join(merged!, 'w'), target: merged2! },
        'ERR_OVERLAY_UPPER_UNSUPPORTED',
        /is on overlay, which cannot hold an overlay upper: it is itself an overlay/,
      );
      expect(e.path).toBe(join(merged!, 'u'));
    } finally {
      await outer.unmount();
    }
  });

  it('a work dir on another filesystem than the upper', async () => {
    const [lower, upper, merged] = dirs('lower', 'upper', 'merged');
    const other = join(dir, 'other');
    mountTmpfs(other, 'ctk-otherfs');
    try {
      await refused(
        { lower: [lower!], upper, work: join(other, 'work'), target: merged! },
        'ERR_OVERLAY_WORK_OTHER_MOUNT',
        new RegExp(`work dir .*other/work \\(tmpfs\\) is not on the same mount as upper .*upper \\(${fsType(dir)}\\)`),
      );
    } finally {
      execFileSync('umount', [other]);
    }
  });

  it('work and upper inside one another', async () => {
    const [lower, upper, merged] = dirs('lower', 'upper', 'merged');
    await refused({ lower: [lower!], upper, work: join(upper!, 'work'), target: merged! }, 'ERR_OVERLAY_OVERLAPPING', /overlap/);
  });

  it('a target that is already a mount point (the mount there stays, nothing stacks on it)', async () => {
    const [lower, upper, work] = dirs('lower', 'upper', 'work');
    const target = join(dir, 'target');
    mountTmpfs(target, 'ctk-busy-target');
    try {
      await refused({ lower: [lower!], upper, work, target }, 'ERR_OVERLAY_TARGET_MOUNTED', `target ${target} is already a mount point`);
      expect(mountsUnder(target)).toEqual([target]);
    } finally {
      execFileSync('umount', [target]);
    }
  });

  it('more lowers than the legacy option string holds, even as /proc/self/fd paths; fsconfig takes them', async () => {
    const lower = Array.from({ length: 300 }, (_, i) => dirs(`layers/${i}`)[0]!);
    const [merged] = dirs('merged');
    await refused({ lower, target: merged!, api: 'legacy' }, 'ERR_OVERLAY_TOO_MANY_LAYERS', /300 lowers do not fit the 4095-byte option string/);
    const m = await Overlay.mount({ lower, target: merged!, source: 'ctk-300' });
    await m.unmount();
  });

  it('an aborted signal stops the mount before it is made', async () => {
    const [l1, l2, merged] = dirs('l1', 'l2', 'merged');
    const ac = new AbortController();
    ac.abort();
    await expect(Overlay.mount({ lower: [l1!, l2!], target: merged!, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(mountsUnder(dir)).toEqual([]);
  });

  it('malformed specs are refused before touching the kernel', async () => {
    const [l1, l2, m] = dirs('l1', 'l2', 'm');
    const bad: Array<[Parameters<typeof Overlay.mount>[0], string]> = [
      [{ lower: [], target: m! }, 'lower'],
      [{ lower: ['relative/path', l2!], target: m! }, 'lower[0]'],
      [{ lower: [`${l1}\0x`, l2!], target: m! }, 'lower[0]'],
      [{ lower: [l1!], target: m! }, 'lower'], // read-only needs two
      [{ lower: [l1!], upper: join(dir, 'u'), target: m! }, 'work'],
      [{ lower: [l1!], upper: join(dir, 'u'), work: join(dir, 'w'), target: m!, userxattr: true, metacopy: true }, 'metacopy'],
      [{ lower: Array.from({ length: 501 }, () => l1!), target: m! }, 'lower'],
    ];
    for (const [options, option] of bad) {
      const e = await Overlay.mount(options).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, option).toBeInstanceOf(InvalidOptionError);
      expect((e as InvalidOptionError).option).toBe(option);
    }
    expect(mountsUnder(dir)).toEqual([]);
  });

  for (const api of ['fsconfig', 'legacy'] as const) {
    it(`paths with ':', ',' and '\\' are escaped, not misread (${api})`, async () => {
      const [l1, l2, upper, work, merged] = dirs('lay:er,1', 'lay\\er:2', 'up\\per,:', 'wo:rk,', 'mer:ged,');
      writeFileSync(join(l1!, 'top'), '1');
      writeFileSync(join(l2!, 'bottom'), '2');
      const m = await Overlay.mount({ lower: [l1!, l2!], upper, work, target: merged!, api, source: 'ctk-escape' });
      try {
        expect(readdirSync(merged!).sort()).toEqual(['bottom', 'top']);
        writeFileSync(join(merged!, 'new'), 'n');
        expect(readFileSync(join(upper!, 'new'), 'utf8')).toBe('n');
      } finally {
        await m.unmount();
      }
    });
  }

  it('unmount refuses a busy mount; dispose detaches it', async () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    writeFileSync(join(lower!, 'f'), 'f');
    const m = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-busy' });
    const fd = openSync(join(merged!, 'f'), 'r');
    try {
      const e = await m.unmount().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toMatchObject({ code: 'ERR_OVERLAY_BUSY', errno: 16, errnoName: 'EBUSY' });
      expect(m.mounted).toBe(true);
      await m[Symbol.asyncDispose]();
      expect(m.mounted).toBe(false);
      expect(mountsUnder(dir)).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });

  it('unmount refuses when another mount covers the overlay, instead of unmounting that one', async () => {
    const [lower, upper, work, merged] = dirs('lower', 'upper', 'work', 'merged');
    const m = await Overlay.mount({ lower: [lower!], upper, work, target: merged!, source: 'ctk-covered' });
    execFileSync('mount', ['-t', 'tmpfs', 'ctk-cover', merged!]);
    try {
      await expect(m.unmount()).rejects.toMatchObject({ code: 'ERR_OVERLAY_BUSY', message: expect.stringMatching(/another mount now covers it/) });
      expect(mountsUnder(dir)).toEqual([merged, merged]);
    } finally {
      execFileSync('umount', [merged!]);
      await m.unmount();
    }
  });
});

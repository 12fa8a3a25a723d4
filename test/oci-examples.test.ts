import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, push, startRegistry, type Registry } from './oci/lab.js';

const lab = mkdtempSync('/tmp/ctk-oci-example-');
let registry: Registry;

beforeAll(async () => {
  const layout = buildImage(lab);
  registry = await startRegistry(join(lab, 'reg'));
  await push(layout, 'v1', `${registry.host}/test/busybox:v1`);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  rmSync(lab, { recursive: true, force: true });
});

describe('examples/oci-pull-run.mjs', () => {
  it('pulls from the local registry and runs the image with runc', async () => {
    const before = readdirSync('/tmp').filter((d) => d.startsWith('ctk-example-oci-'));
    // an asynchronous child: the registry is a child of this process too, and must keep answering
    const { stdout } = await promisify(execFile)(process.execPath, ['examples/oci-pull-run.mjs', `${registry.host}/test/busybox:v1`], { encoding: 'utf8' });
    expect(stdout).toContain(`${registry.host}/test/busybox:v1: sha256:`);
    expect(stdout).toContain('lowers (topmost first): 4');
    expect(stdout.trim().split('\n').at(-1)).toBe('hi from ctrkit in /tmp');
    const after = readdirSync('/tmp').filter((d) => d.startsWith('ctk-example-oci-'));
    expect(after).toEqual(before);
    expect(existsSync(join(lab, 'reg'))).toBe(true);
  });
});

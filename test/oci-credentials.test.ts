import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultImageStoreDir, dockerConfigCredentials } from 'ctrkit/oci';

const dir = mkdtempSync('/tmp/ctk-oci-creds-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credentials from a Docker config.json', () => {
  it("finds a registry under its host, a URL, or (for docker.io) Docker Hub's legacy key", async () => {
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw:with:colons') },
          'https://registry.example:5000': { username: 'u', password: 'p' },
          '127.0.0.1:5000': { auth: b64('local:pw') },
          'broken.example': { auth: b64('no-colon') },
        },
      }),
    );
    expect(await dockerConfigCredentials('docker.io', file)).toEqual({ username: 'hub', password: 'pw:with:colons' });
    expect(await dockerConfigCredentials('registry.example:5000', file)).toEqual({ username: 'u', password: 'p' });
    expect(await dockerConfigCredentials('127.0.0.1:5000', file)).toEqual({ username: 'local', password: 'pw' });
    expect(await dockerConfigCredentials('broken.example', file)).toBeUndefined();
    expect(await dockerConfigCredentials('other.example', file)).toBeUndefined();
  });

  it('a missing or unreadable file means no credentials', async () => {
    expect(await dockerConfigCredentials('docker.io', join(dir, 'missing.json'))).toBeUndefined();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{not json');
    expect(await dockerConfigCredentials('docker.io', bad)).toBeUndefined();
  });
});

describe('defaultImageStoreDir', () => {
  it('is $CTRKIT_IMAGES when set, else /var/lib/ctrkit/images for root', () => {
    const saved = process.env.CTRKIT_IMAGES;
    try {
      process.env.CTRKIT_IMAGES = '/srv/images';
      expect(defaultImageStoreDir()).toBe('/srv/images');
      delete process.env.CTRKIT_IMAGES;
      if (process.getuid?.() === 0) expect(defaultImageStoreDir()).toBe('/var/lib/ctrkit/images');
    } finally {
      if (saved === undefined) delete process.env.CTRKIT_IMAGES;
      else process.env.CTRKIT_IMAGES = saved;
    }
  });
});

// Pure: image reference parsing (moved out of modules.test.ts, whose other tests need the
// built package and a real kernel).
import { describe, expect, it } from 'vitest';
import { ImageReferenceError, parseReference } from '../../src/oci/reference.js';

describe('ctrkit/oci image references', () => {
  it('applies Docker Hub defaults', () => {
    expect(String(parseReference('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(String(parseReference('library/busybox:1.36'))).toBe('docker.io/library/busybox:1.36');
    expect(String(parseReference('user/app'))).toBe('docker.io/user/app:latest');
  });

  it('keeps registries with ports and digests', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const r = parseReference(`registry:5000/a/b@${digest}`);
    expect([r.registry, r.repository, r.tag, r.digest, r.manifestRef]).toEqual(['registry:5000', 'a/b', undefined, digest, digest]);
    const l = parseReference('localhost/x:v1');
    expect([l.registry, l.repository, l.tag]).toEqual(['localhost', 'x', 'v1']);
    expect(parseReference('127.0.0.1:5000/busybox:latest').registry).toBe('127.0.0.1:5000');
  });

  it('refuses what the grammar refuses, with typed errors', () => {
    for (const bad of ['', 'UPPER', 'a//b', 'a:', 'a@sha256:123', 'reg:99999999/x', 'a/b:-tag', '-a']) {
      expect(() => parseReference(bad), bad).toThrow(ImageReferenceError);
    }
    expect(() => parseReference('x'.repeat(300))).toThrow(/longer than 255/);
  });
});

/** Platforms: this host's, in Go's names, and choosing a manifest from an index. */
import { ManifestError } from './errors.js';
import type { Descriptor, ImageIndex, Platform } from './manifest.js';

const GOARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

/** The platform of this host, as an image index names it (`linux/amd64`, `linux/arm64/v8` ...). */
export function hostPlatform(): Platform {
  const architecture = GOARCH[process.arch] ?? process.arch;
  return { os: 'linux', architecture, variant: architecture === 'arm64' ? 'v8' : undefined };
}

/** Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new ManifestError('ERR_MANIFEST_PLATFORM', `platform "${text}" is not os/arch[/variant]`);
  return { os, architecture, variant };
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform | undefined): string {
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : 'unknown';
}

function matches(have: Platform | undefined, want: Platform): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  // arm64's only variant is v8: an entry without one is the same platform.
  if (!want.variant || (want.architecture === 'arm64' && want.variant === 'v8' && !have.variant)) return true;
  return have.variant === want.variant;
}

/**
 * The manifest of `index` for `platform`: the first entry that matches (as containerd
 * and Docker choose). A requested variant must match; without one, any variant does.
 * @throws {@link ManifestError} `ERR_MANIFEST_PLATFORM` listing what the index offers
 */
export function selectPlatform(index: ImageIndex, platform: Platform): Descriptor {
  const found = index.manifests.find((m) => matches(m.platform, platform));
  if (found) return found;
  const offered = index.manifests.map((m) => formatPlatform(m.platform)).join(', ') || 'nothing';
  throw new ManifestError('ERR_MANIFEST_PLATFORM', `no manifest for ${formatPlatform(platform)} in the index (it has: ${offered})`);
}

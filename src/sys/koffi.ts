import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as Koffi from 'koffi';

/** The koffi module type. @internal */
export type KoffiModule = typeof Koffi;

let loaded: KoffiModule | undefined;

/**
 * Loads koffi the first time it is needed, and only then: importing a module that never
 * calls into libc (`ctrkit/oci`) must not pay for it.
 *
 * koffi's own JavaScript loader spends 12-15 ms detecting the platform before it dlopens
 * the prebuilt binary, which costs under 2 ms. On the container start path that difference
 * matters, so we dlopen the prebuilt `.node` file directly when it is where npm puts it,
 * and fall back to koffi's loader otherwise.
 * @internal
 */
export function koffi(): KoffiModule {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const entry = require.resolve('koffi');
  const koffiDir = dirname(entry);
  const version = (require(join(koffiDir, 'package.json')) as { version: string }).version;
  const pkg = `koffi-${process.platform}-${process.arch}`;
  const triplet = `${process.platform}_${process.arch}`;
  const candidates = [join(koffiDir, '..', '@koromix', pkg, triplet, 'koffi.node'), join(koffiDir, 'node_modules', '@koromix', pkg, triplet, 'koffi.node')];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      const native = require(file) as KoffiModule & { version?: string };
      if (native.version === version) {
        loaded = native;
        return native;
      }
    } catch {
      // A musl host or an unexpected layout: koffi's own loader knows better.
    }
  }
  loaded = require(entry) as KoffiModule;
  return loaded;
}

/**
 * What a tar entry's name means before anything touches the disk: the path components it
 * names below the target, and whether it is a whiteout. Names are taken lexically; nothing
 * here follows a symlink.
 * @internal
 */
import { UnsafeLayerError } from '../errors.js';

/** The OCI whiteout prefix: `.wh.NAME` deletes NAME from the layers below. */
export const WHITEOUT_PREFIX = '.wh.';
/** The opaque marker: the directory holding it hides everything of the layers below. */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** An entry name, split and checked. `components` is empty for the root itself. */
export interface ParsedName {
  readonly components: readonly string[];
  readonly whiteout: { readonly kind: 'whiteout'; readonly name: string } | { readonly kind: 'opaque' } | null;
}

/**
 * Splits and checks an entry name. A leading `/` or `./` is dropped — `/etc/passwd` means
 * the target's `etc/passwd`, as in every container tool — so absolute names stay inside.
 * `..` is refused outright: a layer has no business naming its way up, and refusing it
 * (rather than cleaning it) never lets `a/../../x` reach anywhere.
 */
export function parseEntryName(name: string): ParsedName {
  if (name.includes('\0')) throw new UnsafeLayerError(name, 'the name holds a NUL byte');
  const components = name.split('/').filter((c) => c !== '' && c !== '.');
  if (components.includes('..')) throw new UnsafeLayerError(name, '".." would climb out of the target');
  const base = components.at(-1);
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return { components, whiteout: null };
  if (base === OPAQUE_MARKER) return { components: components.slice(0, -1), whiteout: { kind: 'opaque' } };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
    // `.wh..wh.` names are reserved for the layer format's own metadata (aufs's .wh..wh.plnk ...).
    throw new UnsafeLayerError(name, `"${base}" is a reserved whiteout name`);
  }
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..') {
    throw new UnsafeLayerError(name, `a whiteout of "${target}" would delete a parent or the directory itself`);
  }
  return { components: components.slice(0, -1), whiteout: { kind: 'whiteout', name: target } };
}

/**
 * An overlay as the new mount API's parameters (with the classic option string beside them),
 * for a process that mounts it without this block: the init stage mounts a container's
 * copy-on-write root from these, in the container's own mount namespace.
 */
import { escapeForOptionString, escapeUpperForFsconfig } from './escape.js';

/** What a generic mounter needs: `fsopen(fstype)`, `source`, one fsconfig per parameter. */
export interface OverlayMountParams {
  readonly fstype: 'overlay';
  readonly source: string;
  /** `lowerdir+` per layer (topmost first), `upperdir`, `workdir`, and the `userxattr` flag. */
  readonly params: readonly (readonly [string] | readonly [string, string])[];
  /** The same as mount(2)'s option string (kernels before 6.8 lack `lowerdir+`), when it fits a page. */
  readonly fallbackData: string | undefined;
}

/** The most a mount(2) data string can hold: one page, NUL included. */
const OPTION_STRING_MAX = 4095;

/**
 * The parameters of an overlay of `lower` (topmost first) with `upper` and `work`; inside a
 * user namespace overlayfs keeps its whiteouts and opaque marks in `user.` xattrs (`userxattr`).
 */
export function overlayMountParams(spec: {
  readonly lower: readonly string[];
  readonly upper: string;
  readonly work: string;
  readonly userxattr: boolean;
  readonly source?: string;
}): OverlayMountParams {
  const params: ([string] | [string, string])[] = [
    ...spec.lower.map((l): [string, string] => ['lowerdir+', l]), // verbatim: see escape.ts
    ['upperdir', escapeUpperForFsconfig(spec.upper)],
    ['workdir', escapeUpperForFsconfig(spec.work)],
  ];
  if (spec.userxattr) params.push(['userxattr']);
  const data = [
    `lowerdir=${spec.lower.map(escapeForOptionString).join(':')}`,
    `upperdir=${escapeForOptionString(spec.upper)}`,
    `workdir=${escapeForOptionString(spec.work)}`,
    ...(spec.userxattr ? ['userxattr'] : []),
  ].join(',');
  return { fstype: 'overlay', source: spec.source ?? 'overlay', params, fallbackData: data.length <= OPTION_STRING_MAX ? data : undefined };
}

/**
 * The container's mount plan: what the init stage mounts inside the new root besides /proc,
 * /dev and /sys — its copy-on-write root, its cgroup hierarchies, masked and read-only paths,
 * host devices, binds, the /etc files and the init binary — computed here, as data, so the
 * spawn core (namespaces/) knows nothing of overlays or cgroups.
 * @internal
 */
import { cgroupHierarchies } from '../cgroups/mount-hierarchies.js';
import type { BindMount, IdmappedPath, MountOperation, RootMount } from '../namespaces/index.js';
import { overlayMountParams } from '../overlay/mount-params.js';

/** What the plan is made of. */
export interface PlanInput {
  /** The copy-on-write root's layers, when the overlay driver is used. */
  readonly overlay: { readonly lower: readonly string[]; readonly upper: string; readonly work: string } | undefined;
  /** The container has a user namespace (its overlay keeps whiteouts in `user.` xattrs). */
  readonly userns: boolean;
  /** Host directories its user namespace sees through idmapped mounts (root inside is not root outside). */
  readonly idmapped?: readonly IdmappedPath[];
  /** It has its own cgroup namespace: its hierarchies are mounted read-only, rooted at its cgroup. */
  readonly cgroupns: boolean;
  readonly maskedPaths: readonly string[];
  readonly readonlyPaths: readonly string[];
  /** Host device nodes, bound in under /dev with their own names. */
  readonly devices: readonly string[];
  /** The caller's binds, then ctrkit's own (the /etc files, the init). */
  readonly binds: readonly BindMount[];
}

/** The idmapped directories, the root mount (an overlay onto the rootfs mount point) and the mounts inside the root, in order. */
export function mountPlan(input: PlanInput): { idmapped: readonly IdmappedPath[] | undefined; rootMount: RootMount | undefined; mounts: MountOperation[] } {
  const rootMount = input.overlay && overlayMountParams({ ...input.overlay, userxattr: input.userns });
  const mounts: MountOperation[] = [
    ...(input.cgroupns ? [{ op: 'cgroupfs' as const, hierarchies: cgroupHierarchies() }] : []),
    ...input.maskedPaths.map((target) => ({ op: 'mask' as const, target })),
    ...input.readonlyPaths.map((target) => ({ op: 'readonly' as const, target })),
    ...input.devices.map((d) => ({ op: 'bind' as const, source: d, target: `/dev/${d.slice(d.lastIndexOf('/') + 1)}` })),
    ...input.binds.map((b) => ({ op: 'bind' as const, source: b.source, target: b.target, readonly: b.readonly ?? false, optional: b.optional ?? false })),
  ];
  return { idmapped: input.idmapped?.length ? input.idmapped : undefined, rootMount, mounts };
}

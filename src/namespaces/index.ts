/**
 * `ctrkit/namespaces`: the eight Linux namespace types, running programs in new ones
 * ({@link unshare}) or existing ones ({@link nsenter}), and namespace handles.
 * @packageDocumentation
 */
export { NAMESPACES, namespaceInfo, isNamespaceType, type NamespaceType, type NamespaceInfo } from './types.js';
export { unshare, DEFAULT_NAMESPACES, type UnshareOptions } from './unshare.js';
export type { BindMount, CgroupHierarchy, DeviceNode, IdmappedPath, MountOperation, RootMount } from './mount-plan.js';
export { nsenter, type NsenterOptions } from './nsenter.js';
export { NamespacedProcess, type ExitStatus } from './process.js';
export { NamespaceRef, PersistedNamespace, NamespaceError } from './handle.js';
export { SpawnError, type SpawnHook, type SpawnHookContext, type StdioOption } from './spawn.js';
export { InitError, CommandNotFoundError, CommandNotExecutableError, type InitErrorCode, type NamespacesErrorCode } from './errors.js';
export type { InitStep } from './protocol.js';
export { DEFAULT_PATH } from './init/config.js';
export { readSubIds, defaultIdMaps, IdMapError, type IdMapping, type SubIdRange, type Caller } from './idmap.js';
export { CAPABILITIES, DEFAULT_CAPABILITIES, type Capability } from './capabilities.js';
export { SECCOMP_ALLOWED, SECCOMP_BY_CAPABILITY, SECCOMP_ARGUMENT_RULES, type SeccompProfile } from './seccomp.js';
export {
  compileOciSeccomp,
  type SeccompOption,
  type LinuxSeccomp,
  type LinuxSyscall,
  type LinuxSeccompArg,
  type SeccompAction,
  type SeccompOperator,
  type SeccompValue,
  type CompiledSeccomp,
} from './seccomp-oci.js';

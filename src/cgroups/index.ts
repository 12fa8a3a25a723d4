/**
 * `ctrkit/cgroups`: control groups v1 and v2 behind one surface — typed limits, stats,
 * pressure, OOM events, freeze, kill — and detection of the host's layout.
 * @packageDocumentation
 */
export { Cgroup } from './cgroup.js';
export { CgroupBase, type CgroupOptions, type RemoveOptions, type StatsSample } from './base.js';
export { CgroupV1 } from './v1.js';
export { CgroupV2 } from './v2.js';
export { detectCgroupLayout, type CgroupLayout, type CgroupMount } from './detect.js';
export {
  CgroupDelegationError,
  CgroupError,
  CgroupValueError,
  ControllerUnavailableError,
  DeviceProgramError,
  type CgroupErrorCode,
} from './errors.js';
export type { CgroupResources, DeviceThrottle, DeviceRule, DeviceCgroupRule } from './resources.js';
export { DEFAULT_DEVICE_RULES } from './device-rules.js';
export type {
  CgroupStats,
  MemoryStats,
  CpuStats,
  DeviceIoStats,
  CgroupPressure,
  Pressure,
  PressureLine,
  CgroupEvent,
} from './stats.js';
export { parseBytes, type ByteSize, type Rate } from './units.js';
export {
  applyOciResources,
  ociCgroup,
  ociSharesToWeight,
  OciResourceUnsupportedError,
  OciResourceValueError,
  type ApplyOciResourcesOptions,
  type LinuxResources,
  type OciIgnoredField,
  type OciLinuxBlockIO,
  type OciLinuxCPU,
  type OciLinuxDeviceCgroup,
  type OciLinuxHugepageLimit,
  type OciLinuxInterfacePriority,
  type OciLinuxMemory,
  type OciLinuxNetwork,
  type OciLinuxRdma,
  type OciLinuxThrottleDevice,
  type OciLinuxWeightDevice,
  type OciResourcesResult,
} from './oci-resources.js';
export {
  OCI_UNLIMITED,
  ociEventJson,
  ociOomEvents,
  ociOomKills,
  ociStats,
  type OciBlkioEntry,
  type OciBlkioStats,
  type OciCpuStats,
  type OciCpuUsage,
  type OciCpusetStats,
  type OciEvent,
  type OciHugetlbStats,
  type OciMemoryEntry,
  type OciMemoryStats,
  type OciPidsStats,
  type OciPsiData,
  type OciPsiStats,
  type OciStats,
  type OciThrottling,
} from './oci-stats.js';

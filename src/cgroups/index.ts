/**
 * `ctrkit/cgroups`: control groups. This release detects the host's cgroup layout; the
 * typed controllers (`Cgroup.v2(...).memoryMax(...)`) build on it.
 * @packageDocumentation
 */
export { detectCgroupLayout, type CgroupLayout, type CgroupMount } from './detect.js';

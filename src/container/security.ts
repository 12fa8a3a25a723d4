/**
 * The security profile every container gets unless told otherwise; the same lists runc's
 * spec template, Docker and Podman use. ctrkit's low-level `unshare` applies none of this:
 * it is a namespace tool. `Container` is a container.
 */

/** Paths hidden from the container: kernel memory, keys, timers, firmware, hardware details. */
export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/** Paths the container may read but not write: kernel tunables and the sysrq trigger. */
export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);

/**
 * The task limit a container gets unless `pids` says otherwise (Podman's default): a fork
 * bomb inside ends at it instead of exhausting the host's PIDs.
 */
export const DEFAULT_PIDS_LIMIT = 2048;

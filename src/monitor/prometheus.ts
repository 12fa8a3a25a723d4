/**
 * The Prometheus exposition of container samples, with cAdvisor's metric names, types,
 * help texts and labels (`id` the cgroup path, `name`, `image`), so dashboards and alerts
 * written against cAdvisor read ctrkit's numbers unchanged.
 */
import type * as PromClient from 'prom-client';
import { MonitorError } from './errors.js';
import type { ContainerSample } from './sample.js';

type Prom = typeof PromClient;
let prom: Promise<Prom> | undefined;

/** prom-client, loaded on the first scrape: nothing else in ctrkit needs it. */
function loadPromClient(): Promise<Prom> {
  prom ??= import('prom-client').then(
    // A CommonJS module: its exports arrive as `default` under ESM.
    (m) => (m as unknown as { default?: Prom }).default ?? m,
    (e: unknown) => {
      prom = undefined;
      throw new MonitorError('ERR_MONITOR_DEPENDENCY', 'the monitor needs the prom-client package: npm install prom-client', { cause: e });
    },
  );
  return prom;
}

type Kind = 'counter' | 'gauge';
type Value = (s: ContainerSample) => number | undefined;

/** One metric: its name, kind, help, and where its value comes from. */
interface Spec {
  readonly name: string;
  readonly kind: Kind;
  readonly help: string;
  readonly value: Value;
  /** Extra constant labels, as cAdvisor sets them (`cpu="total"`). */
  readonly labels?: Readonly<Record<string, string>>;
}

// cAdvisor reports an absent limit as 0.
const orZero = (v: number | undefined, has: boolean) => (has ? (v ?? 0) : undefined);

const SPECS: readonly Spec[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    kind: 'counter',
    help: 'Cumulative cpu time consumed in seconds.',
    value: (s) => s.cpuUsageSeconds,
    labels: { cpu: 'total' },
  },
  { name: 'container_cpu_user_seconds_total', kind: 'counter', help: 'Cumulative user cpu time consumed in seconds.', value: (s) => s.cpuUserSeconds },
  { name: 'container_cpu_system_seconds_total', kind: 'counter', help: 'Cumulative system cpu time consumed in seconds.', value: (s) => s.cpuSystemSeconds },
  {
    name: 'container_cpu_cfs_throttled_seconds_total',
    kind: 'counter',
    help: 'Total time duration the container has been throttled.',
    value: (s) => s.cpuThrottledSeconds,
  },
  {
    name: 'container_memory_usage_bytes',
    kind: 'gauge',
    help: 'Current memory usage in bytes, including all memory regardless of when it was accessed',
    value: (s) => s.memoryUsageBytes,
  },
  { name: 'container_memory_working_set_bytes', kind: 'gauge', help: 'Current working set in bytes.', value: (s) => s.memoryWorkingSetBytes },
  { name: 'container_memory_rss', kind: 'gauge', help: 'Size of RSS in bytes.', value: (s) => s.memoryRssBytes },
  { name: 'container_memory_cache', kind: 'gauge', help: 'Number of bytes of page cache memory.', value: (s) => s.memoryCacheBytes },
  { name: 'container_memory_max_usage_bytes', kind: 'gauge', help: 'Maximum memory usage recorded in bytes', value: (s) => s.memoryMaxUsageBytes },
  { name: 'container_memory_failcnt', kind: 'counter', help: 'Number of memory usage hits limits', value: (s) => s.memoryFailcnt },
  {
    name: 'container_spec_memory_limit_bytes',
    kind: 'gauge',
    help: 'Memory limit for the container.',
    value: (s) => orZero(s.memoryLimitBytes, s.memoryUsageBytes !== undefined),
  },
  { name: 'container_oom_events_total', kind: 'counter', help: 'Count of out of memory events observed for the container', value: (s) => s.oomEvents },
  { name: 'container_processes', kind: 'gauge', help: 'Number of processes running inside the container.', value: (s) => s.processes },
  { name: 'container_threads', kind: 'gauge', help: 'Number of threads running inside the container', value: (s) => s.threads },
  {
    name: 'container_threads_max',
    kind: 'gauge',
    help: 'Maximum number of threads allowed inside the container, infinity if value is zero',
    value: (s) => orZero(s.threadsMax, s.threads !== undefined),
  },
  { name: 'container_start_time_seconds', kind: 'gauge', help: 'Start time of the container since unix epoch in seconds.', value: (s) => s.startTimeSeconds },
  { name: 'container_last_seen', kind: 'gauge', help: 'Last time a container was seen by the exporter', value: (s) => s.timestampMs / 1000 },
];

const IO_SPECS = [
  { name: 'container_fs_reads_bytes_total', help: 'Cumulative count of bytes read', key: 'readBytes' },
  { name: 'container_fs_writes_bytes_total', help: 'Cumulative count of bytes written', key: 'writeBytes' },
] as const;

const LABELS = ['id', 'name', 'image'] as const;

function baseLabels(s: ContainerSample): Record<(typeof LABELS)[number], string> {
  // A container without a cgroup has no cgroup path; its id stands in.
  return { id: s.cgroup ?? `/${s.id}`, name: s.name, image: s.image };
}

/** The text Prometheus scrapes, and its content type. */
export interface Exposition {
  readonly contentType: string;
  readonly text: string;
}

/** Encodes samples in the Prometheus text format (version 0.0.4) through prom-client. */
export async function exposition(samples: readonly ContainerSample[]): Promise<Exposition> {
  const p = await loadPromClient();
  // A registry per scrape: containers come and go, and a fresh one never reports a gone one.
  const registry = new p.Registry();
  for (const spec of SPECS) {
    const labelNames = [...LABELS, ...Object.keys(spec.labels ?? {})];
    const metric =
      spec.kind === 'counter'
        ? new p.Counter({ name: spec.name, help: spec.help, labelNames, registers: [registry] })
        : new p.Gauge({ name: spec.name, help: spec.help, labelNames, registers: [registry] });
    for (const s of samples) {
      const v = spec.value(s);
      if (v === undefined) continue;
      const labels = { ...baseLabels(s), ...spec.labels };
      if (metric instanceof p.Counter) metric.inc(labels, v);
      else metric.set(labels, v);
    }
  }
  for (const spec of IO_SPECS) {
    const c = new p.Counter({ name: spec.name, help: spec.help, labelNames: [...LABELS, 'device'], registers: [registry] });
    for (const s of samples) for (const d of s.io ?? []) c.inc({ ...baseLabels(s), device: d.device }, d[spec.key]);
  }
  return { contentType: registry.contentType, text: await registry.metrics() };
}

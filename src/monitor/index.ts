/**
 * `ctrkit/monitor`: cAdvisor's job for ctrkit's containers — their cgroup statistics as
 * Prometheus metrics under cAdvisor's names, as JSON, and as a live web page.
 * @packageDocumentation
 */
export { startMonitor, type Monitor, type MonitorOptions } from './server.js';
export { sampleContainer, sampleContainers, type ContainerSample, type DeviceIo, type SampleOptions } from './sample.js';
export { exposition, type Exposition } from './prometheus.js';
export { MonitorError } from './errors.js';

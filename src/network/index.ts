/**
 * `ctrkit/network`: container networking. This release reads which interfaces a process's
 * network namespace has; `Bridge`, veth and NAT build on it.
 * @packageDocumentation
 */
export { interfacesOf, type InterfaceCounters } from './interfaces.js';

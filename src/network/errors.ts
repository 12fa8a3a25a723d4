import { CtrkitError } from '../errors.js';
import { errnoName } from '../sys/errno.js';

/**
 * The kernel refused an rtnetlink request. `code` is always `ERR_NETLINK`; `errno` is the
 * kernel's reason (17) and `errnoName` its name (`EEXIST`, `ENODEV` ...), `operation` says
 * what was asked (`RTM_NEWLINK veth ctk1a2b`) and `kernelMessage` carries the kernel's own
 * explanation when it gave one (extended ack).
 */
export class NetlinkError extends CtrkitError {
  /** Always `ERR_NETLINK`. */
  declare readonly code: 'ERR_NETLINK';
  /** The errno number, e.g. 17. */
  readonly errno: number;
  /** The errno name, e.g. `EEXIST`. */
  readonly errnoName: string;
  /** The request, e.g. `RTM_NEWADDR 10.1.1.2/24 on ctk0`. */
  readonly operation: string;
  /** The kernel's extended-ack text, when there was one. */
  readonly kernelMessage: string | undefined;

  /** @internal */
  constructor(operation: string, errno: number, kernelMessage?: string) {
    const name = errnoName(errno);
    super('ERR_NETLINK', `${operation}: ${name}${kernelMessage ? ` (${kernelMessage})` : ''}`);
    this.errno = errno;
    this.errnoName = name;
    this.operation = operation;
    this.kernelMessage = kernelMessage;
  }
}

/** Stable codes of {@link NetworkError}. */
export type NetworkErrorCode =
  | 'ERR_NETWORK_SUBNET_OVERLAP'
  | 'ERR_NETWORK_SUBNET_EXHAUSTED'
  | 'ERR_NETWORK_ADDRESS_IN_USE'
  | 'ERR_NETWORK_PORT_IN_USE'
  | 'ERR_NETWORK_CONTAINER_GONE'
  | 'ERR_NETWORK_NAMESPACE'
  | 'ERR_NETWORK_STATE'
  | 'ERR_NETWORK_BRIDGE'
  | 'ERR_NETWORK_NAME_IN_USE'
  | 'ERR_NETWORK_NOT_FOUND'
  | 'ERR_NETWORK_IN_USE'
  | 'ERR_NETWORK_VXLAN'
  | 'ERR_NETWORK_NEEDS_ROOT'
  | 'ERR_NETWORK_PASTA'
  | 'ERR_NETWORK_PASTA_NOT_FOUND';

/**
 * A networking operation failed for a reason ctrkit can name: an overlapping subnet, an
 * exhausted one, a port already mapped or listened on, a container that exited mid-attach. Nothing the failed call created is left behind.
 * Rootless callers: `ERR_NETWORK_NEEDS_ROOT` (bridge, cni and named networks need root; use
 * `network: 'pasta'`), `ERR_NETWORK_PASTA_NOT_FOUND` (install the passt package),
 * `ERR_NETWORK_PASTA` (pasta refused, with its own words).
 */
export class NetworkError extends CtrkitError {
  /** Why; see {@link NetworkErrorCode}. */
  declare readonly code: NetworkErrorCode;
  /** @internal */
  constructor(code: NetworkErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Stable codes of {@link CniError}. */
export type CniErrorCode = 'ERR_NETWORK_CNI_PLUGIN_NOT_FOUND' | 'ERR_NETWORK_CNI_PLUGIN' | 'ERR_NETWORK_CNI_CONFIG';

/**
 * A CNI plugin could not be found, failed, or a network configuration is invalid. For a
 * plugin's own error, `cniCode` and `details` are the fields of its error JSON (CNI spec
 * §Error: code 1-99 well known, e.g. 7 invalid network config, 11 try again later).
 */
export class CniError extends CtrkitError {
  /** Why; see {@link CniErrorCode}. */
  declare readonly code: CniErrorCode;
  /** The plugin that failed, e.g. `bridge`. */
  readonly plugin: string | undefined;
  /** The CNI error code the plugin returned. */
  readonly cniCode: number | undefined;
  /** The plugin's `details`. */
  readonly details: string | undefined;

  /** @internal */
  constructor(code: CniErrorCode, message: string, extra: { plugin?: string; cniCode?: number; details?: string; cause?: unknown } = {}) {
    super(code, message, { cause: extra.cause });
    this.plugin = extra.plugin;
    this.cniCode = extra.cniCode;
    this.details = extra.details;
  }
}

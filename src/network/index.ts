/**
 * `ctrkit/network`: container networking from the kernel's parts. An rtnetlink client
 * ({@link Rtnetlink}), network namespaces ({@link NetworkNamespace}), a Linux bridge with
 * IPAM and NAT ({@link Bridge}), port mappings, network modes ({@link connectContainer}),
 * the container's /etc files ({@link writeNetworkFiles}), a CNI runtime ({@link CniNetwork}),
 * a flannel-style VXLAN overlay between hosts ({@link VxlanOverlay}), and rootless networking
 * through pasta (`connectContainer({ mode: 'pasta' })`).
 * @packageDocumentation
 */
export { interfacesOf, type InterfaceCounters } from './interfaces.js';
export { NetlinkError, NetworkError, CniError, type NetworkErrorCode, type CniErrorCode } from './errors.js';
export { NetworkNamespace, NETNS_RUN_DIR, type CreateNetnsOptions, type NetnsExecOptions, type NetnsExecResult } from './netns.js';
export {
  Rtnetlink,
  MAX_IFNAME_BYTES,
  type LinkInfo,
  type AddressInfo,
  type RouteInfo,
  type NeighbourInfo,
  type LinkRef,
  type VethOptions,
  type LinkChanges,
  type RtnetlinkOptions,
  type RouteSpec,
} from './rtnetlink.js';
export type { VxlanLinkOptions, VxlanLinkInfo, NeighbourSpec, FdbEntrySpec, FdbEntry } from './rtnetlink.js';
export { VxlanOverlay, type VxlanOverlayOptions, type VxlanPeer } from './vxlan.js';
export { parseSubnet, type Ipv4Subnet } from './ipv4.js';
export { Ipam, type IpamOptions, type Lease, type LeaseOwner, type AllocateOptions } from './ipam.js';
export { DEFAULT_NETWORK_STATE_DIR } from './state-lock.js';
export { parsePortMapping, formatPortMapping, type PortMapping, type PortSpec } from './ports.js';
export { NFT_TABLE } from './nat.js';
export { Bridge, type BridgeOptions } from './bridge.js';
export { Network, type NetworkOptions, type NetworkLookupOptions, type NetworkMember } from './network.js';
export { BridgeAttachment, type AttachOptions, type AttachTarget } from './attach.js';
export { connectContainer, type ConnectOptions, type NetworkAttachment, type NetworkMode } from './connect.js';
export type { PastaOptions, PastaAttachment } from './pasta.js';
export { writeNetworkFiles, type NetworkFilesOptions, type NetworkFiles } from './etc-files.js';
export { CniNetwork, CniAttachment, DEFAULT_CNI_BIN_DIRS, type CniNetworkOptions, type CniAddOptions } from './cni/network.js';
export type { CniConfigList, CniPluginConfig, CniResult, CniInterface, CniIpConfig, CniVersionInfo } from './cni/types.js';

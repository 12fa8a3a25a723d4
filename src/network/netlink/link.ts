/**
 * The link header of rtnetlink (struct ifinfomsg) and the one link request that both
 * rtnetlink.ts and netns.ts need. It lives here, below both, so that creating a namespace can
 * bring its loopback up without netns.ts importing rtnetlink.ts (which imports netns.ts).
 */
import { encodeAttrs, str } from './attributes.js';
import * as C from './constants.js';
import type { NetlinkSocket } from './socket.js';

/** struct ifinfomsg: family, interface index, IFF_* flags and the mask of flags to change. @internal */
export function ifinfomsg(index: number, flags = 0, change = 0, family = C.AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** Sets IFF_UP on the link named `name`, in the namespace `socket` was opened in. @internal */
export function setLinkUpByName(socket: NetlinkSocket, name: string): void {
  // Index 0 with IFLA_IFNAME: the kernel looks the link up by name.
  socket.request(C.RTM_NEWLINK, 0, Buffer.concat([ifinfomsg(0, C.IFF_UP, C.IFF_UP), encodeAttrs([str(C.IFLA_IFNAME, name)])]), `RTM_NEWLINK set ${name} up`);
}

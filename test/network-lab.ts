// The network tests' world: a namespace that plays "the host", wired by a veth pair to one
// that plays "the outside", on 198.51.100.0/24 (TEST-NET-2). Nothing touches this machine's own
// network. Every link and namespace is named ctk... and goes in dispose().
import { NetworkNamespace, Rtnetlink } from 'ctrkit/network';

/** The host's address on the outside link. */
export const HOST_IP = '198.51.100.1';
/** The outside world's address. */
export const OUTSIDE_IP = '198.51.100.2';

/** The two namespaces, linked and addressed. */
export interface Lab {
  readonly host: NetworkNamespace;
  readonly outside: NetworkNamespace;
  dispose(): Promise<void>;
}

/** Creates `ctk-<prefix>host-PID` and `ctk-<prefix>out-PID`, linked by ctkup ↔ ctkout. */
export async function createLab(prefix = ''): Promise<Lab> {
  const host = await NetworkNamespace.create(`ctk-${prefix}host-${process.pid}`);
  const outside = await NetworkNamespace.create(`ctk-${prefix}out-${process.pid}`);
  {
    using rt = Rtnetlink.open({ netns: host });
    rt.createVeth({ name: 'ctkup', peer: { name: 'ctkout', netns: outside } });
    rt.addAddress('ctkup', `${HOST_IP}/24`);
    rt.setLink('ctkup', { up: true });
    using ro = Rtnetlink.open({ netns: outside });
    ro.addAddress('ctkout', `${OUTSIDE_IP}/24`);
    ro.setLink('ctkout', { up: true });
  }
  return {
    host,
    outside,
    dispose: async () => {
      await outside.delete();
      await host.delete();
    },
  };
}

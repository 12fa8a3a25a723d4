#!/usr/bin/env bash
# Installs what the network tests need on a Debian machine, as root. Idempotent, and quick when
# everything is already there (no apt-get at all then).
#   nftables                     nft(8): the tests read the NAT rules ctrkit made (ctrkit itself speaks netlink)
#   iproute2                     ip(8): the tests look at links and namespaces from the outside
#   containernetworking-plugins  the standard CNI plugins (bridge, host-local, portmap, loopback) in /usr/lib/cni
#   iptables                     the CNI portmap plugin programs NAT through iptables(-nft)
#   passt                        pasta(1): rootless containers' networking (network: 'pasta')
set -euo pipefail
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/loopback ] \
  || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
[ -x /usr/bin/pasta ] || need+=(passt)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "network test dependencies ready"

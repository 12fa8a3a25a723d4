#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, as root. Idempotent and quick when
# everything is already there (no apt-get at all then).
#   busybox-static  the default rootfs's tools (ps, awk, ip ...) in one static binary
#   uidmap          newuidmap/newgidmap, for rootless multi-range id maps
#   util-linux      unshare(1), nsenter(1), ipcmk/ipcrm
#   iproute2        ip netns, to check namespaces from the outside
#   qemu-system-x86, linux-image-amd64   a VM with a pure cgroup v2 kernel, for the v2 controllers
#   chromium        the browser the monitor page's test drives (through playwright-core)
#   btrfs-progs     mkfs.btrfs, for the btrfs storage driver's loop-mounted test filesystem
#   gcc, libc6-dev  a static raw-syscall probe the seccomp test builds (libc.a); linux-libc-dev
#                   for scripts/gen-seccomp-tables.mjs
set -euo pipefail
need=()
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v unshare >/dev/null && command -v nsenter >/dev/null && command -v ipcmk >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
# The cgroup v2 VM (scripts/cgroup2-vm.sh): QEMU and a Debian kernel with its modules.
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
command -v gcc >/dev/null || need+=(gcc)
[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Networking (nftables, iptables for CNI's portmap, the CNI plugins) and OCI images (a registry,
# skopeo, umoci, runc): each block's own script.
here=$(dirname "$0")
bash "$here/install-network-deps.sh"
[ -f "$here/install-oci-deps.sh" ] && bash "$here/install-oci-deps.sh"
bash "$here/install-runtime-clients.sh"
# The unprivileged user of the rootless tests; useradd delegates it subordinate id ranges.
id -u ctkuser >/dev/null 2>&1 || useradd --create-home --shell /bin/sh ctkuser
grep -q '^ctkuser:' /etc/subuid || usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ctkuser
# userns: 'auto' takes its ranges from the user "ctrkit" (who need not exist): docs/security.md.
for f in /etc/subuid /etc/subgid; do grep -q '^ctrkit:' "$f" || echo 'ctrkit:1879048192:134217728' >>"$f"; done
echo "test dependencies ready"

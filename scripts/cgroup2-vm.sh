#!/usr/bin/env bash
# Runs test files inside a virtual machine whose kernel has a pure cgroup v2 hierarchy with
# every controller (memory, cpu, io, pids, cpuset, hugetlb), which this machine's hybrid
# layout cannot offer. The guest is Debian's own kernel under QEMU (KVM when /dev/kvm is
# usable, software emulation otherwise; see kvm_boots below), an initramfs
# of busybox, and this machine's root filesystem shared read-only over 9p with a tmpfs
# overlay on top, so the guest runs the very same node, checkout and test files. Results
# come back through a second, writable 9p share.
#
#   usage: scripts/cgroup2-vm.sh TEST_FILE...       (as root; needs qemu-system-x86 and linux-image-amd64)
#
# When the host has the rootless tests' user (ctkuser, with /etc/subuid; scripts/install-test-deps.sh),
# the guest delegates /sys/fs/cgroup/ctk-user-UID to it, as systemd would, and names it to the
# tests in CTRKIT_DELEGATED_CGROUP.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 TEST_FILE..." >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
kver=$(ls /lib/modules | sort -V | while read -r v; do [ -f "/boot/vmlinuz-$v" ] && echo "$v"; done | tail -n 1)
[ -n "$kver" ] || { echo "cgroup2-vm: no /boot/vmlinuz-VERSION with its /lib/modules (apt-get install linux-image-amd64)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "cgroup2-vm: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }
busybox=$(command -v busybox)

work=$(mktemp -d /tmp/ctk-vm-XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/initrd/bin" "$work/initrd/lib/modules" "$work/results"
cp "$busybox" "$work/initrd/bin/busybox"
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay loop; do
  f=$(find "/lib/modules/$kver" -name "$m.ko*" | head -n 1)
  [ -z "$f" ] && continue # built in
  case "$f" in
    *.xz) xz -dc "$f" > "$work/initrd/lib/modules/$m.ko" ;;
    *.zst) zstd -dqc "$f" > "$work/initrd/lib/modules/$m.ko" ;;
    *) cp "$f" "$work/initrd/lib/modules/$m.ko" ;;
  esac
  echo "$m" >> "$work/initrd/lib/modules/order"
done

# The guest's first process: load the drivers, assemble the root, switch to it, run the tests, power off.
cat > "$work/initrd/init" <<GUEST
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in \$(cat /lib/modules/order); do insmod /lib/modules/\$m.ko; done
mkdir -p /host /rw /new
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro host /host
mount -t tmpfs -o size=1500m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /new
mkdir -p /new/ctk-vm-results
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /new/ctk-vm-results
mount -t proc proc /new/proc; mount -t sysfs sys /new/sys; mount -t devtmpfs dev /new/dev
mount -t cgroup2 -o nsdelegate cgroup2 /new/sys/fs/cgroup
mkdir -p /new/dev/pts /new/dev/shm; mount -t devpts devpts /new/dev/pts; mount -t tmpfs shm /new/dev/shm
echo "+cpu +cpuset +io +memory +pids +hugetlb" > /new/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
# The test runner cannot live in the root cgroup once controllers are enabled below it.
mkdir -p /new/sys/fs/cgroup/runner && echo \$\$ > /new/sys/fs/cgroup/runner/cgroup.procs
# A subtree delegated to the rootless tests' user, made by hand the way systemd makes
# user@UID.service's (no systemd here): a cgroup owned by the user, with the controllers
# enabled for it above (the root's subtree_control, just above), and its cgroup.procs,
# cgroup.subtree_control and cgroup.threads the user's too. The tests start the user's
# processes in leaves below it (test/rootless-cgroup2.test.ts).
uid=\$(chroot /new id -u ctkuser 2>/dev/null)
if [ -n "\$uid" ]; then
  d=/new/sys/fs/cgroup/ctk-user-\$uid
  mkdir -p \$d && chown \$uid:\$uid \$d \$d/cgroup.procs \$d/cgroup.subtree_control \$d/cgroup.threads &&
    export CTRKIT_DELEGATED_CGROUP=ctk-user-\$uid
fi
ip link set lo up 2>/dev/null
# switch_root, not chroot: the kernel refuses a user namespace to a chrooted process (EPERM),
# and the rootless tests need one. It makes /new the root of the mount namespace and runs
# the tests as this same PID 1, which then powers the guest off with the host's busybox.
exec switch_root /new /bin/sh -c 'cd "$repo" && export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CTRKIT_TEST_REPORT=/ctk-vm-results/report.json &&
  cat /sys/fs/cgroup/cgroup.controllers > /ctk-vm-results/controllers &&
  node node_modules/vitest/vitest.mjs run $* > /ctk-vm-results/log 2>&1;
  echo \$? > /ctk-vm-results/status; sync; $busybox poweroff -f'
GUEST
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")

# KVM runs the guest at native speed, where it works. A /dev/kvm that opens is not enough: in
# a nested VM (this project's Firecracker machines) QEMU may abort on `-cpu host` or the guest
# hang before its first line. So the kernel is booted once under KVM first, and KVM is used
# only if it prints its banner within 10 s (it takes well under one where KVM works). TCG
# always works. CTRKIT_VM_ACCEL=tcg or =kvm skips the probe.
kvm_boots() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  local log="$work/kvm-probe.log" pid i
  timeout 10 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nographic -no-reboot -nodefaults -serial file:"$log" \
    -kernel "/boot/vmlinuz-$kver" -append 'console=ttyS0 panic=-1' >/dev/null 2>&1 &
  pid=$!
  disown "$pid" # not a job: bash would report a QEMU abort ("Aborted") on the terminal
  for i in $(seq 100); do
    grep -aq 'Linux version' "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -aq 'Linux version' "$log" 2>/dev/null && i=ok
  kill "$pid" 2>/dev/null || true # timeout passes the signal on to QEMU
  [ "$i" = ok ]
}
case "${CTRKIT_VM_ACCEL:-auto}" in
  tcg) accel=tcg,thread=multi ;;
  kvm) accel=kvm ;;
  *) if kvm_boots; then accel=kvm; else accel=tcg,thread=multi; fi ;;
esac
echo "cgroup2-vm: booting $kver ($([ "$accel" = kvm ] && echo 'KVM' || echo 'software emulation; a few minutes')) to run: $*"
run_qemu() {
  # shellcheck disable=SC2046 # -cpu host only with KVM, as two words
  timeout 1500 qemu-system-x86_64 -accel "$1" $([ "$1" = kvm ] && echo '-cpu host') -m 3072 -smp 2 -nographic -no-reboot -nodefaults \
  -serial file:"$work/console.log" \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" -append 'console=ttyS0 panic=-1 quiet' \
  -virtfs local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs local,path="$work/results",mount_tag=results,security_model=passthrough
}
qemu_failed() { echo "cgroup2-vm: qemu failed or timed out; console:" >&2; tail -n 30 "$work/console.log" >&2; exit 1; }
if ! run_qemu "$accel"; then
  # KVM refused at start-up (no nested virtualization, module busy ...): the same run under TCG.
  [ "$accel" = kvm ] && [ ! -f "$work/results/status" ] || qemu_failed
  echo "cgroup2-vm: qemu with KVM failed; retrying with software emulation" >&2
  run_qemu tcg,thread=multi || qemu_failed
fi

if [ ! -f "$work/results/status" ]; then
  echo "cgroup2-vm: the guest did not report a result; console:" >&2
  tail -n 40 "$work/console.log" >&2
  exit 1
fi
echo "cgroup2-vm: guest controllers: $(cat "$work/results/controllers")"
cat "$work/results/log"
# Keep the guest's report where the caller can count it (CTRKIT_VM_REPORT), and summarize.
[ -n "${CTRKIT_VM_REPORT:-}" ] && cp "$work/results/report.json" "$CTRKIT_VM_REPORT"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`cgroup v2 VM: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$work/results/report.json" || true
exit "$(cat "$work/results/status")"

#!/usr/bin/env bash
# Installs the real clients of an OCI runtime that test/runtime-clients.test.ts drives, on a
# Debian machine, as root. Idempotent, and quick when everything is there (no apt-get at all then).
#   containerd      containerd, ctr and containerd-shim-runc-v2 (the shim calls the runtime as runc)
#   docker.io       dockerd and the docker client matching it (/usr/bin/docker)
#   runc            the reference runtime the harness is proven with
#   busybox-static  the static /bin/busybox the test image is built from
#   python3         the console socket of test/runtime.test.ts (receives a terminal's master by SCM_RIGHTS)
# The tests start private daemons of their own (test/runtime/clients-lab.ts): nothing here may
# leave a system-wide containerd or dockerd running, or enabled for the next boot, since a system
# dockerd would take over the host firewall and create docker0.
set -euo pipefail
need=()
command -v containerd >/dev/null && command -v ctr >/dev/null && command -v containerd-shim-runc-v2 >/dev/null || need+=(containerd)
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
command -v python3 >/dev/null || need+=(python3)
units=(docker.socket docker.service containerd.service)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  # invoke-rc.d asks policy-rc.d whether a package may start its daemon (101 = no); without
  # systemd as PID 1 it would otherwise run /etc/init.d/docker start. Ours for the install,
  # whatever the machine has (its own is put back afterwards).
  policy=/usr/sbin/policy-rc.d
  saved=
  if [ -e "$policy" ]; then
    saved=$(mktemp /tmp/ctk-policy-rc.d.XXXXXX)
    cp -p "$policy" "$saved"
  fi
  restore_policy() { if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi; }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  restore_policy
  trap - EXIT
fi
# Packages enable their units on install; a booted systemd would start them on the next boot.
# `systemctl disable` only edits symlinks (and the sysv rc.d links of /etc/init.d/docker), so it
# also works where systemd is not PID 1.
for u in "${units[@]}"; do
  if systemctl is-enabled --quiet "$u" 2>/dev/null; then systemctl disable --quiet "$u" 2>/dev/null || true; fi
done
# A daemon some other way started (a booted systemd, an init script): stop it.
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  for u in "${units[@]}"; do if systemctl is-active --quiet "$u" 2>/dev/null; then systemctl stop "$u"; fi; done
elif [ -x /etc/init.d/docker ] && [ -S /var/run/docker.sock ]; then
  /etc/init.d/docker stop >/dev/null || true
fi
echo "runtime client dependencies ready"

#!/usr/bin/env bash
# Installs what the OCI tests (test/oci*.test.ts) and bench/pull*.mjs need on a Debian machine,
# as root. Idempotent, and quick when everything is there (no apt-get at all then).
#   docker-registry  the CNCF distribution registry the tests start on 127.0.0.1
#   skopeo           pushes the test images and copies images for interop and the bench
#   umoci            builds the test images from a busybox rootfs; unpacks for the bench
#   apache2-utils    htpasswd -B, for the registry's basic auth
#   runc             runs a bundle ctrkit wrote, to prove its config.json valid
#   busybox-static   the static busybox the test images are built from
#   openssl          the token server's self-signed signing certificate
set -euo pipefail
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "oci test dependencies ready"

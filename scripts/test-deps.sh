#!/usr/bin/env bash
# Installs what the tests need from Debian, when it is missing (runs before `npm test`):
#   docker-registry  the OCI distribution registry the preview tests start on loopback (test/support/registry.ts)
#   rsync            gitlab-ci-local copies the project with it, even in its shell executor (test/gitlab)
#   busybox          (busybox-static) the test server's context receiver runs the pod's own `tar -xzf -`
#                    with BusyBox's tar, as the busybox image does (test/support/receiver.ts)
# Idempotent: does nothing when all are on PATH. Needs root, or sudo.
set -euo pipefail

if command -v docker-registry >/dev/null 2>&1 && command -v rsync >/dev/null 2>&1 &&
  command -v busybox >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: only the registry binary, no docker engine pulled in.
$SUDO apt-get install -y -qq --no-install-recommends docker-registry rsync busybox-static

# The package ships a systemd unit listening on :5000; the tests start their own instances on free
# ports, so a running service is not needed (and on CI runners there is no systemd in containers).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl stop docker-registry || true
  $SUDO systemctl disable docker-registry >/dev/null 2>&1 || true
fi

command -v docker-registry rsync busybox

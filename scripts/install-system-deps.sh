#!/usr/bin/env bash
# Installs, from Debian's packages, the tools that some test suites and benchmarks drive:
# HAProxy and nginx (balancer comparison), PgBouncer (transaction pooling), iproute2 (network namespaces),
# promtool (package prometheus: the alert rules in deploy/), systemd-analyze (the units in deploy/systemd),
# podman, runc and debootstrap (the container image, built from a base made without any registry), chromium
# (the browser tests of the web pages, driven by playwright-core).
# Skips what is already there; needs root (CI runs as root). Safe to run again.
set -uo pipefail
need=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: not root; install these yourself: ${need[*]}" >&2
  exit 0
fi
echo "install-system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
# Install without starting the packaged services: the tests start their own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
rc=$?
rm -f /usr/sbin/policy-rc.d
exit $rc

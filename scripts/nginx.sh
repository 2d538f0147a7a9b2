#!/usr/bin/env bash
# Prints the path of an nginx binary, installing Debian's nginx-light package first when
# none is on PATH (VGI_NGINX overrides). Used by scripts/test.sh for the load-balancer test
# (conformance/tests/http/nginx.rs): two workers behind nginx, every continuation of every
# stream on the other worker.
set -euo pipefail
if [ -n "${VGI_NGINX:-}" ]; then echo "$VGI_NGINX"; exit 0; fi
found=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
if [ -z "$found" ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q nginx-light >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q nginx-light >/dev/null
  }
  found=$(command -v nginx || echo /usr/sbin/nginx)
fi
echo "$found"

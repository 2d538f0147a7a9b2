#!/usr/bin/env bash
# Runs the reference's shared pytest conformance suite (vgi-rpc 0.52.2) in this repo's
# lanes (tests/python/conformance; see its conftest.py):
#
#   server  the reference Python client against OUR worker      pipe subprocess unix tcp shm http
#   client  OUR client, through vgi-rpc-client-driver, against
#           the reference worker vgi-rpc-conformance           pipe unix tcp shm http
#
# (shm: a pipe plus a 64 MiB shared-memory segment created by the client side; http: the
# worker serves HTTP on 127.0.0.1, and the lane also runs the suite's HTTP-only groups.)
#
# (The native lane, our client against vgi_rpc.conformance.client_worker, is the cargo
# test matrix's `native` group, conformance/tests/matrix/native.rs.)
#
# VGI_LANES overrides the lanes, e.g. VGI_LANES="client:unix,tcp"; VGI_RUST_WORKER and
# VGI_CLIENT_DRIVER override the binaries under test (default: this tree's release
# build). A transport the worker does not support fails its tests; nothing is skipped
# silently: excluded tests are listed with reasons, and any other skip counts as a
# failure. Extra arguments go to pytest. Exit status: 0 only when every lane passed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=$(scripts/python-venv.sh) || exit 2
# The same build as `cargo test --workspace --release` (same features), so after the
# test step this compiles nothing; a narrower `-p` build would rebuild the library.
cargo test --workspace --release --no-run -q || exit 2
bin="${CARGO_TARGET_DIR:-$here/target}/release"
lanes=${VGI_LANES:-"server:pipe,subprocess,unix,tcp,shm,http client:pipe,unix,tcp,shm,http"}

status=0
summary=()
for lane in $lanes; do
  role=${lane%%:*}
  transports=${lane#*:}
  # The client lane's pipe transport starts a Python worker per connection (~0.5 s):
  # two xdist workers halve it. The other lanes finish in seconds serially.
  parallel=()
  if [ "$role" = client ] && [[ ",$transports," == *,pipe,* || ",$transports," == *,shm,* ]]; then
    parallel=(-n 2)
  fi
  echo "== shared conformance suite: role=$role transports=$transports =="
  log=$(mktemp)
  VGI_CONFORMANCE_ROLE=$role VGI_TRANSPORTS=$transports \
  VGI_RUST_WORKER="${VGI_RUST_WORKER:-$bin/vgi-rpc-conformance-worker}" \
  VGI_CLIENT_DRIVER="${VGI_CLIENT_DRIVER:-$bin/vgi-rpc-client-driver}" \
  PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest -p no:cacheprovider -q -rfE --tb=short "${parallel[@]}" \
      tests/python/conformance "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
  while IFS= read -r line; do summary+=("$role  $line"); done < <(grep -E '^transport ' "$log")
  rm -f "$log"
done

echo "== shared conformance suite: per lane and transport =="
printf '%s\n' "${summary[@]}"
exit "$status"

#!/usr/bin/env bash
# Runs the reference conformance runner (vgi-rpc-test from vgi-rpc==0.52.2) against our
# release worker over stdio, a Unix socket and TCP. Creates the Python venv on first use.
#
# Exit status: 0 only when every run passed every non-skipped test.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=$(scripts/python-venv.sh)
cargo build --release -p vgi-rpc-conformance --bin vgi-rpc-conformance-worker
worker="${CARGO_TARGET_DIR:-$here/target}/release/vgi-rpc-conformance-worker"
scratch=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# Starts the worker with "$@" in the background and prints its discovery line once the
# socket is bound.
start_worker() {
  local out="$scratch/discovery.$#.$RANDOM"
  "$worker" "$@" >"$out" &
  pids+=("$!")
  for _ in $(seq 100); do
    if [ -s "$out" ]; then head -n1 "$out"; return; fi
    sleep 0.05
  done
  echo "worker did not announce its address: $worker $*" >&2
  exit 1
}

status=0
echo "== vgi-rpc-test over stdio (pipe) =="
"$venv/bin/vgi-rpc-test" --cmd "$worker --pipe" --format table || status=1

echo "== vgi-rpc-test over a Unix socket (threaded) =="
line=$(start_worker --unix "$scratch/worker.sock" --threaded)
"$venv/bin/vgi-rpc-test" --unix "${line#UNIX:}" --format table || status=1

echo "== vgi-rpc-test over TCP (threaded) =="
line=$(start_worker --tcp 127.0.0.1:0 --threaded)
"$venv/bin/vgi-rpc-test" --tcp "${line#TCP:}" --format table || status=1

exit $status

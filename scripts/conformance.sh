#!/usr/bin/env bash
# Runs the reference conformance runner (vgi-rpc-test from vgi-rpc==0.52.2) against our
# release worker over stdio, a Unix socket and TCP, each time validating the worker's
# access log against the reference's JSON schema. Creates the Python venv on first use.
#
# Exit status: 0 only when every run passed every non-skipped test and every log.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=$(scripts/python-venv.sh)
# The same build as `cargo test --workspace --release` (same features), so after the
# test step this compiles nothing; a narrower `-p` build would rebuild the library.
cargo test --workspace --release --no-run -q
worker="${CARGO_TARGET_DIR:-$here/target}/release/vgi-rpc-conformance-worker"
scratch=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

# Starts the worker with "$@" in the background (in this shell, so cleanup can kill it)
# and sets $line to its discovery line once the socket is bound.
start_worker() {
  local out="$scratch/discovery.${#pids[@]}"
  "$worker" "$@" >"$out" &
  pids+=("$!")
  for _ in $(seq 200); do
    if [ -s "$out" ]; then line=$(head -n1 "$out"); return; fi
    sleep 0.05
  done
  echo "worker did not announce its address: $worker $*" >&2
  exit 1
}

runner() { "$venv/bin/vgi-rpc-test" --format table "$@"; }
status=0

echo "== stdio (pipe), access log validated =="
runner --cmd "$worker --pipe --access-log $scratch/pipe.jsonl" \
  --access-log "$scratch/pipe.jsonl" || status=1

echo "== stdio (pipe), debug-level access log validated =="
runner --cmd "$worker --pipe --access-log $scratch/debug.jsonl --access-log-debug" \
  --access-log "$scratch/debug.jsonl" || status=1

echo "== Unix socket (threaded), access log validated =="
start_worker --unix "$scratch/worker.sock" --threaded --access-log "$scratch/unix.jsonl"
runner --unix "${line#UNIX:}" --access-log "$scratch/unix.jsonl" || status=1

echo "== TCP (threaded), access log validated =="
start_worker --tcp 127.0.0.1:0 --threaded --access-log "$scratch/tcp.jsonl"
runner --tcp "${line#TCP:}" --access-log "$scratch/tcp.jsonl" || status=1

exit $status

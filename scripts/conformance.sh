#!/usr/bin/env bash
# Runs the reference conformance runner (vgi-rpc-test from vgi-rpc==0.52.2) against our
# release worker over stdio. Creates the Python venv on first use.
#
# The stdio runs also make the worker write an access log and have the runner validate
# it against the reference's access_log.schema.json: once at the default level, once at
# debug level (which must still carry no payload value).
#
# Exit status: 0 only when every run passed (all non-skipped tests and the access log).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=$(scripts/python-venv.sh)
cargo build --release -p vgi-rpc-conformance --bin vgi-rpc-conformance-worker
worker="${CARGO_TARGET_DIR:-$here/target}/release/vgi-rpc-conformance-worker"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== vgi-rpc-test over stdio (pipe), access log validated =="
"$venv/bin/vgi-rpc-test" --cmd "$worker --pipe --access-log $logs/access.jsonl" \
  --access-log "$logs/access.jsonl" --format table "$@"

echo "== vgi-rpc-test over stdio (pipe), debug-level access log validated =="
"$venv/bin/vgi-rpc-test" --cmd "$worker --pipe --access-log $logs/debug.jsonl --access-log-debug" \
  --access-log "$logs/debug.jsonl" --format table "$@"

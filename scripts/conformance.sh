#!/usr/bin/env bash
# Runs the reference conformance runner (vgi-rpc-test from vgi-rpc==0.52.2) against our
# release worker over stdio. Creates the Python venv on first use.
#
# Exit status is the runner's: 0 only when every non-skipped test passed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv=$(scripts/python-venv.sh)
cargo build --release -p vgi-rpc-conformance --bin vgi-rpc-conformance-worker
worker="${CARGO_TARGET_DIR:-$here/target}/release/vgi-rpc-conformance-worker"

echo "== vgi-rpc-test over stdio (pipe) =="
"$venv/bin/vgi-rpc-test" --cmd "$worker --pipe" --format table "$@"

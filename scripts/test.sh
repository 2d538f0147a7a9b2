#!/usr/bin/env bash
# The project's test command: unit + integration tests (the native-client lane is one:
# conformance/tests/native_client.rs), the reference conformance runner against our
# worker, then the reference's shared pytest suite in the server and client lanes
# (scripts/python-conformance.sh). Installs what it needs (the Python venv) by itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
scripts/python-venv.sh >/dev/null
cargo test --workspace --release
scripts/conformance.sh
scripts/python-conformance.sh

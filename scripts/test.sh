#!/usr/bin/env bash
# The project's test command: unit + integration tests, then the reference conformance
# runner against our worker. Installs what it needs (the Python venv) by itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
scripts/python-venv.sh >/dev/null
cargo test --workspace --release
scripts/conformance.sh

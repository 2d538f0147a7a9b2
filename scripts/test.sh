#!/usr/bin/env bash
# The project's test command: unit + integration tests (among them the transport matrix,
# conformance/tests/matrix/, whose `native` group is the native-client lane), the
# load-balancer test behind nginx (conformance/tests/http/nginx.rs), the reference
# conformance runner against our worker, then the reference's shared pytest suite in the
# server and client lanes (scripts/python-conformance.sh). Installs what it needs (the
# Python venv, nginx) by itself.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
scripts/python-venv.sh >/dev/null
# Layering: the engines never import the transports, and no two files import each other.
if grep -rn "crate::transport" src/server src/client; then
    echo "error: src/server or src/client imports crate::transport" >&2
    exit 1
fi
python3 scripts/module-cycles.py src
cargo test --workspace --release
# Two workers behind a real nginx (installed on first use); the same build as above.
VGI_NGINX=$(scripts/nginx.sh) cargo test --workspace --release --test http -- --ignored nginx
scripts/conformance.sh
scripts/python-conformance.sh

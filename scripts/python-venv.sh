#!/usr/bin/env bash
# Create (or reuse) the Python >= 3.13 venv holding the pinned reference implementation,
# vgi-rpc==0.52.2, used by the conformance tests. Prints the venv path on stdout.
#
# Override the location with VGI_VENV; override the interpreter with VGI_PYTHON.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VGI_VENV:-"$here/target/py-venv"}
# The conformance extra brings jsonschema, which `vgi-rpc-test --access-log` needs; the
# external extra (aiohttp, tenacity, zstandard) lets the reference resolve and write
# external-storage pointers.
pin="vgi-rpc[http,cli,conformance,external]==0.52.2"
# The shared conformance suite (tests/python/conformance) needs pytest-timeout (its
# timeout marks), psutil (imported by its resource-soak group) and pytest-xdist. The S3
# tests (conformance/tests/external/s3.rs) run moto's S3-API server
# (conformance/python/s3_server.py), which brings boto3 for the reference's S3Storage.
# The OpenTelemetry tests (conformance/tests/otel.rs) need the SDK (the reference's
# `otel` extra), the OTLP/HTTP exporter and the official protobuf messages their
# receiver decodes with.
extras=(pytest pytest-timeout pytest-xdist psutil "moto[server]==5.2.5" opentelemetry-sdk opentelemetry-proto opentelemetry-exporter-otlp-proto-http)

find_python() {
  if [ -n "${VGI_PYTHON:-}" ]; then echo "$VGI_PYTHON"; return; fi
  for cand in python3.13 python3.14 "$HOME/.pyenv/versions/3.13.0/bin/python3"; do
    if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; then
      command -v "$cand"; return
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local v
    v=$(pyenv versions --bare | grep -E '^3\.(1[3-9])' | sort -V | tail -n1 || true)
    if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python3"; return; fi
  fi
  echo "error: no Python >= 3.13 found (set VGI_PYTHON)" >&2
  exit 1
}

if [ ! -x "$venv/bin/vgi-rpc-test" ] || ! "$venv/bin/python" -c \
    'import importlib.metadata as m, sys; sys.exit(m.version("vgi-rpc") != "0.52.2")' 2>/dev/null; then
  py=$(find_python)
  echo "creating $venv with $py" >&2
  "$py" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin" "${extras[@]}" >&2
elif ! "$venv/bin/python" -c 'import jsonschema, pytest, pytest_timeout, xdist, psutil, aiohttp, tenacity, zstandard, moto.server, boto3, opentelemetry.sdk, opentelemetry.proto, opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
  echo "adding the conformance and external extras and ${extras[*]} to $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin" "${extras[@]}" >&2
fi
echo "$venv"

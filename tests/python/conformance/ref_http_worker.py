"""The reference ConformanceService over HTTP with the variants the shared suite's HTTP
fixtures need (client role: OUR client against the reference server).

``vgi-rpc-conformance --http`` serves ``make_wsgi_app(server)`` with all defaults and has
no cap or compression flags, and the reference's own variant workers
(``tests/serve_conformance_http*.py``) are not installed with the package. This builds the
same server as ``vgi-rpc-conformance --http 0 --describe`` (``PKG/conformance/_cli.py``)
and passes the variant's options to ``make_wsgi_app``. Prints ``PORT:<n>`` once listening.
"""

from __future__ import annotations

import argparse
import os
import socket

import waitress
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.conformance.secondary import conformance_extra_protocols
from vgi_rpc.conformance._impl import ConformanceServiceImpl
from vgi_rpc.http import make_wsgi_app
from vgi_rpc.rpc import RpcServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-response-bytes", type=int, default=None)
    parser.add_argument("--max-request-bytes", type=int, default=None)
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--no-call-state-cache", action="store_true")
    parser.add_argument("--cors-origin", default=None)
    args = parser.parse_args()
    server = RpcServer(
        ConformanceService,
        ConformanceServiceImpl(),
        enable_describe=True,
        extra_protocols=conformance_extra_protocols(),
    )
    options: dict[str, object] = {"token_key": os.urandom(32)}
    if args.max_response_bytes is not None:
        options["max_response_bytes"] = args.max_response_bytes
    if args.max_request_bytes is not None:
        options["max_request_bytes"] = args.max_request_bytes
    if args.no_compression:
        options["compression_level"] = None
    if args.no_call_state_cache:
        options["call_state_cache_entries"] = 0
    if args.cors_origin is not None:
        options["cors_origins"] = [args.cors_origin]
    app = make_wsgi_app(server, **options)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    wsgi_server = waitress.create_server(app, host="127.0.0.1", port=port)
    print(f"PORT:{port}", flush=True)
    wsgi_server.run()


if __name__ == "__main__":
    main()

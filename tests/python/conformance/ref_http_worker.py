"""The reference ConformanceService over HTTP with the variants the shared suite's HTTP
fixtures need (client role: OUR client against the reference server).

``vgi-rpc-conformance --http`` serves ``make_wsgi_app(server)`` with all defaults and has
no cap or compression flags, and the reference's own variant workers
(``tests/serve_conformance_http*.py``) are not installed with the package. This builds the
same server as ``vgi-rpc-conformance --http 0 --describe`` (``PKG/conformance/_cli.py``)
and passes the variant's options to ``make_wsgi_app``. Prints ``PORT:<n>`` once listening.

Sticky sessions are on unless ``--no-sticky``, as in the reference's own conformance worker
(``tests/serve_conformance_http.py``): echo header ``x-vgi-conformance-echo:
conformance-fixed-marker`` (``--no-sticky-echo`` drops it), ``--sticky-ttl S``,
``--token-key HEX`` (shared by a peer pair) and ``--sticky-auth`` (the caller from
``X-Conformance-Principal``), plus its test-only ``POST|DELETE /__test_drain__`` route.
"""

from __future__ import annotations

import argparse
import os
import socket
from urllib.parse import urlparse

import falcon
import waitress
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.conformance.secondary import conformance_extra_protocols
from vgi_rpc.conformance._impl import ConformanceServiceImpl
from vgi_rpc.conformance.identity_fixture import (
    AUTH_TIME_HEADER,
    INTROSPECTOR_PRINCIPAL,
    MAX_AUTH_AGE,
    PRINCIPAL_HEADER,
    Whoami,
    WhoamiImpl,
    conformance_grant_keys,
    conformance_mint_grant,
    conformance_resolve_token,
)
from vgi_rpc.http import (
    AuthFailure,
    AuthReason,
    DrainHandle,
    drain_handle,
    ProxyProofConfig,
    make_wsgi_app,
    parse_secrets,
    proxy_proof_gate,
    require_all,
)
from vgi_rpc.external import Compression, ExternalLocationConfig, FetchConfig
from vgi_rpc.rpc import AuthContext, RpcServer
from vgi_rpc.rpc._token_identity import IdentityImpl


class _FailServeStartOnce(ConformanceServiceImpl):
    """The first on_serve_start fails, its retry succeeds (TEST ONLY)."""

    def __init__(self) -> None:
        super().__init__()
        self._failed = False

    def on_serve_start(self, kind: object) -> None:
        if not self._failed:
            self._failed = True
            raise RuntimeError("injected serve-start failure")


def _identity(mode: str) -> IdentityImpl | None:
    """The fixture identity policy (IDENTITY_CONFORMANCE_FIXTURE.md §3, §10)."""
    if mode == "off":
        return None
    return IdentityImpl(
        resolve_token=conformance_resolve_token,
        mint_grant=conformance_mint_grant if mode == "both" else None,
        introspect_principals=[INTROSPECTOR_PRINCIPAL],
        max_auth_age=MAX_AUTH_AGE,
        grant_keys=conformance_grant_keys() if mode == "grants" else None,
    )


def _principal_from_header(req: falcon.Request) -> AuthContext:
    """X-Conformance-Principal / -Auth-Time as the caller (TEST ONLY: trivially spoofable)."""
    principal = req.get_header(PRINCIPAL_HEADER)
    if not principal:
        if req.get_header("Authorization"):
            raise ValueError("no conformance principal header")
        return AuthContext(domain=None, authenticated=False, principal=None)
    claims: dict[str, object] = {}
    auth_time = req.get_header(AUTH_TIME_HEADER)
    if auth_time is not None:
        claims["auth_time"] = auth_time
    return AuthContext(domain="conformance", authenticated=True, principal=principal, claims=claims)


_REQUESTABLE = {r.value: r for r in AuthReason if r.value not in ("proxy_required", "unauthorized")}


def _reject_all(req: falcon.Request) -> AuthContext:
    """Refuse everything, with the reason the request names (TEST ONLY)."""
    reason = _REQUESTABLE.get(req.get_header("X-Conformance-Auth-Reason") or "")
    if reason is not None:
        raise AuthFailure(reason, reason.value)
    raise ValueError("authentication required")


class _TestDrain:
    """``POST /__test_drain__`` starts draining, ``DELETE`` stops (TEST ONLY)."""

    def __init__(self, handle: DrainHandle | None) -> None:
        self._handle = handle

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._handle is not None:
            self._handle.drain()
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._handle is not None:
            # DrainHandle has no undo; the reference fixture reaches its registry the same way.
            self._handle.shutdown.__self__.set_draining(False)  # type: ignore[attr-defined]
        resp.status = falcon.HTTP_204


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-response-bytes", type=int, default=None)
    parser.add_argument("--max-request-bytes", type=int, default=None)
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--no-call-state-cache", action="store_true")
    parser.add_argument("--cors-origin", default=None)
    parser.add_argument("--identity", choices=("off", "both", "introspect-only", "grants"), default="off")
    parser.add_argument("--reject-all-auth", action="store_true")
    parser.add_argument("--fail-serve-start-once", action="store_true")
    parser.add_argument("--proof-mode", default="off", choices=("off", "allow", "require"))
    parser.add_argument("--proof-origin-id", default="conformance-origin")
    parser.add_argument("--proof-secrets", default="")
    parser.add_argument("--proof-skew", type=int, default=30)
    parser.add_argument("--proof-no-replay-cache", action="store_true")
    parser.add_argument("--no-sticky", action="store_true")
    parser.add_argument("--no-sticky-echo", action="store_true")
    parser.add_argument("--sticky-ttl", type=float, default=None)
    parser.add_argument("--token-key", default=None)
    parser.add_argument("--sticky-auth", action="store_true")
    # External storage, as tests/serve_conformance_http.py (and _strict.py) take it.
    parser.add_argument("--fake-storage", default=None)
    parser.add_argument("--externalize-threshold", type=int, default=4096)
    parser.add_argument("--compression", choices=("none", "zstd"), default="none")
    parser.add_argument("--max-fetch-bytes", type=int, default=None)
    parser.add_argument("--max-decompressed-fetch-bytes", type=int, default=None)
    parser.add_argument("--reject-localhost-redirects", action="store_true")
    parser.add_argument("--max-externalized-response-bytes", type=int, default=None)
    args = parser.parse_args()
    extra_protocols = conformance_extra_protocols()
    if args.identity == "grants":
        extra_protocols.append((Whoami, WhoamiImpl()))
    options: dict[str, object] = {
        "token_key": bytes.fromhex(args.token_key) if args.token_key else os.urandom(32)
    }
    external_location = None
    impl = _FailServeStartOnce() if args.fail_serve_start_once else ConformanceServiceImpl()
    if args.fake_storage:
        # The storage worker of tests/serve_conformance_http.py: externalized answers,
        # pointer inputs under the flags' caps, and upload URLs from the same storage,
        # with max_request_bytes defaulting to the threshold.
        from vgi_rpc.conformance.fake_storage import FakeStorageBackend

        backend = FakeStorageBackend(args.fake_storage)

        def only_127(url: str) -> None:
            if urlparse(url).hostname != "127.0.0.1":
                raise ValueError("external-security fixture permits only 127.0.0.1")

        defaults = FetchConfig()
        external_location = ExternalLocationConfig(
            storage=backend,
            externalize_threshold_bytes=args.externalize_threshold,
            compression=Compression() if args.compression == "zstd" else None,
            fetch_config=FetchConfig(
                max_fetch_bytes=defaults.max_fetch_bytes if args.max_fetch_bytes is None else args.max_fetch_bytes,
                max_decompressed_bytes=args.max_decompressed_fetch_bytes,
            ),
            url_validator=only_127 if args.reject_localhost_redirects else None,
        )
        impl = ConformanceServiceImpl(external_storage=backend, external_compression=external_location.compression)
        options["upload_url_provider"] = backend
        options["max_upload_bytes"] = 64 * 1024 * 1024
        options["max_request_bytes"] = args.externalize_threshold
    if args.max_externalized_response_bytes is not None:
        options["max_externalized_response_bytes"] = args.max_externalized_response_bytes
    server = RpcServer(
        ConformanceService,
        impl,
        enable_describe=True,
        extra_protocols=extra_protocols,
        identity=_identity(args.identity),
        external_location=external_location,
    )
    if not args.no_sticky:
        options["enable_sticky"] = True
        options["sticky_default_ttl"] = 300.0 if args.sticky_ttl is None else args.sticky_ttl
        if not args.no_sticky_echo:
            options["sticky_echo_headers"] = {"x-vgi-conformance-echo": "conformance-fixed-marker"}
    if args.proof_mode != "off":
        proof = ProxyProofConfig(
            mode=args.proof_mode,
            origin_id=args.proof_origin_id,
            secrets=parse_secrets(args.proof_secrets),
            skew_seconds=args.proof_skew,
            enable_replay_cache=not args.proof_no_replay_cache,
        )
        options["authenticate"] = require_all(proxy_proof_gate(proof))
        options["proxy_proof_required"] = args.proof_mode == "require"
    elif args.reject_all_auth:
        options["authenticate"] = _reject_all
    elif args.identity != "off" or args.sticky_auth:
        options["authenticate"] = _principal_from_header
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
    app.add_route("/__test_drain__", _TestDrain(drain_handle(app)))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    wsgi_server = waitress.create_server(app, host="127.0.0.1", port=port)
    print(f"PORT:{port}", flush=True)
    wsgi_server.run()


if __name__ == "__main__":
    main()

"""Tests of the shared suite that cannot pass in a lane, each with its reason.

Nothing is skipped silently: ``conftest.py`` deselects exactly what is listed here, prints
the list with counts at the end of the run, and turns every other skip into a failure.

Rows are ``(role, node-id glob, reason)``; ``role`` is ``server`` (the Python client
against our worker), ``client`` (our client through the driver against the Python
worker) or ``*``. Globs match the part of the node id after the file name, e.g.
``TestCors::*``.
"""

from __future__ import annotations

import fnmatch
import os

import pytest

#: HTTP worker fixtures: ``conftest.py`` provides those in ``_HTTP_PROVIDED``; a test that
#: requests any other is excluded with the reason its deployment needs.
_HTTP_FIXTURE_PREFIX = "conformance_http_"
_HTTP_PROVIDED = frozenset(
    {
        "conformance_http_port",
        "conformance_http_strict_cap_port",
        "conformance_http_no_compression_port",
        "conformance_http_small_request_cap_port",
        "conformance_http_access_log",
        "conformance_http_cold_call_cache_port",
        "conformance_http_cors_port",
        "conformance_http_identity_port",
        "conformance_http_identity_introspect_only_port",
        "conformance_http_grant_port",
        "conformance_http_auth_port",
        "conformance_http_auth_reason_port",
        "conformance_http_sticky_auth_port",
        "conformance_http_sticky_short_ttl_port",
        "conformance_http_sticky_peer_ports",
        "conformance_http_with_storage_port",
        "conformance_http_with_zstd_storage_port",
        "conformance_http_externalized_cap_port",
        "conformance_http_external_security_port",
    }
)
#: Fixtures provided by no deployment yet, with the feature each needs (none left).
_NO_HTTP_FIXTURE: dict[str, str] = {}
#: HTTP-only groups that look their worker fixtures up at run time (so the fixture rule
#: below cannot see them): they run only in a lane that includes ``http``.
_HTTP_ONLY_GROUPS = (
    "TestColdCallStateCache",
    "TestSticky",
    "TestCors",
    "TestCompressedHttpRequestCap",
    "TestHttpCompressionNegotiationConformance",
    "TestProxyProof",
    "TestRequestId",
    "TestServeStartLifecycle",
    "TestUnauthorized",
)
_NOT_THIS_LANE = "HTTP-only test: it runs in the lane whose VGI_TRANSPORTS include http"
NO_HTTP = "no worker deployment for {fixture}: the HTTP feature it needs is not implemented"

_SOAK_IN_CLIENT_ROLE = (
    "the resource soak samples the server process; in client role that is the reference"
)
_RAW_IN_CLIENT_ROLE = (
    "raw-wire tests write hand-built request bytes with the Python transport: they test "
    "the server, which in client role is the reference itself"
)

EXCLUDED: list[tuple[str, str, str]] = [
    # -- HTTP-only groups that look their fixtures up at run time ------------------------
    (
        "client",
        "TestTransportKindContext::*",
        "the transport-kind probes check what a server reports; in client role the server "
        "is the reference",
    ),
    # -- Not implemented yet on byte streams ----------------------------------------------
    ("client", "TestResourceSoak::*", _SOAK_IN_CLIENT_ROLE),
    ("client", "TestAdversarialRawRequestContract::*", _RAW_IN_CLIENT_ROLE),
    # -- Known defects, reported; listed so they stay visible -----------------------------
]


def _literal_brackets(pattern: str) -> str:
    """Only ``*`` and ``?`` are wildcards: parametrize ids are full of ``[`` and ``]``."""
    return "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in pattern)


def excluded_reason(role: str, item: pytest.Item) -> str | None:
    """The reason ``item`` is excluded in ``role``, or ``None`` when it runs."""
    http_lane = "http" in os.environ.get("VGI_TRANSPORTS", "pipe").split(",")
    for fixture in getattr(item, "fixturenames", ()):
        if fixture.startswith(_HTTP_FIXTURE_PREFIX) and not http_lane:
            return _NOT_THIS_LANE
        if fixture.startswith(_HTTP_FIXTURE_PREFIX) and fixture not in _HTTP_PROVIDED:
            return _NO_HTTP_FIXTURE.get(fixture, NO_HTTP.format(fixture=fixture))
    name = item.nodeid.split("::", 1)[-1]
    if not http_lane and name.split("::", 1)[0] in _HTTP_ONLY_GROUPS:
        return _NOT_THIS_LANE
    for who, pattern, reason in EXCLUDED:
        if who in ("*", role) and fnmatch.fnmatchcase(name, _literal_brackets(pattern)):
            return reason
    return None

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

import pytest

#: Fixtures only an HTTP deployment of a worker can provide; any test that requests one is
#: excluded. The byte-stream transports are what vgi-rpc-rs serves so far.
_HTTP_FIXTURE_PREFIX = "conformance_http_"
NO_HTTP = "HTTP transport not implemented yet (test needs {fixture})"

_HTTP_ONLY = "HTTP transport not implemented yet (the group needs an HTTP worker fixture)"
_IDENTITY = (
    "vgi_rpc.Identity.v2 / grants / bearer auth ride on the HTTP transport, which is not "
    "implemented yet"
)
_EXTERNAL = (
    "external storage (fake-storage pointer batches) is not implemented yet: the worker "
    "refuses --fake-storage and our client does not resolve pointers"
)
_SOAK_IN_CLIENT_ROLE = (
    "the resource soak samples the server process; in client role that is the reference"
)
_RAW_IN_CLIENT_ROLE = (
    "raw-wire tests write hand-built request bytes with the Python transport: they test "
    "the server, which in client role is the reference itself"
)

EXCLUDED: list[tuple[str, str, str]] = [
    # -- HTTP-only groups that look their fixtures up at run time ------------------------
    ("*", "TestCors::*", _HTTP_ONLY),
    ("*", "TestProxyProof::*", _HTTP_ONLY),
    ("*", "TestUnauthorized::*", _HTTP_ONLY),
    ("*", "TestRequestId::*", _HTTP_ONLY),
    ("*", "TestColdCallStateCache::*", _HTTP_ONLY),
    ("*", "TestCompressedHttpRequestCap::*", _HTTP_ONLY),
    ("*", "TestHttpCompressionNegotiationConformance::*", _HTTP_ONLY),
    ("*", "TestSticky::*", _HTTP_ONLY),
    ("*", "TestServeStartLifecycle::*", _HTTP_ONLY),
    ("*", "TestTransportKindContext::*", _HTTP_ONLY + " (its probes cover pipe, http, unix and tcp together)"),
    # -- Identity / grants (HTTP deployments) ---------------------------------------------
    *(
        ("*", f"{group}::*", _IDENTITY)
        for group in (
            "TestErrorKindsReachTheWire",
            "TestGrantFreshness",
            "TestGrantIssuance",
            "TestGrantPrefixRouting",
            "TestIdentityNarrowing",
            "TestIdentityWireShape",
            "TestIntrospectionAuthorization",
            "TestIntrospectionHappyPath",
            "TestIntrospectionIsNotThrottled",
            "TestRejectionsAreUniform",
            "TestResolveTokenBearer",
            "TestSealedGrantRejections",
            "TestSealedGrants",
            "TestTheCredentialSizeCap",
            "TestTheJwsTrap",
            "TestUnavailableCarriesARetryHint",
            "TestUnavailableIsTransient",
        )
    ),
    # -- Not implemented yet on byte streams ----------------------------------------------
    ("*", "TestExternalByteStream::*", _EXTERNAL),
    ("client", "TestResourceSoak::*", _SOAK_IN_CLIENT_ROLE),
    ("client", "TestAdversarialRawRequestContract::*", _RAW_IN_CLIENT_ROLE),
    # -- Known defects, reported; listed so they stay visible -----------------------------
    (
        "server",
        "TestAdversarialRawRequestContract::test_dispatch_metadata_contract[*-non_utf8_method]",
        "KNOWN BUG (server, src/wire): a request whose custom-metadata key/value is not "
        "UTF-8 fails the flatbuffer verifier and the worker closes the connection instead "
        "of answering a typed error and staying usable",
    ),
    (
        "client",
        "TestProducerStream::test_per_batch_metadata_travels_inline[*]",
        "KNOWN GAP (client, src/client/stream.rs): ClientStream::tick/tick_with_metadata "
        "return a producer batch without its custom metadata, so the driver has none to "
        "relay; needs a tick that returns (batch, metadata)",
    ),
]


def _literal_brackets(pattern: str) -> str:
    """Only ``*`` and ``?`` are wildcards: parametrize ids are full of ``[`` and ``]``."""
    return "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in pattern)


def excluded_reason(role: str, item: pytest.Item) -> str | None:
    """The reason ``item`` is excluded in ``role``, or ``None`` when it runs."""
    for fixture in getattr(item, "fixturenames", ()):
        if fixture.startswith(_HTTP_FIXTURE_PREFIX):
            return NO_HTTP.format(fixture=fixture)
    name = item.nodeid.split("::", 1)[-1]
    for who, pattern, reason in EXCLUDED:
        if who in ("*", role) and fnmatch.fnmatchcase(name, _literal_brackets(pattern)):
            return reason
    return None

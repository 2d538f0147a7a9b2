"""Fixtures that run the reference's shared conformance suite in this repo's lanes.

The shared suite (``vgi_rpc.conformance._pytest_suite``, vgi-rpc 0.52.2) drives a server
through a ``conformance_conn`` fixture that each runner supplies. This file supplies it
for two roles, chosen by environment variables (``scripts/python-conformance.sh`` sets
them):

``VGI_CONFORMANCE_ROLE=server`` (lane a)
    The reference *Python client* against OUR worker (``VGI_RUST_WORKER``).
``VGI_CONFORMANCE_ROLE=client`` (lane b)
    OUR client, through ``vgi-rpc-client-driver`` (``VGI_CLIENT_DRIVER``, the
    CLIENT_DRIVER_PROTOCOL bridge), against the reference worker ``vgi-rpc-conformance``.

``VGI_TRANSPORTS`` picks the transports (``pipe``, ``subprocess``, ``unix``, ``tcp``,
``shm``, ``http``). A transport whose worker flag is missing fails at fixture setup (it is never
skipped), so a lane that cannot run shows up red.

``shm`` is a pipe with a shared-memory segment of ``SHM_SIZE`` bytes beside it: in server
role the Python client creates the segment (as ``vgi-rpc-test --shm`` does) and names it
on every request to our worker; in client role the driver's ``connect`` asks for transport
``shm`` and our client creates the segment, offers it with ``__transport_options__`` and
uses it once the Python worker accepts.

``http`` serves the worker over HTTP on 127.0.0.1 (prefix ``""``). In server role the
Python client (``vgi_rpc.http.http_connect``) calls OUR worker started with ``--http 0``
and the variant flags the HTTP fixtures need; in client role the driver's ``connect`` asks
for transport ``http`` against the reference worker (``vgi-rpc-conformance --http 0
--describe``, or ``ref_http_worker.py`` for the variants it has no flags for), and
``install_http_overrides`` routes the suite's own ``http_connect`` / ``http_capabilities``
calls through OUR client.

Two rules keep the counts honest:

* Tests that cannot pass in a lane are excluded by name in ``exclusions.py``, each with
  its reason; they are deselected and listed in the terminal summary.
* Any *runtime* skip is turned into a failure (``pytest_runtest_makereport`` below): a
  skip would otherwise hide a missing fixture or capability.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from exclusions import excluded_reason  # noqa: E402

ROLE = os.environ.get("VGI_CONFORMANCE_ROLE", "server")
if ROLE not in ("server", "client"):
    raise pytest.UsageError(f"VGI_CONFORMANCE_ROLE must be 'server' or 'client', not {ROLE!r}")
TRANSPORTS = [t for t in os.environ.get("VGI_TRANSPORTS", "pipe").split(",") if t]
_KNOWN = {
    "server": {"pipe", "subprocess", "unix", "tcp", "shm", "http"},
    "client": {"pipe", "unix", "tcp", "shm", "http"},
}
#: Size of the shared-memory segment of the ``shm`` transport (both roles).
SHM_SIZE = 64 * 1024 * 1024
for _t in TRANSPORTS:
    if _t not in _KNOWN[ROLE]:
        raise pytest.UsageError(f"transport {_t!r} is not one of {sorted(_KNOWN[ROLE])} for role {ROLE}")

ConnFactory = Callable[..., contextlib.AbstractContextManager[Any]]


def _rust_worker() -> list[str]:
    worker = os.environ.get("VGI_RUST_WORKER")
    if not worker or not os.access(worker, os.X_OK):
        pytest.fail(f"VGI_RUST_WORKER={worker!r} must name the built vgi-rpc-conformance-worker")
    return [worker]


def _python_worker() -> list[str]:
    """The reference worker from this interpreter's venv, with reflection hosted."""
    exe = Path(sys.executable).parent / "vgi-rpc-conformance"
    return [str(exe)]


def _peer() -> list[str]:
    """The server under test's argv (without transport flags)."""
    return _rust_worker() if ROLE == "server" else _python_worker()


def _peer_flags() -> list[str]:
    # The reference hosts vgi_rpc.Reflection.v1 only with --describe; ours always does
    # and accepts the flag.
    return ["--describe"]


def _driver_class() -> type:
    """The reference's ``ClientDriver`` with a buffered control channel.

    The shipped shim spawns the driver with ``bufsize=0``, so every ``readline`` of a
    response reads its pipe one byte per system call: a 200 KB batch costs ~0.4 s and the
    large-data tests hit the suite's 5 s timeout. Only the Python end's buffering changes;
    the lockstep protocol is unaffected (the shim flushes every request).
    """
    from vgi_rpc.conformance.client_driver import ClientDriver

    class BufferedClientDriver(ClientDriver):
        def spawn(self) -> subprocess.Popen[bytes]:
            env = {**os.environ, **self.env} if self.env is not None else None
            return subprocess.Popen(
                list(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=self.cwd
            )

    return BufferedClientDriver


def _driver_command() -> list[str]:
    raw = os.environ.get("VGI_CLIENT_DRIVER")
    if not raw:
        pytest.fail("VGI_CLIENT_DRIVER must name the built vgi-rpc-client-driver")
    return shlex.split(raw)


# ---------------------------------------------------------------------------
# Session workers (unix / tcp / shared subprocess)
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _ready_worker(cmd: list[str], prefix: str, timeout: float = 20.0) -> Iterator[str]:
    """Spawn a socket worker and yield what follows ``prefix`` on its readiness line.

    A worker that exits (e.g. refuses an unknown flag) or stays silent fails the fixture
    with its stderr, so an unsupported transport is a visible error.
    """
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
    lines: queue.Queue[bytes] = queue.Queue(maxsize=1)
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        try:
            line = lines.get(timeout=timeout).decode("utf-8", "replace").strip()
        except queue.Empty:
            line = ""
        if not line.startswith(prefix):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            stderr.seek(0)
            tail = stderr.read()[-4000:].decode("utf-8", "replace")
            pytest.fail(
                f"worker {cmd!r} did not report {prefix}...: got {line!r}, rc={proc.poll()!r}\n{tail}",
                pytrace=False,
            )
        yield line[len(prefix) :]
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()


def _short_socket_path(tag: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"vgi-{tag}-", suffix=".sock", dir="/tmp")
    os.close(fd)
    os.unlink(path)
    return path


def _wait_connectable(family: int, address: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect(address)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            sock.close()


@pytest.fixture(scope="session")
def conformance_unix_path() -> Iterator[str]:
    path = _short_socket_path(ROLE)
    with _ready_worker([*_peer(), "--unix", path, *_peer_flags()], "UNIX:") as reported:
        assert reported == path, f"worker reported UNIX:{reported}, expected {path}"
        _wait_connectable(socket.AF_UNIX, path)
        yield path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@pytest.fixture(scope="session")
def conformance_tcp_addr() -> Iterator[tuple[str, int]]:
    with _ready_worker([*_peer(), "--tcp", "127.0.0.1:0", *_peer_flags()], "TCP:") as reported:
        host, _, port = reported.rpartition(":")
        addr = (host, int(port))
        _wait_connectable(socket.AF_INET, addr)
        yield addr


@pytest.fixture(scope="session")
def conformance_subprocess() -> Iterator[Any]:
    """One long-lived worker shared by every ``subprocess`` test (connection reuse)."""
    from vgi_rpc.rpc import SubprocessTransport

    transport = SubprocessTransport([*_rust_worker(), "--pipe"])
    yield transport
    transport.close()


# ---------------------------------------------------------------------------
# HTTP workers
# ---------------------------------------------------------------------------

_REF_HTTP_WORKER = str(Path(__file__).parent / "ref_http_worker.py")


def _http_worker_cmd(variant: list[str]) -> list[str]:
    """The HTTP worker under test with ``variant``'s flags (our flag names).

    Server role: OUR worker, ``--http 0 --describe`` plus the variant (sticky sessions on
    unless ``--no-sticky``, as the reference's conformance worker). Client role: the
    reference; ``vgi-rpc-conformance`` for ``--access-log``, the in-tree
    ``ref_http_worker.py`` for everything else (sticky sessions, caps, compression), which
    its CLI lacks.
    """
    if ROLE == "server":
        return [*_rust_worker(), "--http", "0", "--describe", *variant]
    if variant and variant[0] == "--access-log":
        return [*_python_worker(), "--http", "0", "--describe", *variant]
    return [sys.executable, _REF_HTTP_WORKER, *variant]


@contextlib.contextmanager
def _http_worker(variant: list[str]) -> Iterator[int]:
    with _ready_worker(_http_worker_cmd(variant), "PORT:") as reported:
        port = int(reported)
        _wait_connectable(socket.AF_INET, ("127.0.0.1", port))
        yield port


@pytest.fixture(scope="session")
def conformance_http_port() -> Iterator[int]:
    with _http_worker([]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_strict_cap_port() -> Iterator[int]:
    """A 1 MiB response cap (the reference's strict worker default)."""
    with _http_worker(["--max-response-bytes", "1048576"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_no_compression_port() -> Iterator[int]:
    """Response compression off (``VGI-Supported-Encodings`` present and empty)."""
    with _http_worker(["--no-compression"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_small_request_cap_port() -> Iterator[int]:
    """``max_request_bytes`` 4096 (the suite wants 512..64 KiB)."""
    with _http_worker(["--max-request-bytes", "4096"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_access_log() -> Iterator[tuple[int, Path]]:
    """A worker writing its access log to a fresh file: ``(port, path)``."""
    with tempfile.TemporaryDirectory(prefix="vgi-http-log-") as tmp:
        path = Path(tmp) / "access.jsonl"
        with _http_worker(["--access-log", str(path)]) as port:
            yield port, path


@pytest.fixture(scope="session")
def conformance_http_cors_port(conformance_fake_storage: str) -> Iterator[int]:
    """CORS allowed for the suite's origin, storage on (the group's own fixture contract:
    the conditional capability headers must be advertised for their exposure to be
    checked)."""
    with _http_worker(["--cors-origin", "https://conformance.example", "--fake-storage", conformance_fake_storage]) as port:
        yield port


# External storage over HTTP: the reference's storage fixtures (tests/conftest.py), with
# the flags of its serve_conformance_http*.py workers. Both roles take the same flags: ours
# in server role, ref_http_worker.py in client role.


@pytest.fixture(scope="session")
def conformance_http_with_storage_port(conformance_fake_storage: str) -> Iterator[int]:
    """Storage on: 4 KiB threshold, upload URLs, max_request_bytes = the threshold."""
    with _http_worker(["--fake-storage", conformance_fake_storage]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_with_zstd_storage_port(conformance_fake_storage: str) -> Iterator[int]:
    """The same with objects stored zstd-compressed."""
    with _http_worker(["--fake-storage", conformance_fake_storage, "--compression", "zstd"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_externalized_cap_port(conformance_fake_storage: str) -> Iterator[int]:
    """A 64 KiB external cap that bites, under a generous 8 MiB body cap."""
    flags = [
        "--fake-storage", conformance_fake_storage,
        "--max-externalized-response-bytes", str(64 * 1024),
        "--max-response-bytes", str(8 * 1024 * 1024),
    ]
    with _http_worker(flags) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_external_security_port(conformance_fake_storage: str) -> Iterator[int]:
    """Fetch caps of 4 KiB encoded / 8 KiB decoded; 127.0.0.1 only (no localhost hop)."""
    flags = [
        "--fake-storage", conformance_fake_storage,
        "--max-request-bytes", "1048576",
        "--max-fetch-bytes", "4096",
        "--max-decompressed-fetch-bytes", "8192",
        "--reject-localhost-redirects",
    ]
    with _http_worker(flags) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_cold_call_cache_port() -> Iterator[int]:
    """Every continuation must open the echoed call token.

    OUR server keeps no call-token cache, so its plain worker qualifies; the reference
    needs its cache turned off.
    """
    variant = [] if ROLE == "server" else ["--no-call-state-cache"]
    with _http_worker(variant) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_identity_port() -> Iterator[int]:
    """``vgi_rpc.Identity.v2`` with both hooks (IDENTITY_CONFORMANCE_FIXTURE.md §1)."""
    with _http_worker(["--identity", "both"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_identity_introspect_only_port() -> Iterator[int]:
    """The resolve hook only: ``issue_grant`` absent and the hash narrowed."""
    with _http_worker(["--identity", "introspect-only"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_grant_port() -> Iterator[int]:
    """Sealed grants with the fixture keys, plus ``conformance.Whoami.v1`` (§10)."""
    with _http_worker(["--identity", "grants"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_auth_port() -> Iterator[int]:
    """Every RPC refused 401 (reason from ``X-Conformance-Auth-Reason``); health open."""
    with _http_worker(["--reject-all-auth"]) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_auth_reason_port(conformance_http_auth_port: int) -> int:
    """The same reject-all worker: it honours the requested reason."""
    return conformance_http_auth_port


@pytest.fixture(scope="session")
def conformance_http_serve_start_fail_once_port() -> Iterator[int]:
    """The first serve-start notification fails (500), its retry succeeds."""
    with _http_worker(["--fail-serve-start-once"]) as port:
        yield port


#: The AEAD key the sticky peer pair shares (the reference fixture's): the peer's
#: rejection must come from the server_id comparison, not from a failed decrypt.
_STICKY_PEER_TOKEN_KEY = "5f" * 32


@pytest.fixture(scope="class")
def conformance_http_sticky_short_ttl_port() -> Iterator[int]:
    """A sticky worker with a 1 s default session TTL (docs/sticky-sessions-spec.md §9.1)."""
    with _http_worker(["--sticky-ttl", "1"]) as port:
        yield port


@pytest.fixture(scope="class")
def conformance_http_sticky_peer_ports() -> Iterator[tuple[int, int]]:
    """Two sticky workers sharing one token key, each with its own server_id."""
    with (
        _http_worker(["--token-key", _STICKY_PEER_TOKEN_KEY]) as port_a,
        _http_worker(["--token-key", _STICKY_PEER_TOKEN_KEY]) as port_b,
    ):
        yield port_a, port_b


@pytest.fixture(scope="class")
def conformance_http_sticky_auth_port() -> Iterator[int]:
    """A sticky worker whose caller is ``X-Conformance-Principal`` (anonymous without it)."""
    with _http_worker(["--sticky-auth"]) as port:
        yield port


@pytest.fixture(scope="session")
def proof_worker_factory() -> Any:
    """Spawns a proxy-proof worker per configuration (``docs/proxy-proof-spec.md`` §12).

    The same flags on both ends (the reference's ``serve_conformance_http_proof.py``
    surface): ours in server role, ``ref_http_worker.py`` in client role.
    """
    from vgi_rpc.conformance.proof_harness import ProofWorker, ProofWorkerConfig

    @contextlib.contextmanager
    def spawn(config: ProofWorkerConfig) -> Iterator[ProofWorker]:
        flags = [
            "--proof-mode", config.mode,
            "--proof-origin-id", config.origin_id,
            "--proof-secrets", config.secrets,
            "--proof-skew", str(config.skew_seconds),
        ]
        if not config.replay_cache:
            flags.append("--proof-no-replay-cache")
        with _http_worker(flags) as port:
            yield ProofWorker(port=port, prefix="", config=config)

    return spawn


@pytest.fixture(scope="session", autouse=True)
def _http_overrides() -> Iterator[None]:
    """Client role with ``http``: the suite's HTTP entry points use OUR client."""
    if ROLE != "client" or "http" not in TRANSPORTS:
        yield
        return
    import vgi_rpc.http
    from vgi_rpc.conformance import ConformanceService

    saved = {
        name: getattr(vgi_rpc.http, name)
        for name in ("http_connect", "http_capabilities", "request_upload_urls")
    }
    _driver_class()(_driver_command(), service=ConformanceService).install_http_overrides()
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(vgi_rpc.http, name, value)


# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------


class _ShmTransport:
    """A worker subprocess's pipes plus a shared-memory segment the Python client owns.

    The reference client routes batches through any transport with a ``shm`` attribute
    (``vgi-rpc-test --shm`` wraps its subprocess the same way): it names the segment on
    every request, sends large stream inputs through it and resolves pointer answers.
    """

    def __init__(self, argv: list[str]) -> None:
        from vgi_rpc.rpc import SubprocessTransport
        from vgi_rpc.shm import ShmSegment

        self._inner = SubprocessTransport(argv)
        self.shm = ShmSegment.create(SHM_SIZE)

    @property
    def reader(self) -> Any:
        return self._inner.reader

    @property
    def writer(self) -> Any:
        return self._inner.writer

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()
            with contextlib.suppress(BufferError):
                self.shm.close()


def _python_client(
    request: pytest.FixtureRequest, transport: str, protocol: type, on_log: Any
) -> contextlib.AbstractContextManager[Any]:
    """The reference Python client on ``transport`` (server role)."""
    from vgi_rpc.rpc import SubprocessTransport, _RpcProxy, tcp_connect, unix_connect

    if transport == "shm":

        @contextlib.contextmanager
        def _shm() -> Iterator[Any]:
            conn = _ShmTransport([*_rust_worker(), "--pipe"])
            try:
                yield _RpcProxy(protocol, conn, on_log)
            finally:
                conn.close()

        return _shm()
    if transport == "pipe":

        @contextlib.contextmanager
        def _pipe() -> Iterator[Any]:
            conn = SubprocessTransport([*_rust_worker(), "--pipe"])
            try:
                yield _RpcProxy(protocol, conn, on_log)
            finally:
                conn.close()

        return _pipe()
    if transport == "subprocess":
        shared = request.getfixturevalue("conformance_subprocess")

        @contextlib.contextmanager
        def _shared() -> Iterator[Any]:
            yield _RpcProxy(protocol, shared, on_log)

        return _shared()
    if transport == "unix":
        return unix_connect(protocol, request.getfixturevalue("conformance_unix_path"), on_log=on_log)
    if transport == "http":
        from vgi_rpc.http import http_connect

        port = request.getfixturevalue("conformance_http_port")
        return http_connect(protocol, f"http://127.0.0.1:{port}", on_log=on_log)
    host, port = request.getfixturevalue("conformance_tcp_addr")
    return tcp_connect(protocol, host, port, on_log=on_log)


def _driver_target(request: pytest.FixtureRequest, transport: str) -> tuple[str, Any]:
    """The driver's ``connect`` transport and target for ``transport`` (client role)."""
    if transport == "pipe":
        return "stdio", [*_python_worker(), "--pipe", *_peer_flags()]
    if transport == "shm":
        return "shm", [*_python_worker(), "--pipe", *_peer_flags()]
    if transport == "unix":
        return "unix", request.getfixturevalue("conformance_unix_path")
    if transport == "http":
        return "http", f"http://127.0.0.1:{request.getfixturevalue('conformance_http_port')}"
    host, port = request.getfixturevalue("conformance_tcp_addr")
    return "tcp", f"{host}:{port}"


def _driver_client(
    request: pytest.FixtureRequest, transport: str, protocol: type, on_log: Any
) -> contextlib.AbstractContextManager[Any]:
    """OUR client through the driver on ``transport`` (client role)."""
    kind, target = _driver_target(request, transport)
    driver = _driver_class()(_driver_command(), service=protocol)

    shm_size = SHM_SIZE if kind == "shm" else None

    @contextlib.contextmanager
    def _conn() -> Iterator[Any]:
        proxy = driver.connect(kind, target, on_log, shm_size=shm_size)
        try:
            yield proxy
        finally:
            proxy.close()

    return _conn()


def _connect(request: pytest.FixtureRequest, transport: str, protocol: type, on_log: Any) -> Any:
    if ROLE == "server":
        return _python_client(request, transport, protocol, on_log)
    return _driver_client(request, transport, protocol, on_log)


@pytest.fixture(params=TRANSPORTS)
def conformance_conn(request: pytest.FixtureRequest) -> ConnFactory:
    from vgi_rpc.conformance import ConformanceService

    transport = str(request.param)

    def factory(on_log: Any = None) -> contextlib.AbstractContextManager[Any]:
        return _connect(request, transport, ConformanceService, on_log)

    return factory


@pytest.fixture(params=[t for t in TRANSPORTS if ROLE == "server" and t != "http"] or ["n/a"])
def conformance_raw_conn(request: pytest.FixtureRequest) -> ConnFactory:
    """Persistent byte-stream connections of the Python client (raw-wire tests)."""
    from vgi_rpc.conformance import ConformanceService

    transport = str(request.param)
    if ROLE != "server":
        pytest.fail("raw-wire tests drive a server with the Python client; excluded in client role")

    def factory(on_log: Any = None) -> contextlib.AbstractContextManager[Any]:
        return _python_client(request, transport, ConformanceService, on_log)

    return factory


@pytest.fixture
def conformance_protocol_connector(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``connector(transport, protocol, on_log)``: a proxy for any hosted protocol."""

    def connect(transport: str, protocol: type, on_log: Any = None) -> contextlib.AbstractContextManager[Any]:
        return _connect(request, transport, protocol, on_log)

    return connect


@pytest.fixture(params=TRANSPORTS)
def conformance_describe(request: pytest.FixtureRequest) -> Any:
    """The worker's description, obtained over the wire by the client under test."""
    from vgi_rpc.conformance import ConformanceService

    transport = str(request.param)
    if ROLE == "client":
        with _driver_client(request, transport, ConformanceService, None) as proxy:
            return proxy.describe()
    from vgi_rpc.introspect import introspect
    from vgi_rpc.rpc import SubprocessTransport, TcpTransport, UnixTransport

    if transport == "subprocess":
        return introspect(request.getfixturevalue("conformance_subprocess"))
    if transport == "http":
        from vgi_rpc.http import http_introspect

        return http_introspect(base_url=f"http://127.0.0.1:{request.getfixturevalue('conformance_http_port')}")
    if transport == "pipe":
        conn = SubprocessTransport([*_rust_worker(), "--pipe"])
    elif transport == "shm":
        conn = _ShmTransport([*_rust_worker(), "--pipe"])
    elif transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(request.getfixturevalue("conformance_unix_path"))
        conn = UnixTransport(sock)
    else:
        conn = TcpTransport(socket.create_connection(request.getfixturevalue("conformance_tcp_addr")))
    try:
        return introspect(conn)
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# External storage on byte streams
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_fake_storage() -> Iterator[str]:
    """The reference's fake object storage, in this process; yields its base URL."""
    from vgi_rpc.conformance.fake_storage import serve_in_thread

    base_url, shutdown = serve_in_thread()
    try:
        yield base_url
    finally:
        shutdown()


def _storage_object_count(base_url: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/_stats", timeout=5.0) as answer:  # noqa: S310 (loopback)
        return int(json.load(answer)["object_count"])


@pytest.fixture(scope="session")
def conformance_bytestream_external_target(conformance_fake_storage: str) -> Iterator[Any]:
    """An externalizing pipe connection, both ends wired to the fake storage.

    The server externalizes every data batch (threshold one byte) into
    ``conformance_fake_storage``; the client resolves the pointers. Server role: the
    Python client (with the reference's storage config, as its own runner wires it)
    against OUR worker ``--pipe --fake-storage URL --externalize-threshold 1``. Client
    role: OUR client through the driver (``connect`` with ``external: true``) against the
    reference worker with the same flags, which externalizes headers too.
    """
    from vgi_rpc.conformance import ConformanceService
    from vgi_rpc.conformance._external_bytestream_pytest import ByteStreamExternalTarget
    from vgi_rpc.conformance.fake_storage import FakeStorageBackend
    from vgi_rpc.external import ExternalLocationConfig

    flags = ["--pipe", "--fake-storage", conformance_fake_storage, "--externalize-threshold", "1"]
    config = ExternalLocationConfig(
        storage=FakeStorageBackend(conformance_fake_storage),
        externalize_threshold_bytes=1,
        url_validator=None,
    )

    def connect(on_log: Any = None) -> contextlib.AbstractContextManager[Any]:
        if ROLE == "server":
            from vgi_rpc.rpc import SubprocessTransport, _RpcProxy

            @contextlib.contextmanager
            def _python() -> Iterator[Any]:
                conn = SubprocessTransport([*_rust_worker(), *flags])
                try:
                    yield _RpcProxy(ConformanceService, conn, on_log, external_config=config)
                finally:
                    conn.close()

            return _python()
        driver = _driver_class()(_driver_command(), service=ConformanceService)

        @contextlib.contextmanager
        def _driven() -> Iterator[Any]:
            proxy = driver.connect(
                "stdio", [*_python_worker(), *flags, *_peer_flags()], on_log, external_config=config
            )
            try:
                yield proxy
            finally:
                proxy.close()

        return _driven()

    try:
        yield ByteStreamExternalTarget(
            name=f"vgi-rpc-rs-{ROLE}-pipe",
            connect=connect,
            uploaded_objects=lambda: _storage_object_count(conformance_fake_storage),
        )
    finally:
        config.fetch_config.close()


@pytest.fixture
def conformance_resource_soak_target() -> Iterator[Any]:
    """A dedicated worker of ours on a Unix socket for the shared resource soak (server role).

    Each case gets a fresh, otherwise idle process; the soak samples its RSS, descriptors,
    threads and children between epochs while the Python client churns connections.
    """
    from vgi_rpc.conformance import ConformanceService
    from vgi_rpc.conformance._resource_soak_pytest import ResourceSoakTarget
    from vgi_rpc.rpc import unix_connect

    if ROLE != "server":
        pytest.fail("the resource soak measures a server of ours; excluded in client role")
    path = _short_socket_path("soak")
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [*_rust_worker(), "--unix", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
    )
    try:
        line = proc.stdout.readline().decode("utf-8", "replace").strip()  # type: ignore[union-attr]
        if line != f"UNIX:{path}":
            stderr.seek(0)
            pytest.fail(f"soak worker did not report UNIX:{path}: {line!r}\n{stderr.read()[-2000:]!r}")
        _wait_connectable(socket.AF_UNIX, path)
        yield ResourceSoakTarget(
            name="vgi-rpc-rs-unix",
            pid=proc.pid,
            connect=lambda: unix_connect(ConformanceService, path, on_log=None),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# ---------------------------------------------------------------------------
# Exclusions and skip policy
# ---------------------------------------------------------------------------

_DESELECTED: list[tuple[str, str]] = []
#: The parametrised fixtures whose value names the transport a test ran on.
_TRANSPORT_FIXTURES = ("conformance_conn", "conformance_raw_conn", "conformance_describe")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        reason = excluded_reason(ROLE, item)
        if reason is None:
            keep.append(item)
        else:
            dropped.append(item)
            _DESELECTED.append((item.nodeid, reason))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist the controller collects nothing itself: hand it the list.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["vgi_deselected"] = list(_DESELECTED)


def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: take the exclusion list from the first worker that reports."""
    deselected = getattr(node, "workeroutput", {}).get("vgi_deselected")
    if deselected and not _DESELECTED:
        _DESELECTED.extend((nodeid, reason) for nodeid, reason in deselected)


def _transport_of(item: pytest.Item) -> str:
    if "::TestResourceSoak::" in item.nodeid:
        return "unix-soak"  # its own dedicated worker on a Unix socket
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in _TRANSPORT_FIXTURES:
        if name in params:
            return str(params[name])
    return "-"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    report.user_properties.append(("transport", _transport_of(item)))
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"unexpected skip: {reason} -- add the test to tests/python/conformance/exclusions.py "
            "with a justification, or make it pass"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tr = terminalreporter
    tr.section(f"vgi-rpc conformance lane: role={ROLE} transports={','.join(TRANSPORTS)}")
    by_reason: dict[str, list[str]] = {}
    for nodeid, reason in _DESELECTED:
        by_reason.setdefault(reason, []).append(nodeid)
    tr.write_line(f"excluded (deselected, listed by reason in exclusions.py): {len(_DESELECTED)}")
    for reason, ids in sorted(by_reason.items()):
        tr.write_line(f"  {len(ids):4d}  {reason}")
    # One outcome per test: a failed setup or teardown counts as the test's failure.
    outcomes: dict[str, tuple[str, str]] = {}
    for key in ("passed", "failed", "error", "skipped"):
        for report in tr.stats.get(key, []):
            nodeid = getattr(report, "nodeid", "")
            if not nodeid:
                continue
            transport = dict(getattr(report, "user_properties", [])).get("transport", "-")
            state = "failed" if key in ("failed", "error") else key
            previous = outcomes.get(nodeid)
            if previous is None or state == "failed":
                outcomes[nodeid] = (transport, state)
    table: dict[str, dict[str, int]] = {}
    for transport, state in outcomes.values():
        row = table.setdefault(transport, {"passed": 0, "failed": 0, "skipped": 0})
        row[state] += 1
    for transport in sorted(table):
        row = table[transport]
        tr.write_line(
            f"transport {transport:<10} passed {row['passed']:4d}  failed {row['failed']:4d}  "
            f"skipped {row['skipped']:4d}"
        )


# ---------------------------------------------------------------------------
# Transport kind (server role)
# ---------------------------------------------------------------------------


@pytest.fixture
def conformance_transport_kind_probes() -> tuple[tuple[str, Callable[[], str]], ...]:
    """The Python client asks OUR worker, on each transport, what kind its call sees.

    Each probe starts the worker with ``--kind-probe`` (hosting the versionless
    ``_KindProbe`` protocol the reference's own fixture declares) on one transport and
    calls ``report_transport_kind`` once. Client role excludes the test: it checks what a
    server reports, and there the server is the reference.
    """
    from typing import Protocol

    from vgi_rpc.http import http_connect
    from vgi_rpc.rpc import SubprocessTransport, _RpcProxy, tcp_connect, unix_connect

    if ROLE != "server":
        pytest.fail("the transport-kind probes test our server; excluded in client role")

    class _KindProbe(Protocol):
        def report_transport_kind(self) -> str: ...

    worker = [*_rust_worker(), "--kind-probe"]

    def pipe() -> str:
        conn = SubprocessTransport([*worker, "--pipe"])
        try:
            return str(_RpcProxy(_KindProbe, conn, None).report_transport_kind())
        finally:
            conn.close()

    def unix() -> str:
        path = _short_socket_path("kind")
        try:
            with _ready_worker([*worker, "--unix", path], "UNIX:") as reported:
                with unix_connect(_KindProbe, reported) as proxy:
                    return str(proxy.report_transport_kind())
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def tcp() -> str:
        with _ready_worker([*worker, "--tcp", "127.0.0.1:0"], "TCP:") as reported:
            host, _, port = reported.rpartition(":")
            with tcp_connect(_KindProbe, host, int(port)) as proxy:
                return str(proxy.report_transport_kind())

    def http() -> str:
        with _ready_worker([*worker, "--http", "0"], "PORT:") as reported:
            with http_connect(_KindProbe, f"http://127.0.0.1:{int(reported)}") as proxy:
                return str(proxy.report_transport_kind())

    return (("pipe", pipe), ("http", http), ("tcp", tcp), ("unix", unix))

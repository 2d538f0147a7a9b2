"""The reference client (vgi-rpc 0.52.2) with the OpenTelemetry SDK active: runs the
telemetry scenario against a worker command, inside one client span, and prints that
span's ids as JSON (``{"trace_id": hex, "span_id": hex}``).

Usage: ``python py_otel_client.py WORKER-COMMAND...``. The scenario is the one the
comparison test expects: a unary call, a producer, an exchange, a failing call and a
cancelled stream, in that order, on one connection.
"""

from __future__ import annotations

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from vgi_rpc.conformance._protocol import ConformanceService
from vgi_rpc.rpc import AnnotatedBatch, RpcError, connect


def scenario(proxy: ConformanceService) -> None:
    assert proxy.echo_string(value="hi") == "hi"
    assert len(list(proxy.produce_n(count=3))) == 3
    with proxy.exchange_scale(factor=2.0) as session:
        out = session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]}))
        assert out.batch.num_rows == 2
    try:
        proxy.raise_value_error(message="boom")
    except RpcError:
        pass
    else:
        raise AssertionError("raise_value_error did not fail")
    session = proxy.cancellable_producer()
    it = iter(session)
    next(it)
    session.cancel()


def main() -> None:
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("py-otel-client")
    with tracer.start_as_current_span("py-client-root") as root:
        with connect(ConformanceService, sys.argv[1:]) as proxy:
            scenario(proxy)
        context = root.get_span_context()
    print(json.dumps({"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}))


if __name__ == "__main__":
    main()

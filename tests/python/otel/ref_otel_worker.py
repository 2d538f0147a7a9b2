"""The reference conformance worker (vgi-rpc 0.52.2) on stdin/stdout, instrumented with
``vgi_rpc.otel.instrument_server`` and exporting through the OpenTelemetry SDK's
OTLP/HTTP exporters (endpoint from ``OTEL_EXPORTER_OTLP_ENDPOINT``).

The comparison tests run the same calls against this worker and ours and check that
the two exports agree; the propagation test checks that its span is a child of our
client's. Telemetry is flushed when stdin closes.
"""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from vgi_rpc.conformance._impl import ConformanceServiceImpl
from vgi_rpc.conformance._protocol import ConformanceService
from vgi_rpc.conformance.secondary import conformance_extra_protocols
from vgi_rpc.otel import OtelConfig, instrument_server
from vgi_rpc.rpc import RpcServer, serve_stdio


def main() -> None:
    resource = Resource.create({"service.name": "vgi-rpc-reference-worker"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3_600_000)],
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    server = RpcServer(
        ConformanceService,
        ConformanceServiceImpl(),
        extra_protocols=conformance_extra_protocols(),
    )
    instrument_server(server, OtelConfig(tracer_provider=tracer_provider, meter_provider=meter_provider))
    try:
        serve_stdio(server)
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


if __name__ == "__main__":
    main()

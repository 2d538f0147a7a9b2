//! An OTLP/HTTP (protobuf) export set-up for binaries (feature `otel-otlp`): the
//! OpenTelemetry SDK's tracer and meter providers, installed globally, exporting in
//! batches from their own threads so that no call waits on the collector.
//!
//! The calls' telemetry made by the returned guard ([`OtlpGuard::server_telemetry`],
//! [`OtlpGuard::client_telemetry`]) skips the tracer: its spans go to the exporter's
//! thread as `SpanData`, a batch at a time, because making each through a tracer and
//! span processor cost more CPU than a local call's own work. The providers' spans
//! (the application's own) go to that same thread.
//!
//! The endpoint is either given (`--otlp-endpoint URL` in the conformance worker and the
//! examples: the collector's base URL, to which `/v1/traces` and `/v1/metrics` are
//! appended) or taken from the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` variables. The SDK's own variables
//! apply too: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_METRIC_EXPORT_INTERVAL`.

use std::sync::Arc;

use opentelemetry::global;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as SdkSpanExporter};

use super::export::{Forward, SpanExport};
use super::span_out::SpanOut;
use super::{ClientTelemetry, ServerTelemetry, ServerTelemetryConfig};
use crate::{Error, Result};

/// The installed pipeline; dropping it flushes what is still buffered and stops the
/// export threads. Keep it alive for as long as the process makes telemetry.
///
/// The calls' telemetry made by [`OtlpGuard::server_telemetry`] and
/// [`OtlpGuard::client_telemetry`] hands its spans straight to the exporter's thread;
/// [`ServerTelemetry::new`] and [`ClientTelemetry::new`] would go through the global
/// tracer this installs, to the same exporter, at a few µs more CPU per call.
#[derive(Debug)]
pub struct OtlpGuard {
    spans: Arc<SpanExport>,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

impl OtlpGuard {
    fn new(
        span_exporter: impl SdkSpanExporter + 'static,
        metric_exporter: impl PushMetricExporter,
        resource: Resource,
    ) -> Self {
        let spans = SpanExport::start(span_exporter, &resource);
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(Forward(Arc::clone(&spans)))
            .with_resource(resource.clone())
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metric_exporter).build())
            .with_resource(resource)
            .build();
        global::set_tracer_provider(tracer_provider.clone());
        global::set_meter_provider(meter_provider.clone());
        OtlpGuard {
            spans,
            tracer_provider,
            meter_provider,
        }
    }

    /// Server spans and metrics for every call, exported through this pipeline.
    pub fn server_telemetry(&self, config: ServerTelemetryConfig) -> ServerTelemetry {
        let meter = self.meter_provider.meter_with_scope(super::scope());
        ServerTelemetry::with_outputs(config, SpanOut::Export(Arc::clone(&self.spans)), &meter)
    }

    /// Client spans and metrics for every call, exported through this pipeline.
    pub fn client_telemetry(&self) -> ClientTelemetry {
        let meter = self.meter_provider.meter_with_scope(super::scope());
        ClientTelemetry::with_outputs(SpanOut::Export(Arc::clone(&self.spans)), &meter)
    }

    /// Spans dropped so far because the exporter could not keep up.
    pub fn dropped_spans(&self) -> usize {
        self.spans.dropped()
    }

    /// Exports everything buffered now (spans and metric points).
    pub fn flush(&self) {
        super::flush_pending();
        self.spans.flush();
        let _ = self.meter_provider.force_flush();
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        // Shutdown exports what is buffered; a collector that is gone cannot be helped.
        super::flush_pending();
        let _ = self.tracer_provider.shutdown();
        self.spans.shutdown();
        let _ = self.meter_provider.shutdown();
    }
}

/// Whether the environment names an OTLP endpoint (so a binary may turn export on
/// without a flag).
pub fn endpoint_in_env() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Installs OTLP/HTTP export of spans and metrics as the global providers.
/// `endpoint` is the collector's base URL (`None`: from the environment, default
/// `http://localhost:4318`); `service_name` names the resource unless
/// `OTEL_SERVICE_NAME` does.
///
/// Call it before starting an async runtime: the exporter's blocking HTTP client must
/// not be created inside one.
///
/// # Errors
/// [`Error::Config`] when an exporter cannot be built (a malformed endpoint).
pub fn install(endpoint: Option<&str>, service_name: &str) -> Result<OtlpGuard> {
    let base = endpoint.map(|e| e.trim_end_matches('/').to_owned());
    let mut spans = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(base) = &base {
        spans = spans.with_endpoint(format!("{base}/v1/traces"));
    }
    let spans = spans
        .build()
        .map_err(|e| Error::Config(format!("OTLP span exporter: {e}")))?;
    let mut metrics = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(base) = &base {
        metrics = metrics.with_endpoint(format!("{base}/v1/metrics"));
    }
    let metrics = metrics
        .build()
        .map_err(|e| Error::Config(format!("OTLP metric exporter: {e}")))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    Ok(OtlpGuard::new(spans, metrics, resource.build()))
}

/// Installs a pipeline that records everything and exports nothing: spans go through
/// the export thread to an exporter that drops them, metric points are aggregated and
/// never read. For measuring what the instrumentation itself costs per call (the
/// benchmark's OpenTelemetry rows), with the export path of [`install`] minus the
/// network.
pub fn install_discarding() -> OtlpGuard {
    let resource = Resource::builder_empty()
        .with_service_name("vgi-rpc-discarding")
        .build();
    OtlpGuard::new(Discard, Discard, resource)
}

/// An exporter that drops every batch of spans or metric points.
#[derive(Debug)]
struct Discard;

impl SdkSpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

impl PushMetricExporter for Discard {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let _ = metrics;
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

//! The server half: a [`CallHook`] that turns each call's record into the reference's
//! SERVER span and metric points.
//!
//! The span is made from the record after the call (with the call's own start and end
//! times), parented on the `traceparent` the request carried; names, attributes, status
//! rule and metric instruments are those of `vgi_rpc.otel._OtelDispatchHook`.

use std::time::SystemTime;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::context::parse_traceparent;
use crate::ErrorCode;
use crate::server::{CallHook, CallRecord};

/// What [`ServerTelemetry`] records (the reference's `OtelConfig`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerTelemetryConfig {
    /// Make a span per call. Default true.
    pub tracing: bool,
    /// Count calls and record their durations. Default true.
    pub metrics: bool,
    /// Add an `exception` event to the span of every failed call. Default true.
    pub record_exceptions: bool,
    /// Extra attributes on every span (not on metrics).
    pub custom_attributes: Vec<KeyValue>,
}

impl Default for ServerTelemetryConfig {
    fn default() -> Self {
        ServerTelemetryConfig {
            tracing: true,
            metrics: true,
            record_exceptions: true,
            custom_attributes: Vec::new(),
        }
    }
}

impl ServerTelemetryConfig {
    /// Sets [`ServerTelemetryConfig::tracing`].
    pub fn with_tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Sets [`ServerTelemetryConfig::metrics`].
    pub fn with_metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Sets [`ServerTelemetryConfig::record_exceptions`].
    pub fn with_record_exceptions(mut self, on: bool) -> Self {
        self.record_exceptions = on;
        self
    }

    /// Adds an attribute to every span.
    pub fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.custom_attributes.push(attribute);
        self
    }
}

/// Server spans and metrics for every call: attach with
/// [`ServerBuilder::hook`](crate::server::ServerBuilder::hook).
///
/// ```
/// use std::sync::Arc;
/// use vgi_rpc::otel::ServerTelemetry;
///
/// let server = vgi_rpc::Server::builder()
///     .hook(Arc::new(ServerTelemetry::new()))
///     .build()?;
/// # let _ = server;
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub struct ServerTelemetry {
    config: ServerTelemetryConfig,
    tracer: BoxedTracer,
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl std::fmt::Debug for ServerTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTelemetry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for ServerTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerTelemetry {
    /// Spans and metrics through the global tracer and meter providers (installed by the
    /// application, e.g. with [`otlp::install`](super::otlp::install)), default config.
    pub fn new() -> Self {
        Self::with_config(ServerTelemetryConfig::default())
    }

    /// Through the global providers, with `config`.
    pub fn with_config(config: ServerTelemetryConfig) -> Self {
        let tracer = global::tracer_with_scope(super::scope());
        let meter = global::meter_with_scope(super::scope());
        Self::from_parts(config, tracer, &meter)
    }

    /// Through a given tracer and meter.
    pub fn from_parts(config: ServerTelemetryConfig, tracer: BoxedTracer, meter: &Meter) -> Self {
        let requests = meter
            .u64_counter("rpc.server.requests")
            .with_unit("{request}")
            .with_description("Number of RPC requests handled")
            .build();
        let duration = meter
            .f64_histogram("rpc.server.duration")
            .with_unit("s")
            .with_description("Duration of RPC requests")
            .build();
        ServerTelemetry {
            config,
            tracer,
            requests,
            duration,
        }
    }

    fn span(&self, record: &CallRecord<'_>, started: SystemTime) {
        let mut attributes = Vec::with_capacity(16 + self.config.custom_attributes.len());
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.to_owned()),
            KeyValue::new("rpc.method", record.method.to_owned()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
            KeyValue::new("rpc.vgi_rpc.server_id", record.server_id.to_owned()),
        ]);
        let auth = &record.peer.auth;
        if let Some(principal) = auth.principal.as_deref().filter(|p| !p.is_empty()) {
            attributes.push(KeyValue::new(
                "rpc.vgi_rpc.auth.principal",
                principal.to_owned(),
            ));
        }
        if let Some(domain) = auth.domain.as_deref().filter(|d| !d.is_empty()) {
            attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
        }
        attributes.push(KeyValue::new(
            "rpc.vgi_rpc.auth.authenticated",
            if auth.authenticated { "true" } else { "false" },
        ));
        if let Some(addr) = record.peer.remote_addr.as_deref().filter(|a| !a.is_empty()) {
            attributes.push(KeyValue::new("client.address", addr.to_owned()));
        }
        attributes.extend(self.config.custom_attributes.iter().cloned());
        let parent = match record
            .trace
            .and_then(|t| parse_traceparent(t.traceparent, t.tracestate))
        {
            Some(remote) => Context::new().with_remote_span_context(remote),
            None => Context::current(),
        };
        let mut span = self
            .tracer
            .span_builder(format!("vgi_rpc/{}", record.method))
            .with_kind(SpanKind::Server)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        if !span.is_recording() {
            return;
        }
        match record.error {
            Some(error) => {
                // OpenTelemetry's gRPC server conventions: only server-fault codes make
                // the span an error; a caller's mistake leaves the status unset.
                if server_fault(error.code) {
                    span.set_status(Status::error(error.message.clone()));
                }
                span.set_attribute(KeyValue::new(
                    "rpc.vgi_rpc.error_type",
                    error.error_type.clone(),
                ));
                span.set_attribute(KeyValue::new("rpc.vgi_rpc.error_code", error.code.as_str()));
                if self.config.record_exceptions {
                    span.add_event_with_timestamp(
                        "exception",
                        record.finished_at,
                        vec![
                            KeyValue::new("exception.type", error.error_type.clone()),
                            KeyValue::new("exception.message", error.message.clone()),
                            KeyValue::new("exception.stacktrace", error.traceback.clone()),
                            KeyValue::new("exception.escaped", "False"),
                        ],
                    );
                }
            }
            None => span.set_status(Status::Ok),
        }
        let stats = &record.stats;
        span.set_attributes([
            KeyValue::new("rpc.vgi_rpc.input_batches", count(stats.input_batches)),
            KeyValue::new("rpc.vgi_rpc.output_batches", count(stats.output_batches)),
            KeyValue::new("rpc.vgi_rpc.input_rows", count(stats.input_rows)),
            KeyValue::new("rpc.vgi_rpc.output_rows", count(stats.output_rows)),
            KeyValue::new("rpc.vgi_rpc.input_bytes", count(stats.input_bytes)),
            KeyValue::new("rpc.vgi_rpc.output_bytes", count(stats.output_bytes)),
        ]);
        span.end_with_timestamp(record.finished_at);
    }

    fn metrics(&self, record: &CallRecord<'_>) {
        let mut attributes = Vec::with_capacity(6);
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.to_owned()),
            KeyValue::new("rpc.method", record.method.to_owned()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
            KeyValue::new("status", record.status()),
        ]);
        if let Some(domain) = record.peer.auth.domain.as_deref().filter(|d| !d.is_empty()) {
            attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
        }
        self.requests.add(1, &attributes);
        self.duration
            .record(record.duration.as_secs_f64(), &attributes);
    }
}

impl CallHook for ServerTelemetry {
    fn on_call(&self, record: &CallRecord<'_>) {
        if self.config.tracing {
            let started = record
                .finished_at
                .checked_sub(record.duration)
                .unwrap_or(record.finished_at);
            self.span(record, started);
        }
        if self.config.metrics {
            self.metrics(record);
        }
    }
}

/// The codes OpenTelemetry's gRPC conventions count as errors on a server span (the
/// reference's `OTEL_SERVER_ERROR_CODES`).
fn server_fault(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unknown
            | ErrorCode::DeadlineExceeded
            | ErrorCode::Unimplemented
            | ErrorCode::Internal
            | ErrorCode::Unavailable
            | ErrorCode::DataLoss
    )
}

/// A counter as an OpenTelemetry integer attribute (saturating: counts never get near).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

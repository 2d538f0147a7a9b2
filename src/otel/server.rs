//! The server half: a [`CallHook`] that turns each call's record into the reference's
//! SERVER span and metric points.
//!
//! The span is made from the record after the call (with the call's own start and end
//! times), parented on the `traceparent` the request carried; names, attributes, status
//! rule and metric instruments are those of `vgi_rpc.otel._OtelDispatchHook`.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::{Event, Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::context::parse_traceparent;
use super::names::{MethodNames, NameCache};
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
    names: NameCache,
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
            names: NameCache::default(),
        }
    }

    fn span(&self, record: &CallRecord<'_>, names: &MethodNames, started: SystemTime) {
        let auth = &record.peer.auth;
        let mut attributes = Vec::with_capacity(18 + self.config.custom_attributes.len());
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", Arc::clone(&names.service)),
            KeyValue::new("rpc.method", Arc::clone(&names.method)),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
            KeyValue::new("rpc.vgi_rpc.server_id", Arc::clone(&names.server_id)),
        ]);
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
        // Everything is known already: the outcome goes into the builder too, which is
        // cheaper than setting it on the started span.
        let mut events = Vec::new();
        let status = match record.error {
            Some(error) => {
                attributes.push(KeyValue::new(
                    "rpc.vgi_rpc.error_type",
                    error.error_type.clone(),
                ));
                attributes.push(KeyValue::new("rpc.vgi_rpc.error_code", error.code.as_str()));
                if self.config.record_exceptions {
                    events.push(Event::new(
                        "exception",
                        record.finished_at,
                        vec![
                            KeyValue::new("exception.type", error.error_type.clone()),
                            KeyValue::new("exception.message", error.message.clone()),
                            KeyValue::new("exception.stacktrace", error.traceback.clone()),
                            KeyValue::new("exception.escaped", "False"),
                        ],
                        0,
                    ));
                }
                // OpenTelemetry's gRPC server conventions: only server-fault codes make
                // the span an error; a caller's mistake leaves the status unset.
                if server_fault(error.code) {
                    Status::error(error.message.clone())
                } else {
                    Status::Unset
                }
            }
            None => Status::Ok,
        };
        let stats = &record.stats;
        attributes.extend([
            KeyValue::new("rpc.vgi_rpc.input_batches", count(stats.input_batches)),
            KeyValue::new("rpc.vgi_rpc.output_batches", count(stats.output_batches)),
            KeyValue::new("rpc.vgi_rpc.input_rows", count(stats.input_rows)),
            KeyValue::new("rpc.vgi_rpc.output_rows", count(stats.output_rows)),
            KeyValue::new("rpc.vgi_rpc.input_bytes", count(stats.input_bytes)),
            KeyValue::new("rpc.vgi_rpc.output_bytes", count(stats.output_bytes)),
        ]);
        let parent = match record
            .trace
            .and_then(|t| parse_traceparent(t.traceparent, t.tracestate))
        {
            Some(remote) => Context::new().with_remote_span_context(remote),
            None => Context::current(),
        };
        let mut builder = self
            .tracer
            .span_builder(names.span_name.clone())
            .with_kind(SpanKind::Server)
            .with_start_time(started)
            .with_attributes(attributes)
            .with_status(status);
        if !events.is_empty() {
            builder = builder.with_events(events);
        }
        let mut span = builder.start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(record.finished_at);
    }

    fn metrics(&self, record: &CallRecord<'_>, names: &MethodNames) {
        let mut attributes = Vec::with_capacity(6);
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", Arc::clone(&names.service)),
            KeyValue::new("rpc.method", Arc::clone(&names.method)),
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
        let names = self
            .names
            .get(record.protocol, record.method, record.server_id);
        if self.config.tracing {
            let started = record
                .finished_at
                .checked_sub(record.duration)
                .unwrap_or(record.finished_at);
            self.span(record, &names, started);
        }
        if self.config.metrics {
            self.metrics(record, &names);
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

#[cfg(all(test, feature = "otel-otlp"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::server::{CallStats, MethodType, Peer, TraceContext};

    fn record<'a>(peer: &'a Peer, trace: Option<TraceContext<'a>>) -> CallRecord<'a> {
        CallRecord {
            server_id: "abc123",
            protocol: "Bench",
            protocol_hash: "h",
            method: "noop",
            method_type: MethodType::Unary,
            request_id: "r",
            stream_id: None,
            peer,
            request: None,
            stats: CallStats::default(),
            duration: Duration::from_micros(5),
            finished_at: SystemTime::now(),
            error: None,
            cancelled: false,
            http_status: None,
            trace,
        }
    }

    /// Per-call cost of the hook's parts with SDK providers that export nothing:
    /// `cargo test --release --lib otel::server::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let _guard = super::super::otlp::install_discarding();
        let peer = Peer::pipe();
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let trace = Some(TraceContext {
            traceparent: tp,
            tracestate: None,
        });
        for (label, config) in [
            ("spans+metrics", ServerTelemetryConfig::default()),
            (
                "spans",
                ServerTelemetryConfig::default().with_metrics(false),
            ),
            (
                "metrics",
                ServerTelemetryConfig::default().with_tracing(false),
            ),
        ] {
            let hook = ServerTelemetry::with_config(config);
            for with_parent in [false, true] {
                let r = record(&peer, if with_parent { trace } else { None });
                for _ in 0..20_000 {
                    hook.on_call(&r);
                }
                let n = 200_000;
                let start = Instant::now();
                for _ in 0..n {
                    hook.on_call(&r);
                }
                let per = start.elapsed() / n;
                println!("{label} parent={with_parent}: {per:?} per call");
            }
        }
    }
}

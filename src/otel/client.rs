//! The client half: a [`CallObserver`] making a CLIENT span per call and per stream,
//! putting its context into the request's metadata, and counting calls.
//!
//! The reference has no client instrumentation, only the injection of the caller's
//! current span; this follows the server half's names with `client` for `server`: span
//! `vgi_rpc/<method>` of kind CLIENT, `rpc.client.requests` and `rpc.client.duration`.
//! A failed call's span is an error (every code: OpenTelemetry's gRPC client rule) and
//! carries the remote error's type and code.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::trace::{Span, SpanKind, Status, Tracer};
use opentelemetry::{Context, KeyValue};

use super::context::format_traceparent;
use super::deferred::Deferred;
use super::names::{MethodNames, NameCache};
use crate::Error;
use crate::client::{CallObserver, ClientCall, ObservedCall};
use crate::wire::{Metadata, keys};

/// Client spans and metrics for every call: set with
/// [`ConnectOptions::with_observer`](crate::client::ConnectOptions::with_observer).
/// Each span's parent is OpenTelemetry's current context where the call is made.
///
/// ```
/// use std::sync::Arc;
/// use vgi_rpc::client::ConnectOptions;
/// use vgi_rpc::otel::ClientTelemetry;
///
/// let options = ConnectOptions::default().with_observer(Arc::new(ClientTelemetry::new()));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct ClientTelemetry {
    inner: Arc<Instruments>,
}

struct Instruments {
    tracer: BoxedTracer,
    names: NameCache,
    /// Span ends and metric points, recorded off the call path ([`super::deferred`]).
    points: Deferred<Point>,
}

/// One finished call: its span, to be ended at `ended`, and its metric point.
struct Point {
    span: BoxedSpan,
    ended: SystemTime,
    names: Arc<MethodNames>,
    method_type: &'static str,
    failed: bool,
    seconds: f64,
}

impl Point {
    /// Ends the span, records the duration, and returns the counter's attributes.
    fn record(mut self, duration: &Histogram<f64>) -> [KeyValue; 5] {
        self.span.end_with_timestamp(self.ended);
        let attributes = [
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", Arc::clone(&self.names.service)),
            KeyValue::new("rpc.method", Arc::clone(&self.names.method)),
            KeyValue::new("rpc.vgi_rpc.method_type", self.method_type),
            KeyValue::new("status", if self.failed { "error" } else { "ok" }),
        ];
        duration.record(self.seconds, &attributes);
        attributes
    }
}

impl std::fmt::Debug for ClientTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTelemetry").finish_non_exhaustive()
    }
}

impl Default for ClientTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTelemetry {
    /// Through the global tracer and meter providers.
    pub fn new() -> Self {
        let tracer = global::tracer_with_scope(super::scope());
        let meter = global::meter_with_scope(super::scope());
        Self::from_parts(tracer, &meter)
    }

    /// Through a given tracer and meter.
    pub fn from_parts(tracer: BoxedTracer, meter: &Meter) -> Self {
        let requests = meter
            .u64_counter("rpc.client.requests")
            .with_unit("{request}")
            .with_description("Number of RPC requests made")
            .build();
        let duration = meter
            .f64_histogram("rpc.client.duration")
            .with_unit("s")
            .with_description("Duration of RPC requests")
            .build();
        let points = Deferred::new("vgi-rpc-otel-client", move |batch: Vec<Point>| {
            // One counter addition per attribute set and batch (the same sum on the
            // wire); each duration is its own histogram point.
            let mut counts: Vec<([KeyValue; 5], u64)> = Vec::new();
            for point in batch {
                let attributes = point.record(&duration);
                match counts.iter_mut().find(|(set, _)| *set == attributes) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((attributes, 1)),
                }
            }
            for (attributes, n) in counts {
                requests.add(n, &attributes);
            }
        });
        ClientTelemetry {
            inner: Arc::new(Instruments {
                tracer,
                names: NameCache::default(),
                points,
            }),
        }
    }

    /// Hands the metric points of every call made so far to the meter provider now
    /// (see [`ServerTelemetry::flush`](super::ServerTelemetry::flush)).
    pub fn flush(&self) {
        self.inner.points.flush();
    }
}

impl CallObserver for ClientTelemetry {
    fn start(&self, call: &ClientCall<'_>) -> Option<Box<dyn ObservedCall>> {
        let method_type = if call.stream { "stream" } else { "unary" };
        let tracer = &self.inner.tracer;
        let names = self.inner.names.get(call.protocol, call.method, "");
        let span = tracer
            .span_builder(names.span_name.clone())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("rpc.system", "vgi_rpc"),
                KeyValue::new("rpc.service", Arc::clone(&names.service)),
                KeyValue::new("rpc.method", Arc::clone(&names.method)),
                KeyValue::new("rpc.vgi_rpc.method_type", method_type),
            ])
            .start_with_context(tracer, &Context::current());
        let propagate = format_traceparent(span.span_context());
        Some(Box::new(Observed {
            instruments: Arc::clone(&self.inner),
            span,
            propagate,
            started: Instant::now(),
            names,
            method_type,
            failed: false,
        }))
    }
}

/// One observed call: its span, what it propagates, and what its metric points need.
struct Observed {
    instruments: Arc<Instruments>,
    span: BoxedSpan,
    propagate: Option<(String, Option<String>)>,
    started: Instant,
    names: Arc<MethodNames>,
    method_type: &'static str,
    failed: bool,
}

impl ObservedCall for Observed {
    fn inject(&self, metadata: &mut Metadata) {
        if let Some((traceparent, tracestate)) = &self.propagate {
            metadata.insert(keys::TRACEPARENT, traceparent.as_str());
            if let Some(state) = tracestate {
                metadata.insert(keys::TRACESTATE, state.as_str());
            }
        }
    }

    fn failed(&mut self, error: &Error) {
        if self.failed {
            return;
        }
        self.failed = true;
        let remote = error.to_rpc();
        self.span.set_status(Status::error(remote.message.clone()));
        self.span.set_attribute(KeyValue::new(
            "rpc.vgi_rpc.error_type",
            remote.error_type.clone(),
        ));
        self.span.set_attribute(KeyValue::new(
            "rpc.vgi_rpc.error_code",
            remote.code.as_str(),
        ));
        self.span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", remote.error_type),
                KeyValue::new("exception.message", remote.message),
            ],
        );
    }

    fn cancelled(&mut self) {
        self.span
            .set_attribute(KeyValue::new("rpc.vgi_rpc.cancelled", true));
    }

    fn end(mut self: Box<Self>) {
        if !self.failed {
            self.span.set_status(Status::Ok);
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let ended = SystemTime::now();
        let Observed {
            instruments,
            span,
            names,
            method_type,
            failed,
            ..
        } = *self;
        instruments.points.push(Point {
            span,
            ended,
            names,
            method_type,
            failed,
            seconds,
        });
    }
}

#[cfg(all(test, feature = "otel-otlp"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Per-call cost of the observer with SDK providers that export nothing:
    /// `cargo test --release --lib otel::client::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let _guard = super::super::otlp::install_discarding();
        let telemetry = ClientTelemetry::new();
        let call = ClientCall {
            protocol: "Bench",
            method: "noop",
            stream: false,
            endpoint: "pipe",
        };
        let one = || {
            let observed = telemetry.start(&call).unwrap();
            let mut metadata = Metadata::new();
            observed.inject(&mut metadata);
            observed.end();
        };
        for _ in 0..20_000 {
            one();
        }
        telemetry.flush();
        let n = 10_000;
        let (mut on_path, mut off_path) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..20 {
            let start = Instant::now();
            for _ in 0..n {
                one();
            }
            on_path += start.elapsed();
            let start = Instant::now();
            telemetry.flush();
            off_path += start.elapsed();
        }
        println!(
            "client: {:?} per call on the call path, {:?} on the recorder thread",
            on_path / (20 * n),
            off_path / (20 * n)
        );
    }
}

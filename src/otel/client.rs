//! The client half: a [`CallObserver`] making a CLIENT span per call and per stream,
//! putting its context into the request's metadata, and counting calls.
//!
//! The reference has no client instrumentation, only the injection of the caller's
//! current span; this follows the server half's names with `client` for `server`: span
//! `vgi_rpc/<method>` of kind CLIENT, `rpc.client.requests` and `rpc.client.duration`.
//! A failed call's span is an error (every code: OpenTelemetry's gRPC client rule) and
//! carries the remote error's type and code.
//!
//! The call path only decides the span's identity — the parent (OpenTelemetry's current
//! context), a fresh span id (and trace id for a root), whether it is sampled — because
//! that is what the request must carry. The SDK span itself is built after the call,
//! with those ids and the call's own timestamps, on the recorder thread
//! ([`super::deferred`]): building it on the call path cost about 2 µs of CPU per call,
//! a third of a local noop. So the SDK's sampler and id generator are not consulted: a
//! child follows its parent's sampled flag (the SDK's default, parent-based), a root is
//! sampled with [`ClientTelemetry::with_root_sample_ratio`] (default: always), decided
//! from its trace id exactly as the SDK's `TraceIdRatioBased` does.

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::metrics::Meter;
use opentelemetry::trace::{
    Event, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry::{Context, KeyValue};

use super::context::{TRACEPARENT_LEN, new_span_id, new_trace_id, write_traceparent};
use super::deferred::Deferred;
use super::instruments::CallInstruments;
use super::names::{MethodNames, NameCache};
use super::span_out::{Finished, SpanOut};
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
    /// Root spans are sampled when their trace id's low 63 bits fall under this.
    root_bound: u64,
}

struct Instruments {
    names: NameCache,
    /// Spans and metric points, built off the call path ([`super::deferred`]).
    points: Deferred<Point>,
}

/// Why a call failed, as its span shows it.
struct Failure {
    error_type: String,
    code: &'static str,
    message: String,
    at: SystemTime,
}

/// One finished call: everything its span and metric points are made of.
struct Point {
    /// The span to build when sampled (`None`: telemetry suppressed in the caller's
    /// context).
    span: Option<SpanRecord>,
    names: Arc<MethodNames>,
    method_type: &'static str,
    failure: Option<Box<Failure>>,
    started: SystemTime,
    ended: SystemTime,
}

/// A call's span identity, and whether the stream was cancelled.
struct SpanRecord {
    parent: Context,
    context: SpanContext,
    cancelled: bool,
}

impl Point {
    /// The call's span (when sampled), metric attributes and duration in seconds.
    fn finish(self) -> (Option<Finished>, [KeyValue; 5], f64) {
        let common = [
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", Arc::clone(&self.names.service)),
            KeyValue::new("rpc.method", Arc::clone(&self.names.method)),
            KeyValue::new("rpc.vgi_rpc.method_type", self.method_type),
        ];
        let span = self.span.filter(|r| r.context.is_sampled()).map(|record| {
            let times = (self.started, self.ended);
            finished(&self.names, &common, record, times, self.failure.as_deref())
        });
        let [system, service, method, method_type] = common;
        let status = if self.failure.is_some() {
            "error"
        } else {
            "ok"
        };
        let attributes = [
            system,
            service,
            method,
            method_type,
            KeyValue::new("status", status),
        ];
        // Wall-clock times, as the span's: one clock read at each end of the call.
        let seconds = self.ended.duration_since(self.started).unwrap_or_default();
        (span, attributes, seconds.as_secs_f64())
    }
}

/// The span of one call, with the identity its request carried.
fn finished(
    names: &MethodNames,
    common: &[KeyValue; 4],
    record: SpanRecord,
    (start, end): (SystemTime, SystemTime),
    failure: Option<&Failure>,
) -> Finished {
    let mut attributes = Vec::with_capacity(7);
    attributes.extend_from_slice(common);
    if let Some(failure) = failure {
        attributes.push(KeyValue::new(
            "rpc.vgi_rpc.error_type",
            failure.error_type.clone(),
        ));
        attributes.push(KeyValue::new("rpc.vgi_rpc.error_code", failure.code));
    }
    if record.cancelled {
        attributes.push(KeyValue::new("rpc.vgi_rpc.cancelled", true));
    }
    let (status, events) = match failure {
        Some(failure) => (
            Status::error(failure.message.clone()),
            vec![Event::new(
                "exception",
                failure.at,
                vec![
                    KeyValue::new("exception.type", failure.error_type.clone()),
                    KeyValue::new("exception.message", failure.message.clone()),
                ],
                0,
            )],
        ),
        None => (Status::Ok, Vec::new()),
    };
    Finished {
        name: names.span_name.clone(),
        kind: SpanKind::Client,
        parent: record.parent,
        identity: Some(record.context),
        start,
        end,
        attributes,
        events,
        status,
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
        Self::with_outputs(SpanOut::Tracer(tracer), meter)
    }

    /// Spans to `out`, metrics through `meter`.
    pub(super) fn with_outputs(out: SpanOut, meter: &Meter) -> Self {
        let metrics = CallInstruments::new(meter, "client", "made");
        let points = Deferred::new("vgi-rpc-otel-client", move |batch: &mut Vec<Point>| {
            let mut spans = Vec::with_capacity(batch.len());
            metrics.record(batch.drain(..).map(|point| {
                let (span, attributes, seconds) = point.finish();
                spans.extend(span);
                (attributes, seconds)
            }));
            out.record(spans.into_iter());
        });
        ClientTelemetry {
            inner: Arc::new(Instruments {
                names: NameCache::default(),
                points,
            }),
            root_bound: ratio_bound(1.0),
        }
    }

    /// Samples calls without a parent span with probability `ratio` (0 to 1; the default
    /// is 1), decided from the trace id as the SDK's `TraceIdRatioBased` sampler does.
    /// Calls with a parent follow its sampled flag.
    #[must_use]
    pub fn with_root_sample_ratio(mut self, ratio: f64) -> Self {
        self.root_bound = ratio_bound(ratio);
        self
    }

    /// Hands the metric points of every call made so far to the meter provider now
    /// (see [`ServerTelemetry::flush`](super::ServerTelemetry::flush)).
    pub fn flush(&self) {
        self.inner.points.flush();
    }
}

/// The SDK's `TraceIdRatioBased` bound: a root is sampled when the low 63 bits of its
/// trace id's last 8 bytes are below it.
fn ratio_bound(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        return u64::MAX;
    }
    // Truncation is the SDK's own rule.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    bound
}

impl CallObserver for ClientTelemetry {
    fn start(&self, call: &ClientCall<'_>) -> Option<Box<dyn ObservedCall>> {
        let method_type = if call.stream { "stream" } else { "unary" };
        let names = self.inner.names.get(call.protocol, call.method, "");
        let parent = Context::current();
        let span = if parent.is_telemetry_suppressed() {
            None
        } else {
            Some(SpanRecord {
                context: self.identity(&parent),
                parent,
                cancelled: false,
            })
        };
        Some(Box::new(Observed {
            instruments: Arc::clone(&self.inner),
            span,
            started: SystemTime::now(),
            names,
            method_type,
            failure: None,
        }))
    }
}

impl ClientTelemetry {
    /// The span context a call's request carries: a child of `parent`'s span when it has
    /// one (sampled as the parent is), else a new trace sampled by the root ratio. An
    /// unsampled one still travels, so that the servers it reaches do not sample either.
    fn identity(&self, parent: &Context) -> SpanContext {
        let parent_span = parent.span();
        let above = parent_span.span_context();
        let (trace_id, sampled, state) = if above.is_valid() {
            (
                above.trace_id(),
                above.is_sampled(),
                above.trace_state().clone(),
            )
        } else {
            let trace_id = new_trace_id();
            // The SDK's rule: the low 63 bits of the id's last 8 bytes against the bound.
            let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
            let sampled = self.root_bound == u64::MAX || (low >> 1) < self.root_bound;
            (trace_id, sampled, TraceState::default())
        };
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(trace_id, new_span_id(), flags, false, state)
    }
}

/// One observed call: its span's identity and what its metric points need.
struct Observed {
    instruments: Arc<Instruments>,
    span: Option<SpanRecord>,
    started: SystemTime,
    names: Arc<MethodNames>,
    method_type: &'static str,
    failure: Option<Box<Failure>>,
}

impl ObservedCall for Observed {
    fn inject(&self, metadata: &mut Metadata) {
        let Some(record) = &self.span else { return };
        let mut traceparent = [0; TRACEPARENT_LEN];
        metadata.insert(
            keys::TRACEPARENT,
            write_traceparent(&record.context, &mut traceparent),
        );
        let state = record.context.trace_state();
        if *state != TraceState::NONE {
            let header = state.header();
            if !header.is_empty() {
                metadata.insert(keys::TRACESTATE, header);
            }
        }
    }

    fn failed(&mut self, error: &Error) {
        if self.failure.is_some() {
            return;
        }
        let remote = error.to_rpc();
        self.failure = Some(Box::new(Failure {
            error_type: remote.error_type,
            code: remote.code.as_str(),
            message: remote.message,
            at: SystemTime::now(),
        }));
    }

    fn cancelled(&mut self) {
        if let Some(record) = &mut self.span {
            record.cancelled = true;
        }
    }

    fn end(self: Box<Self>) {
        let ended = SystemTime::now();
        let Observed {
            instruments,
            span,
            started,
            names,
            method_type,
            failure,
        } = *self;
        instruments.points.push(Point {
            span,
            names,
            method_type,
            failure,
            started,
            ended,
        });
    }
}

#[cfg(all(test, feature = "otel-otlp"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::deferred::cost_per_call;

    use super::*;
    use crate::otel::parse_traceparent;

    const CALL: ClientCall<'static> = ClientCall {
        protocol: "Bench",
        method: "noop",
        stream: false,
        endpoint: "pipe",
    };

    /// The span context `telemetry` sends for one call made under `parent`.
    fn sent(telemetry: &ClientTelemetry, parent: &Context) -> SpanContext {
        let _attached = parent.clone().attach();
        let observed = telemetry.start(&CALL).unwrap();
        let mut metadata = Metadata::new();
        observed.inject(&mut metadata);
        observed.end();
        let traceparent = metadata.get(keys::TRACEPARENT).unwrap();
        parse_traceparent(traceparent, metadata.get(keys::TRACESTATE)).unwrap()
    }

    #[test]
    fn a_child_keeps_its_parents_trace_and_sampling_and_unsampled_contexts_still_travel() {
        let telemetry = ClientTelemetry::new();
        for sampled in [true, false] {
            let tp = format!(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0{}",
                u8::from(sampled)
            );
            let above = parse_traceparent(&tp, Some("congo=t61rcWkgMzE")).unwrap();
            let context = sent(
                &telemetry,
                &Context::new().with_remote_span_context(above.clone()),
            );
            assert_eq!(context.trace_id(), above.trace_id());
            assert_ne!(context.span_id(), above.span_id(), "a span of its own");
            assert_eq!(context.is_sampled(), sampled);
            assert_eq!(context.trace_state().header(), "congo=t61rcWkgMzE");
        }
    }

    #[test]
    fn roots_are_new_traces_sampled_by_the_root_ratio() {
        let always = ClientTelemetry::new();
        let never = ClientTelemetry::new().with_root_sample_ratio(0.0);
        let half = ClientTelemetry::new().with_root_sample_ratio(0.5);
        let (a, b) = (
            sent(&always, &Context::new()),
            sent(&always, &Context::new()),
        );
        assert!(a.is_sampled() && b.is_sampled());
        assert_ne!(a.trace_id(), b.trace_id());
        assert!(!sent(&never, &Context::new()).is_sampled());
        let sampled = (0..2000)
            .filter(|_| sent(&half, &Context::new()).is_sampled())
            .count();
        assert!((800..1200).contains(&sampled), "{sampled} of 2000");
    }

    /// The same calls make the same exported spans straight to the exporter and
    /// through the SDK's tracer: a root, children of sampled and unsampled parents, a
    /// failed call and a cancelled stream.
    #[test]
    fn spans_straight_to_the_exporter_equal_the_tracers() {
        let ways = super::super::export::testing::BothWays::new();
        let both = [
            ClientTelemetry::from_parts(ways.tracer(), &ways.meter),
            ClientTelemetry::with_outputs(SpanOut::Export(Arc::clone(&ways.export)), &ways.meter),
        ];
        let parent = |sampled: bool| {
            let tp = format!(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0{}",
                u8::from(sampled)
            );
            Context::new().with_remote_span_context(
                parse_traceparent(&tp, Some("congo=t61rcWkgMzE")).unwrap(),
            )
        };
        let stream = ClientCall {
            stream: true,
            ..CALL
        };
        for telemetry in &both {
            for (context, call, outcome) in [
                (Context::new(), CALL, 0),
                (parent(true), CALL, 0),
                (parent(false), CALL, 0),
                (parent(true), CALL, 1),
                (parent(true), stream, 2),
            ] {
                let _attached = context.attach();
                let mut observed = telemetry.start(&call).unwrap();
                match outcome {
                    1 => observed.failed(&crate::RpcError::value_error("boom").into()),
                    2 => observed.cancelled(),
                    _ => {}
                }
                observed.end();
            }
            telemetry.flush();
        }
        let (ours, sdk) = ways.exported();
        assert_eq!(
            ours.len(),
            4,
            "the unsampled child is not exported: {ours:#?}"
        );
        assert_eq!(ours, sdk);
    }

    /// Per-call cost of the observer with SDK providers that export nothing:
    /// `cargo test --release --lib otel::client::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let guard = super::super::otlp::install_discarding();
        let telemetry = guard.client_telemetry();
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
        let (on_path, off_path) = cost_per_call(one, || telemetry.flush());
        println!("client: {on_path:?} per call on the call path, {off_path:?} of CPU off it");
    }
}

//! Turning a finished call into a [`CallRecord`] and handing it to the hooks.
//!
//! The call engine only tracks *what* was called (a [`Target`]) and counts I/O in its
//! [`super::stats::Meter`]; everything else is assembled here, once, after the last
//! response byte — and not at all when the server has no hooks.
//!
//! A request that names no method, or whose bytes could not be read as a request, is not
//! attributable to any call and yields no record; every other request does, including
//! those refused before dispatch (unknown method, bad version, bad parameters).

use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use super::hook::{CallRecord, MethodType, RequestShape, TraceContext};
use super::peer::Peer;
use super::registry::{Binding, ServerInner};
use super::stats::Meter;
use super::{ids, service::MethodKind};
use crate::RpcError;
use crate::wire::{Metadata, keys};
use arrow_schema::SchemaRef;

/// What a call addressed, as far as routing got.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub protocol: &'a str,
    pub protocol_hash: &'a str,
    pub method: Cow<'a, str>,
    pub method_type: MethodType,
}

impl<'a> Target<'a> {
    /// A method of a hosted protocol.
    pub(crate) fn method(binding: &'a Binding, index: usize) -> Self {
        let spec = &binding.spec.methods[index];
        Target {
            protocol: &binding.spec.name,
            protocol_hash: &binding.hash,
            method: Cow::Borrowed(&spec.name),
            method_type: method_type(spec.kind),
        }
    }

    /// A request attributed to `protocol` if hosted, else to the primary protocol.
    pub(crate) fn named(
        inner: &'a ServerInner,
        protocol: &str,
        method: &str,
        stream: bool,
    ) -> Option<Self> {
        let binding = inner.binding(protocol).or_else(|| inner.bindings.first())?;
        // The schema requires a method name; a request without one is not a call.
        (!method.is_empty()).then_some(Target {
            protocol: &binding.spec.name,
            protocol_hash: &binding.hash,
            method: Cow::Owned(method.to_owned()),
            method_type: if stream {
                MethodType::Stream
            } else {
                MethodType::Unary
            },
        })
    }
}

fn method_type(kind: MethodKind) -> MethodType {
    match kind {
        MethodKind::Unary => MethodType::Unary,
        _ => MethodType::Stream,
    }
}

/// The parts of a call the engine knows independently of its outcome.
pub(crate) struct Finished<'a> {
    pub inner: &'a ServerInner,
    pub peer: &'a Peer,
    pub target: Target<'a>,
    pub request_id: &'a str,
    pub request_schema: &'a SchemaRef,
    pub request_rows: usize,
    pub started: Instant,
    /// The stream's correlation id when the transport keeps one across requests (HTTP);
    /// `None` mints one for a stream.
    pub stream_id: Option<&'a str>,
    /// The HTTP status the request was answered with.
    pub http_status: Option<u16>,
    /// The caller's trace context.
    pub trace: Option<&'a TraceHeaders>,
    /// The call's `tracing` span ([`call_span`]), whose outcome fields [`emit`] fills in.
    pub span: &'a tracing::Span,
}

/// A request's W3C trace context, owned: the request's metadata moves into the call, and
/// the record is built after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TraceHeaders {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceHeaders {
    /// From a `traceparent` and optional `tracestate` (header or metadata values).
    pub(crate) fn new(traceparent: &str, tracestate: Option<&str>) -> Self {
        TraceHeaders {
            traceparent: traceparent.to_owned(),
            tracestate: tracestate.map(str::to_owned),
        }
    }

    /// The request metadata's trace context, if it carries one.
    pub(crate) fn from_metadata(metadata: &Metadata) -> Option<Self> {
        let mut trace = Self::default();
        trace.refill(metadata).then_some(trace)
    }

    /// Sets these to the request metadata's trace context, keeping their buffers (a
    /// connection reuses one for all its calls); `false` when it carries none.
    pub(crate) fn refill(&mut self, metadata: &Metadata) -> bool {
        let Some(traceparent) = metadata.get(keys::TRACEPARENT) else {
            return false;
        };
        self.traceparent.clear();
        self.traceparent.push_str(traceparent);
        match metadata.get(keys::TRACESTATE) {
            Some(state) => {
                let kept = self.tracestate.get_or_insert_with(String::new);
                kept.clear();
                kept.push_str(state);
            }
            None => self.tracestate = None,
        }
        true
    }

    fn context(&self) -> TraceContext<'_> {
        TraceContext {
            traceparent: &self.traceparent,
            tracestate: self.tracestate.as_deref(),
        }
    }
}

/// The `tracing` target of the per-call spans ([`call_span`]).
pub(crate) const CALL_TARGET: &str = "vgi_rpc::call";

/// The `tracing` span of one server call, with the attribute names the OpenTelemetry
/// instrumentation uses (`otel.name` / `otel.kind` name the span for
/// `tracing-opentelemetry`). The outcome fields are filled in by [`emit`]. Costs one
/// interest check when no subscriber listens.
pub(crate) fn call_span(server_id: &str, method: &str, request_id: &str) -> tracing::Span {
    tracing::info_span!(
        target: CALL_TARGET,
        "vgi_rpc.call",
        otel.name = %format_args!("vgi_rpc/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "vgi_rpc",
        rpc.service = tracing::field::Empty,
        rpc.method = %method,
        rpc.vgi_rpc.method_type = tracing::field::Empty,
        rpc.vgi_rpc.server_id = %server_id,
        rpc.vgi_rpc.request_id = %request_id,
        rpc.vgi_rpc.stream_id = tracing::field::Empty,
        rpc.vgi_rpc.auth.principal = tracing::field::Empty,
        rpc.vgi_rpc.error_type = tracing::field::Empty,
        rpc.vgi_rpc.error_code = tracing::field::Empty,
        rpc.vgi_rpc.input_batches = tracing::field::Empty,
        rpc.vgi_rpc.output_batches = tracing::field::Empty,
        rpc.vgi_rpc.input_rows = tracing::field::Empty,
        rpc.vgi_rpc.output_rows = tracing::field::Empty,
        rpc.vgi_rpc.input_bytes = tracing::field::Empty,
        rpc.vgi_rpc.output_bytes = tracing::field::Empty,
    )
}

/// Whether anyone listens to [`call_span`]s: the engine then counts I/O for them as it
/// does for hooks.
pub(crate) fn call_spans_enabled() -> bool {
    tracing::enabled!(target: CALL_TARGET, tracing::Level::INFO)
}

/// Fills the outcome fields of a [`call_span`] from `record` (out of line: without a
/// subscriber the span is disabled and the call path skips this code).
#[inline(never)]
fn record_on_span(span: &tracing::Span, record: &CallRecord<'_>) {
    span.record("rpc.service", record.protocol);
    span.record("rpc.vgi_rpc.method_type", record.method_type.as_str());
    if let Some(id) = record.stream_id {
        span.record("rpc.vgi_rpc.stream_id", id);
    }
    if let Some(principal) = record.peer.auth.principal.as_deref() {
        span.record("rpc.vgi_rpc.auth.principal", principal);
    }
    match record.error {
        Some(error) => {
            span.record("rpc.vgi_rpc.error_type", error.error_type.as_str());
            span.record("rpc.vgi_rpc.error_code", error.code.as_str());
            span.record("otel.status_code", "ERROR");
        }
        None => {
            span.record("otel.status_code", "OK");
        }
    }
    let stats = &record.stats;
    span.record("rpc.vgi_rpc.input_batches", stats.input_batches);
    span.record("rpc.vgi_rpc.output_batches", stats.output_batches);
    span.record("rpc.vgi_rpc.input_rows", stats.input_rows);
    span.record("rpc.vgi_rpc.output_rows", stats.output_rows);
    span.record("rpc.vgi_rpc.input_bytes", stats.input_bytes);
    span.record("rpc.vgi_rpc.output_bytes", stats.output_bytes);
}

/// A transport failure as the record's error (out of the call path's code).
#[cold]
#[inline(never)]
fn failure_of(error: &crate::Error) -> RpcError {
    error.to_rpc()
}

/// Builds the record and calls every hook. `result` is the call's transport outcome: a
/// failure there (a peer that vanished mid-stream) is the call's error when no error
/// batch had been sent.
pub(crate) fn emit(done: &Finished<'_>, meter: &Meter, result: &crate::Result<()>) {
    let stream_id = match (done.target.method_type, done.stream_id) {
        (MethodType::Stream, Some(id)) => Some(id.to_owned()),
        (MethodType::Stream, None) => Some(ids::random_hex(32)),
        (MethodType::Unary, _) => None,
    };
    let transport_error: Option<RpcError> = match (&meter.error, result) {
        (None, Err(e)) => Some(failure_of(e)),
        _ => None,
    };
    let record = CallRecord {
        server_id: &done.inner.server_id,
        protocol: done.target.protocol,
        protocol_hash: done.target.protocol_hash,
        method: &done.target.method,
        method_type: done.target.method_type,
        request_id: done.request_id,
        stream_id: stream_id.as_deref(),
        peer: done.peer,
        request: Some(RequestShape {
            schema: done.request_schema,
            rows: done.request_rows,
        }),
        stats: meter.stats,
        duration: done.started.elapsed(),
        finished_at: SystemTime::now(),
        error: meter.error.as_ref().or(transport_error.as_ref()),
        cancelled: meter.cancelled,
        http_status: done.http_status,
        trace: done.trace.map(TraceHeaders::context),
    };
    if !done.span.is_disabled() {
        record_on_span(done.span, &record);
    }
    for hook in &done.inner.hooks {
        hook.on_call(&record);
    }
}

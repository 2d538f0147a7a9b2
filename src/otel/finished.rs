//! A finished call's span as both halves describe it, before it is made: what
//! [`super::span_out`] turns into a tracer's span or the exporter's `SpanData`.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status};
use opentelemetry::{Context, KeyValue};

/// A finished call's span, ready to be made.
pub(super) struct Finished {
    pub(super) name: Cow<'static, str>,
    pub(super) kind: SpanKind,
    /// The context the span is a child of (none active: a root).
    pub(super) parent: Context,
    /// The span's own identity when the call already decided it (the client's, sent in
    /// the request; only sampled ones become a `Finished`, so it is recorded as is);
    /// `None`: a new span id, sampled as the tracer decides.
    pub(super) identity: Option<SpanContext>,
    pub(super) start: SystemTime,
    pub(super) end: SystemTime,
    pub(super) attributes: Vec<KeyValue>,
    pub(super) events: Vec<Event>,
    pub(super) status: Status,
}

//! Where both halves' finished spans go: through an OpenTelemetry tracer (whatever SDK
//! or bridge the application installed), or — when `otlp` owns the pipeline — straight
//! to its exporter as `SpanData` ([`super::export`]).
//!
//! A call's span is made after the call, with everything known: name, kind, parent,
//! times, attributes, events, status ([`Finished`]). Through a tracer, that still means
//! a span builder, the sampler, a live span and the span processor's hand-over to its
//! export thread, one span at a time: more CPU per call than a local noop call's own
//! work. The exporter needs none of it, only the `SpanData`, so with our own pipeline a
//! batch of finished spans becomes a vector of `SpanData` and is handed over at once.
//! Both ways export the same span (the tests compare them field by field).

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SamplingDecision, SamplingResult, Span, SpanBuilder, Tracer};

pub(super) use super::finished::Finished;

/// Where finished spans go.
pub(super) enum SpanOut {
    /// Through a tracer.
    Tracer(BoxedTracer),
    /// Straight to an exporter's thread.
    #[cfg(feature = "otel-otlp")]
    Export(std::sync::Arc<super::export::SpanExport>),
}

impl SpanOut {
    /// Makes and ends every span of `spans`.
    pub(super) fn record(&self, spans: impl Iterator<Item = Finished>) {
        match self {
            SpanOut::Tracer(tracer) => {
                for span in spans {
                    through_tracer(tracer, span);
                }
            }
            #[cfg(feature = "otel-otlp")]
            SpanOut::Export(export) => export.record(spans),
        }
    }
}

fn through_tracer(tracer: &BoxedTracer, span: Finished) {
    // Fields set in place: the `with_*` chain moves the (large) builder each time.
    let mut builder = SpanBuilder::from_name(span.name);
    builder.span_kind = Some(span.kind);
    builder.start_time = Some(span.start);
    builder.attributes = Some(span.attributes);
    builder.status = span.status;
    if !span.events.is_empty() {
        builder.events = Some(span.events);
    }
    if let Some(identity) = span.identity {
        builder.trace_id = Some(identity.trace_id());
        builder.span_id = Some(identity.span_id());
        builder.sampling_result = Some(SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: identity.trace_state().clone(),
        });
    }
    let mut live = tracer.build_with_context(builder, &span.parent);
    live.end_with_timestamp(span.end);
}

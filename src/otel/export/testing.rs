//! Test support: an exporter that keeps what it gets, both ways a span can go side by
//! side, and a span's fields that do not depend on chance (everything but its own ids).
use std::sync::{Arc, Mutex};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Keeps every exported span.
#[derive(Debug, Clone, Default)]
pub(crate) struct Collect(pub(crate) Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}

/// A tracer (exporting at once into one collection) and an export straight to
/// another, plus a meter: the two ways a span can go, for comparing them.
pub(crate) struct BothWays {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub(crate) through_tracer: Collect,
    pub(crate) export: Arc<super::SpanExport>,
    pub(crate) direct: Collect,
    pub(crate) meter: opentelemetry::metrics::Meter,
}

impl BothWays {
    pub(crate) fn new() -> Self {
        let through_tracer = Collect::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(through_tracer.clone())
            .build();
        let direct = Collect::default();
        let export = super::SpanExport::start(
            direct.clone(),
            &opentelemetry_sdk::Resource::builder_empty().build(),
        );
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
            "both-ways",
        );
        BothWays {
            provider,
            through_tracer,
            export,
            direct,
            meter,
        }
    }

    /// A tracer of the first way.
    pub(crate) fn tracer(&self) -> opentelemetry::global::BoxedTracer {
        use opentelemetry::trace::TracerProvider as _;

        opentelemetry::global::BoxedTracer::new(Box::new(
            self.provider.tracer_with_scope(super::super::scope()),
        ))
    }

    /// What each way exported (after flushing the export), timestamps left out: the
    /// two ways are fed by two rounds of the same calls.
    pub(crate) fn exported(&self) -> (Vec<String>, Vec<String>) {
        self.export.flush();
        let strip = |spans: &Collect| -> Vec<String> {
            let spans = spans
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            spans
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s.start_time = std::time::SystemTime::UNIX_EPOCH;
                    s.end_time = std::time::SystemTime::UNIX_EPOCH;
                    for e in &mut s.events.events {
                        e.timestamp = std::time::SystemTime::UNIX_EPOCH;
                    }
                    fixed_fields(&s)
                })
                .collect()
        };
        (strip(&self.direct), strip(&self.through_tracer))
    }
}

/// `span` without its span id (and its trace id when it is a root), as text.
pub(crate) fn fixed_fields(span: &SpanData) -> String {
    let trace_id = (span.parent_span_id != opentelemetry::trace::SpanId::INVALID)
        .then(|| span.span_context.trace_id());
    format!(
        "{:?} {:?}",
        (
            &span.name,
            &span.span_kind,
            span.start_time,
            span.end_time,
            &span.attributes,
            span.dropped_attributes_count,
            &span.events.events,
            span.events.dropped_count,
            span.links.links.len(),
            &span.status,
        ),
        (
            span.parent_span_id,
            span.parent_span_is_remote,
            trace_id,
            span.span_context.trace_flags(),
            span.span_context.is_remote(),
            span.span_context.trace_state().header(),
            &span.instrumentation_scope,
        )
    )
}

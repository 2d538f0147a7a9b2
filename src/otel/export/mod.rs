//! Our own span pipeline for `otlp`: finished spans become `SpanData` in batches and
//! go to the exporter's thread, without tracer, live span or span processor in between
//! (see `span_out` for why).
//!
//! It does what the SDK's batch span processor does with the exporter: spans gather
//! until a batch is full (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512) or the schedule delay
//! since the oldest has passed (`OTEL_BSP_SCHEDULE_DELAY`, 5 s); at most
//! `OTEL_BSP_MAX_QUEUE_SIZE` (2048) spans wait for the thread, and what arrives beyond
//! that while an export is slow is dropped and counted, never waited for — the calls'
//! recorders must not stall on a collector. The application's own spans (through the
//! SDK provider `otlp::install` sets up) reach the same thread
//! ([`Forward`]), so one exporter and one connection carry both.
//!
//! Sampling is the SDK's sampler, chosen from `OTEL_TRACES_SAMPLER` /
//! `OTEL_TRACES_SAMPLER_ARG` as the SDK provider chooses it (default: parent-based,
//! roots always), and spans keep the SDK's default limits (128 attributes, events,
//! attributes per event).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::trace::{SamplingDecision, SpanContext, SpanId, TraceContextExt, TraceFlags};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, ShouldSample, SpanData, SpanEvents, SpanExporter, SpanLinks, SpanProcessor,
};

use self::thread::{Batching, EXPORT_TIMEOUT, Message, export_loop};
use super::context::{new_span_id, new_trace_id};
use super::finished::Finished;

#[cfg(test)]
pub(super) mod testing;
#[cfg(test)]
mod tests;
mod thread;

/// The SDK's default span limits.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;

/// The sampler `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` name, as the SDK reads
/// them (unknown names: the default, parent-based always-on).
fn sampler_from_env() -> Sampler {
    let ratio = || {
        std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|r| r.trim().parse::<f64>().ok())
            .unwrap_or(1.0)
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    match std::env::var("OTEL_TRACES_SAMPLER").as_deref() {
        Ok("always_on") => Sampler::AlwaysOn,
        Ok("always_off") => Sampler::AlwaysOff,
        Ok("traceidratio") => Sampler::TraceIdRatioBased(ratio()),
        Ok("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        Ok("parentbased_traceidratio") => parent_based(Sampler::TraceIdRatioBased(ratio())),
        _ => parent_based(Sampler::AlwaysOn),
    }
}

/// The exporter's thread and the way to it.
pub(crate) struct SpanExport {
    sender: Mutex<Option<SyncSender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Spans sent and not yet taken by the thread.
    queued: Arc<AtomicUsize>,
    /// Spans dropped because the queue was full (or the thread gone).
    dropped: AtomicUsize,
    batching: Batching,
    sampler: Sampler,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for SpanExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanExport")
            .field("batching", &self.batching)
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SpanExport {
    /// Starts the thread exporting through `exporter`, which gets `resource` first.
    pub(crate) fn start(
        exporter: impl SpanExporter + 'static,
        resource: &Resource,
    ) -> Arc<SpanExport> {
        Self::start_with(exporter, resource, Batching::from_env())
    }

    fn start_with(
        mut exporter: impl SpanExporter + 'static,
        resource: &Resource,
        batching: Batching,
    ) -> Arc<SpanExport> {
        exporter.set_resource(resource);
        // Messages, not spans: a batch is one message; the span bound is `queued`.
        let (sender, receiver) = mpsc::sync_channel(1024);
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("vgi-rpc-otel-export".to_owned())
            .spawn(move || export_loop(exporter, &receiver, &taken, batching))
            .map_err(|e| tracing::warn!("OpenTelemetry export thread not started: {e}"))
            .ok();
        Arc::new(SpanExport {
            sender: Mutex::new(thread.is_some().then_some(sender)),
            thread: Mutex::new(thread),
            queued,
            dropped: AtomicUsize::new(0),
            batching,
            sampler: sampler_from_env(),
            scope: super::scope(),
        })
    }

    /// Makes the sampled ones of `spans` and hands them to the thread.
    pub(super) fn record(&self, spans: impl Iterator<Item = Finished>) {
        let data: Vec<SpanData> = spans.filter_map(|span| self.span_data(span)).collect();
        self.send(data);
    }

    fn send(&self, spans: Vec<SpanData>) {
        let n = spans.len();
        if n == 0 {
            return;
        }
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + n <= self.batching.max_queue).then_some(q + n)
            })
            .is_ok();
        let sent = admitted
            && match &*lock(&self.sender) {
                Some(sender) => match sender.try_send(Message::Spans(spans)) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                },
                None => false,
            };
        if !sent {
            if admitted {
                self.queued.fetch_sub(n, Ordering::AcqRel);
            }
            let before = self.dropped.fetch_add(n, Ordering::Relaxed);
            // The first loss, then one line per 1000 lost.
            if before == 0 || before / 1000 != (before + n) / 1000 {
                tracing::warn!(
                    dropped = before + n,
                    "OpenTelemetry span queue full (the exporter is slower than the calls): spans dropped"
                );
            }
        }
    }

    /// Spans dropped so far (queue full, or exported after shutdown).
    pub(crate) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Exports everything queued now and waits for it (bounded).
    pub(crate) fn flush(&self) {
        self.ask(Message::Flush);
    }

    /// Exports what is queued, shuts the exporter down and ends the thread; spans
    /// recorded afterwards are dropped.
    pub(crate) fn shutdown(&self) {
        let answered = self.ask(Message::Shutdown);
        *lock(&self.sender) = None;
        if let Some(thread) = lock(&self.thread).take()
            && answered
        {
            let _ = thread.join();
        }
    }

    /// Sends a request the thread answers, and waits for the answer (bounded: an
    /// exporter that hangs is left behind). Whether it was answered.
    fn ask(&self, message: fn(SyncSender<()>) -> Message) -> bool {
        let (done, answer) = mpsc::sync_channel(1);
        // A sender of our own: the blocking send below (a full channel empties as the
        // thread works) must not hold the lock the recorders' sends take.
        let sender = lock(&self.sender).clone();
        let sent = sender.is_some_and(|sender| sender.send(message(done)).is_ok());
        sent && answer.recv_timeout(EXPORT_TIMEOUT).is_ok()
    }

    /// The exported form of `span`, or `None` when it is not sampled.
    fn span_data(&self, span: Finished) -> Option<SpanData> {
        let Finished {
            name,
            kind,
            parent,
            identity,
            start,
            end,
            mut attributes,
            mut events,
            status,
        } = span;
        let parent_span = parent.span();
        let above = parent_span.span_context();
        let above = (parent.has_active_span() && above.is_valid()).then_some(above);
        let context = match identity {
            // Always sampled (`Finished::identity`).
            Some(own) => own,
            None => {
                let trace_id = match above {
                    Some(above) => above.trace_id(),
                    None => new_trace_id(),
                };
                let sampled = self.sampler.should_sample(
                    Some(&parent),
                    trace_id,
                    &name,
                    &kind,
                    &attributes,
                    &[],
                );
                if sampled.decision != SamplingDecision::RecordAndSample {
                    // RecordOnly spans are never exported either.
                    return None;
                }
                let flags = above.map_or(TraceFlags::default(), SpanContext::trace_flags);
                SpanContext::new(
                    trace_id,
                    new_span_id(),
                    flags.with_sampled(true),
                    false,
                    sampled.trace_state,
                )
            }
        };
        let dropped_attributes = attributes.len().saturating_sub(MAX_ATTRIBUTES);
        attributes.truncate(MAX_ATTRIBUTES);
        let dropped_events = events.len().saturating_sub(MAX_EVENTS);
        events.truncate(MAX_EVENTS);
        for event in &mut events {
            let dropped = event.attributes.len().saturating_sub(MAX_ATTRIBUTES);
            event.attributes.truncate(MAX_ATTRIBUTES);
            event.dropped_attributes_count = count(dropped);
        }
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        span_events.dropped_count = count(dropped_events);
        Some(SpanData {
            span_context: context,
            parent_span_id: above.map_or(SpanId::INVALID, SpanContext::span_id),
            parent_span_is_remote: above.is_some_and(SpanContext::is_remote),
            span_kind: kind,
            name,
            start_time: start,
            end_time: end,
            attributes,
            dropped_attributes_count: count(dropped_attributes),
            events: span_events,
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        })
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The span processor of the SDK provider `otlp` installs: the
/// application's own spans go to the same export thread as the calls'.
#[derive(Debug)]
pub(crate) struct Forward(pub(crate) Arc<SpanExport>);

impl SpanProcessor for Forward {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.send(vec![span]);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush();
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        // The guard that owns the export shuts it down, after the calls' recorders.
        Ok(())
    }
}

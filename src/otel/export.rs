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
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::trace::{
    SamplingDecision, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId,
};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, ShouldSample, SpanData, SpanEvents, SpanExporter, SpanLinks, SpanProcessor,
};

use super::finished::Finished;
use crate::server::ids::random_u64;

/// The SDK's default span limits.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;

/// How long a flush or shutdown waits for the exporter.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Batching settings, from the SDK's environment variables.
#[derive(Debug, Clone, Copy)]
struct Batching {
    delay: Duration,
    max_batch: usize,
    max_queue: usize,
}

impl Batching {
    fn from_env() -> Self {
        let var = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let max_queue =
            usize::try_from(var("OTEL_BSP_MAX_QUEUE_SIZE", 2048).max(1)).unwrap_or(usize::MAX);
        let max_batch = usize::try_from(var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512).max(1))
            .unwrap_or(usize::MAX)
            .min(max_queue);
        Batching {
            delay: Duration::from_millis(var("OTEL_BSP_SCHEDULE_DELAY", 5000)),
            max_batch,
            max_queue,
        }
    }
}

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

enum Message {
    Spans(Vec<SpanData>),
    /// Export everything queued, then answer.
    Flush(SyncSender<()>),
    /// Export everything queued, shut the exporter down, answer and end.
    Shutdown(SyncSender<()>),
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
            Some(own) => own.is_sampled().then_some(own)?,
            None => {
                let trace_id = match above {
                    Some(above) => above.trace_id(),
                    None => TraceId::from(
                        (u128::from(random_u64()) << 64 | u128::from(random_u64())).max(1),
                    ),
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
                    SpanId::from(random_u64().max(1)),
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

/// The thread: gathers spans into batches and exports them.
fn export_loop(
    mut exporter: impl SpanExporter,
    receiver: &mpsc::Receiver<Message>,
    queued: &AtomicUsize,
    batching: Batching,
) {
    let mut gathered: Vec<SpanData> = Vec::new();
    let mut due: Option<Instant> = None;
    let export_all = |exporter: &mut _, gathered: &mut Vec<SpanData>| {
        while !gathered.is_empty() {
            let rest = gathered.split_off(batching.max_batch.min(gathered.len()));
            export(exporter, std::mem::replace(gathered, rest));
        }
    };
    loop {
        let message = match due {
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => receiver.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match message {
            Ok(Message::Spans(mut spans)) => {
                queued.fetch_sub(spans.len(), Ordering::AcqRel);
                gathered.append(&mut spans);
                due.get_or_insert_with(|| Instant::now() + batching.delay);
                while gathered.len() >= batching.max_batch {
                    let rest = gathered.split_off(batching.max_batch);
                    export(&mut exporter, std::mem::replace(&mut gathered, rest));
                }
                if gathered.is_empty() {
                    due = None;
                }
            }
            Ok(Message::Flush(done)) => {
                export_all(&mut exporter, &mut gathered);
                due = None;
                if let Err(e) = exporter.force_flush() {
                    tracing::warn!("OpenTelemetry span exporter flush failed: {e}");
                }
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                export_all(&mut exporter, &mut gathered);
                due = None;
            }
            Ok(Message::Shutdown(done)) => {
                export_all(&mut exporter, &mut gathered);
                let _ = exporter.shutdown_with_timeout(EXPORT_TIMEOUT);
                let _ = done.send(());
                return;
            }
            Err(RecvTimeoutError::Disconnected) => {
                export_all(&mut exporter, &mut gathered);
                let _ = exporter.shutdown_with_timeout(EXPORT_TIMEOUT);
                return;
            }
        }
    }
}

fn export(exporter: &mut impl SpanExporter, batch: Vec<SpanData>) {
    let n = batch.len();
    if let Err(e) = futures_executor::block_on(exporter.export(batch)) {
        tracing::warn!("OpenTelemetry span export failed ({n} spans lost): {e}");
    }
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

/// Test support: an exporter that keeps what it gets, and a span's fields that do not
/// depend on chance (everything but its own ids).
#[cfg(test)]
pub(super) mod testing {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use opentelemetry::trace::{SpanKind, Status};

    use super::testing::Collect;
    use super::*;

    fn root(n: usize) -> impl Iterator<Item = Finished> {
        (0..n).map(|_| Finished {
            name: "vgi_rpc/noop".into(),
            kind: SpanKind::Server,
            parent: Context::new(),
            identity: None,
            start: std::time::SystemTime::now(),
            end: std::time::SystemTime::now(),
            attributes: Vec::new(),
            events: Vec::new(),
            status: Status::Ok,
        })
    }

    /// A collecting export with `batching`.
    fn collecting(batching: Batching) -> (Collect, Arc<SpanExport>) {
        let collect = Collect::default();
        let export = SpanExport::start_with(
            collect.clone(),
            &Resource::builder_empty().build(),
            batching,
        );
        (collect, export)
    }

    /// How many spans `collect` holds once it holds `n` (or after 10 s).
    fn exported_once(collect: &Collect, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while exported(collect) != n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        exported(collect)
    }

    fn exported(collect: &Collect) -> usize {
        collect.0.lock().unwrap().len()
    }

    /// An exporter that waits for a go-ahead before each batch and reports batch sizes.
    #[derive(Debug)]
    struct Gated {
        go: Mutex<mpsc::Receiver<()>>,
        sizes: mpsc::Sender<usize>,
    }

    impl SpanExporter for Gated {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let _ = self.go.lock().unwrap().recv();
            let _ = self.sizes.send(batch.len());
            Ok(())
        }
    }

    #[test]
    fn spans_gather_into_batches_and_a_flush_exports_the_rest() {
        let (collect, export) = collecting(Batching {
            delay: Duration::from_secs(3600),
            max_batch: 100,
            max_queue: 10_000,
        });
        export.record(root(250));
        // Two full batches go at once; the other 50 wait for the delay or a flush.
        assert_eq!(exported_once(&collect, 200), 200);
        export.flush();
        assert_eq!(exported(&collect), 250);
        export.shutdown();
        export.record(root(3));
        assert_eq!(exported(&collect), 250);
        assert_eq!(
            export.dropped(),
            3,
            "after shutdown, spans are dropped and counted"
        );
    }

    #[test]
    fn the_delay_exports_a_partial_batch() {
        let (collect, export) = collecting(Batching {
            delay: Duration::from_millis(20),
            max_batch: 512,
            max_queue: 2048,
        });
        export.record(root(7));
        assert_eq!(exported_once(&collect, 7), 7);
    }

    #[test]
    fn a_slow_exporter_drops_what_overflows_the_queue_and_never_blocks_the_recorder() {
        let (go, gate) = mpsc::channel();
        let (sizes, sized) = mpsc::channel();
        let exporter = Gated {
            go: Mutex::new(gate),
            sizes,
        };
        let batching = Batching {
            delay: Duration::from_secs(3600),
            max_batch: 10,
            max_queue: 30,
        };
        let export = SpanExport::start_with(exporter, &Resource::builder_empty().build(), batching);
        // The first batch reaches the exporter, which holds it: the thread is stuck.
        export.record(root(10));
        std::thread::sleep(Duration::from_millis(50));
        // 30 more fit in the queue; the next 25 do not, and recording returns at once.
        for _ in 0..3 {
            export.record(root(10));
        }
        let started = Instant::now();
        export.record(root(25));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(export.dropped(), 25);
        for _ in 0..4 {
            go.send(()).unwrap();
        }
        let total: usize = (0..4)
            .map(|_| sized.recv_timeout(Duration::from_secs(10)).unwrap())
            .sum();
        assert_eq!(total, 40, "everything queued was exported");
        drop(go);
        export.shutdown();
    }
}

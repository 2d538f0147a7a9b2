//! The export thread of [`super::SpanExport`]: what it is sent, the batching settings it
//! follows (the SDK's `OTEL_BSP_*` variables), and its loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// How long a flush or shutdown waits for the exporter.
pub(super) const EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Batching settings, from the SDK's environment variables.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batching {
    pub(super) delay: Duration,
    pub(super) max_batch: usize,
    pub(super) max_queue: usize,
}

impl Batching {
    pub(super) fn from_env() -> Self {
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

/// What the thread is sent.
pub(super) enum Message {
    Spans(Vec<SpanData>),
    /// Export everything queued, then answer.
    Flush(SyncSender<()>),
    /// Export everything queued, shut the exporter down, answer and end.
    Shutdown(SyncSender<()>),
}

/// The thread: gathers spans into batches and exports them.
pub(super) fn export_loop(
    mut exporter: impl SpanExporter,
    receiver: &mpsc::Receiver<Message>,
    queued: &AtomicUsize,
    batching: Batching,
) {
    let mut gathered: Vec<SpanData> = Vec::new();
    let mut due: Option<Instant> = None;
    loop {
        let message = match due {
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => receiver.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        let done = match message {
            Ok(Message::Spans(mut spans)) => {
                queued.fetch_sub(spans.len(), Ordering::AcqRel);
                gathered.append(&mut spans);
                due.get_or_insert_with(|| Instant::now() + batching.delay);
                // Full batches go now; the rest waits for more, the delay or a flush.
                export_batches(&mut exporter, &mut gathered, batching.max_batch, false);
                if gathered.is_empty() {
                    due = None;
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {
                export_batches(&mut exporter, &mut gathered, batching.max_batch, true);
                due = None;
                continue;
            }
            Ok(Message::Flush(done)) => {
                export_batches(&mut exporter, &mut gathered, batching.max_batch, true);
                due = None;
                if let Err(e) = exporter.force_flush() {
                    tracing::warn!("OpenTelemetry span exporter flush failed: {e}");
                }
                let _ = done.send(());
                continue;
            }
            Ok(Message::Shutdown(done)) => Some(done),
            Err(RecvTimeoutError::Disconnected) => None,
        };
        // Shut down (asked to, or every sender gone).
        export_batches(&mut exporter, &mut gathered, batching.max_batch, true);
        let _ = exporter.shutdown_with_timeout(EXPORT_TIMEOUT);
        if let Some(done) = done {
            let _ = done.send(());
        }
        return;
    }
}

/// Exports `gathered` in batches of at most `max_batch`: all of it, or (`all` false)
/// only whole batches, leaving the remainder.
fn export_batches(
    exporter: &mut impl SpanExporter,
    gathered: &mut Vec<SpanData>,
    max_batch: usize,
    all: bool,
) {
    while gathered.len() >= max_batch || (all && !gathered.is_empty()) {
        // The batch is the vector's head, handed over where it lies; only what is left
        // beyond it (usually the smaller part) moves to a vector of its own.
        let rest = if gathered.len() > max_batch {
            gathered.split_off(max_batch)
        } else {
            Vec::with_capacity(max_batch)
        };
        let batch = std::mem::replace(gathered, rest);
        export(exporter, batch);
    }
}

fn export(exporter: &mut impl SpanExporter, batch: Vec<SpanData>) {
    let n = batch.len();
    if let Err(e) = futures_executor::block_on(exporter.export(batch)) {
        tracing::warn!("OpenTelemetry span export failed ({n} spans lost): {e}");
    }
}

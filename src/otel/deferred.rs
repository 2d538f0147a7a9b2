//! Telemetry recorded off the call path: a call leaves a small record in a buffer and a
//! background thread turns the buffered records into spans and metric points in batches.
//!
//! Building an SDK span (attribute vectors, ids, the hand-over to the batch processor,
//! whose thread later frees it) and hashing metric attribute sets cost a few µs per call
//! on the thread that answers the call — as much as the call itself on a local
//! transport. Everything about a finished call is known when its record arrives, and the
//! spans and points carry explicit timestamps, so building them a moment later on
//! another thread yields the same export: what the call pays is a push into a vector.
//! The work is moved, not removed: batching makes it cheaper (one counter addition per
//! attribute set and batch, warm caches), but on a single core it still competes with
//! the calls.
//!
//! The buffer is bounded: past [`MAX_PENDING`] records (a recorder that cannot keep up)
//! a call records its own telemetry synchronously, so nothing is dropped here. Buffered
//! records reach the providers in batches of at most [`BATCH`] (the SDK's span queue
//! drops bursts it cannot absorb), within [`INTERVAL`], and at once on [`flush_all`] (which
//! [`otlp::OtlpGuard`](super::otlp::OtlpGuard) calls before flushing the providers) or
//! when the owner is dropped.
//!
//! The call path's part is one push under a spin lock ([`super::spin`]: its release does
//! not wait for the record's copy) and, once per batch, an unpark of the thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::spin::{SpinLock, prefetch};

/// How long records gather before the background thread processes them.
pub(crate) const INTERVAL: Duration = Duration::from_millis(20);
/// Records handed to the sink at a time; a call that makes the buffer this long wakes the
/// thread early. It also bounds the bursts the SDK's batch span processor sees: its queue
/// (2048 spans by default) drops what arrives faster than its export thread drains, so
/// between batches the thread pauses for [`PAUSE`] to let that thread run.
pub(crate) const BATCH: usize = 256;
/// The pause between two batches of one drain.
const PAUSE: Duration = Duration::from_micros(500);
/// Records buffered at most; past this, calls record synchronously.
pub(crate) const MAX_PENDING: usize = 16_384;

/// Every live recorder, for [`flush_all`].
static RECORDERS: Mutex<Vec<Weak<dyn Flush>>> = Mutex::new(Vec::new());

/// Something holding buffered records.
trait Flush: Send + Sync {
    fn flush(&self);
}

/// Records every buffered record now, in every recorder of the process (before flushing
/// or shutting down the providers, so that their export includes the latest calls).
pub fn flush_all() {
    let live: Vec<Arc<dyn Flush>> = {
        let mut recorders = lock(&RECORDERS);
        recorders.retain(|r| r.strong_count() > 0);
        recorders.iter().filter_map(Weak::upgrade).collect()
    };
    for recorder in live {
        recorder.flush();
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A buffer of `T` and the thread that hands its contents to a sink.
pub(crate) struct Deferred<T: Send + 'static> {
    shared: Arc<Shared<T>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared<T> {
    /// The records pushed since the last drain. A spin lock: see [`super::spin`].
    pending: SpinLock<Vec<T>>,
    stop: AtomicBool,
    /// The recorder thread, unparked when the buffer stops being empty, when it holds a
    /// full batch, and on stop.
    recorder: OnceLock<Thread>,
    /// Held while a batch is processed, so that a flush returns only once everything
    /// buffered before it has reached the sink. It holds the buffers the drain reuses.
    draining: Mutex<Buffers<T>>,
    sink: Box<Sink<T>>,
}

/// What receives each batch.
type Sink<T> = dyn Fn(&mut Vec<T>) + Send + Sync;

/// The drain's buffers, kept with their capacity. `spare` is the drained `pending`,
/// empty, which becomes the next `pending`, so pushes do not grow a fresh vector (and
/// move its records) after every drain; a drain of one batch or less hands `spare` to
/// the sink as it is. `batch` is what the sink gets when a drain is split into batches:
/// a fresh vector per batch of large records is a block the allocator hands back to the system when it
/// is freed, and page-faults in again for the next.
struct Buffers<T> {
    spare: Vec<T>,
    batch: Vec<T>,
}

impl<T: Send + 'static> Shared<T> {
    /// Unparks the recorder (once per batch, out of the call path's usual code).
    #[cold]
    #[inline(never)]
    fn wake(&self) {
        if let Some(recorder) = self.recorder.get() {
            recorder.unpark();
        }
    }

    fn drain(&self) {
        let mut buffers = lock(&self.draining);
        let Buffers { spare, batch } = &mut *buffers;
        std::mem::swap(&mut *self.pending.lock(), spare);
        if spare.len() <= BATCH {
            // One batch: the sink takes the records where they are.
            if !spare.is_empty() {
                (self.sink)(spare);
                spare.clear();
            }
            return;
        }
        let mut records = spare.drain(..);
        loop {
            batch.extend(records.by_ref().take(BATCH));
            if batch.is_empty() {
                return;
            }
            (self.sink)(batch);
            batch.clear();
            if records.len() == 0 {
                return;
            }
            std::thread::sleep(PAUSE);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn run(&self) {
        loop {
            while self.pending.lock().is_empty() && !self.stopping() {
                std::thread::park();
            }
            // Let a batch gather (the next unpark is a full batch, or the stop).
            let deadline = Instant::now() + INTERVAL;
            while !self.stopping() && self.pending.lock().len() < BATCH {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
            self.drain();
            if self.stopping() {
                // A push racing the stop is drained by the owner's drop.
                return;
            }
        }
    }
}

impl<T: Send + 'static> Flush for Shared<T> {
    fn flush(&self) {
        self.drain();
    }
}

impl<T: Send + 'static> Deferred<T> {
    /// A recorder handing the records, a batch at a time, to `sink` on its own thread
    /// (named `name`). The sink takes the records out of the batch (what it leaves is
    /// dropped).
    pub(crate) fn new(name: &str, sink: impl Fn(&mut Vec<T>) + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            pending: SpinLock::new(Vec::new()),
            stop: AtomicBool::new(false),
            recorder: OnceLock::new(),
            draining: Mutex::new(Buffers {
                spare: Vec::new(),
                batch: Vec::with_capacity(BATCH),
            }),
            sink: Box::new(sink),
        });
        let worker = Arc::clone(&shared);
        // Without the thread (spawning refused), records still reach the sink: pushes
        // go synchronous once the buffer fills, and flushes and the drop drain it.
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || worker.run())
            .ok();
        if let Some(thread) = &thread {
            let _ = shared.recorder.set(thread.thread().clone());
        }
        let weak: Weak<dyn Flush> = Arc::downgrade(&shared) as Weak<dyn Flush>;
        let mut recorders = lock(&RECORDERS);
        recorders.retain(|r| r.strong_count() > 0);
        recorders.push(weak);
        drop(recorders);
        Deferred { shared, thread }
    }

    /// Buffers `item` (or, with the buffer full, hands it to the sink now).
    pub(crate) fn push(&self, item: T) {
        let mut pending = self.shared.pending.lock();
        if pending.len() >= MAX_PENDING {
            drop(pending);
            self.record_now(item);
            return;
        }
        pending.push(item);
        let len = pending.len();
        // Where the next record will go (one past the end when the vector is full: a
        // hint only, never dereferenced).
        let next = pending.as_ptr().wrapping_add(len);
        drop(pending);
        prefetch(next);
        if len == 1 || len == BATCH {
            self.shared.wake();
        }
    }

    /// Hands `item` to the sink on the calling thread (the buffer is full: out of the
    /// call path's usual code).
    #[cold]
    #[inline(never)]
    fn record_now(&self, item: T) {
        (self.shared.sink)(&mut vec![item]);
    }

    /// Hands everything buffered to the sink now.
    pub(crate) fn flush(&self) {
        self.shared.drain();
    }
}

impl<T: Send + 'static> Drop for Deferred<T> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // What the thread drained last, and anything pushed after it stopped (or
        // everything, without the thread).
        self.shared.drain();
    }
}

/// Per-call time of a cost measurement (the `cost` tests): `one` call on the call path
/// (wall time), and the CPU time everything else in the process spends on it — the
/// recorder thread, the SDK's export thread and `flush`ing the rest on the recorder's
/// behalf (the drain's pauses between batches, [`PAUSE`], are waiting, not work) —
/// averaged over 200 000 calls after 20 000 to warm up.
#[cfg(all(test, feature = "otel-otlp"))]
pub(super) fn cost_per_call(
    mut one: impl FnMut(),
    flush: impl Fn(),
) -> (std::time::Duration, std::time::Duration) {
    use rustix::time::{ClockId, clock_gettime};
    use std::time::{Duration, Instant};
    let cpu = |clock| {
        let t = clock_gettime(clock);
        Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec.unsigned_abs() as u32)
    };
    for _ in 0..20_000 {
        one();
    }
    flush();
    let (n, rounds) = (10_000, 20);
    let (mut on_path, mut off_path) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let (process, thread) = (cpu(ClockId::ProcessCPUTime), cpu(ClockId::ThreadCPUTime));
        let start = Instant::now();
        for _ in 0..n {
            one();
        }
        on_path += start.elapsed();
        let calls = cpu(ClockId::ThreadCPUTime) - thread;
        flush();
        off_path += (cpu(ClockId::ProcessCPUTime) - process).saturating_sub(calls);
    }
    (on_path / (rounds * n), off_path / (rounds * n))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_record_reaches_the_sink_by_flush_timer_or_drop() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let deferred = Deferred::new("test-recorder", move |batch: &mut Vec<usize>| {
            counter.fetch_add(batch.iter().sum(), Ordering::SeqCst);
        });
        deferred.push(1);
        deferred.push(2);
        deferred.flush();
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        deferred.push(4);
        let deadline = std::time::Instant::now() + INTERVAL * 20;
        while seen.load(Ordering::SeqCst) != 7 && std::time::Instant::now() < deadline {
            std::thread::sleep(INTERVAL / 10);
        }
        assert_eq!(seen.load(Ordering::SeqCst), 7, "the timer drains");
        deferred.push(8);
        flush_all();
        assert_eq!(seen.load(Ordering::SeqCst), 15);
        deferred.push(16);
        drop(deferred);
        assert_eq!(seen.load(Ordering::SeqCst), 31, "the drop drains");
    }

    #[test]
    fn a_full_buffer_records_synchronously() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let deferred = Deferred::new("test-recorder", move |batch: &mut Vec<()>| {
            counter.fetch_add(batch.len(), Ordering::SeqCst);
        });
        // Hold the drain so the background thread cannot empty the buffer meanwhile.
        let held = lock(&deferred.shared.draining);
        for _ in 0..MAX_PENDING + 3 {
            deferred.push(());
        }
        assert!(seen.load(Ordering::SeqCst) >= 3);
        drop(held);
        deferred.flush();
        assert_eq!(seen.load(Ordering::SeqCst), MAX_PENDING + 3);
    }
}

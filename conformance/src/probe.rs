//! The cancel probe: server-side counters the cancellation tests read back over the wire
//! (`cancel_probe_counters`) to observe how often the cancellable streams ran and whether
//! their `on_cancel` hook fired.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Shared counters; cheap to clone (all clones see the same counts).
#[derive(Debug, Clone, Default)]
pub struct CancelProbe {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    produce_calls: AtomicI64,
    exchange_calls: AtomicI64,
    on_cancel_calls: AtomicI64,
}

impl CancelProbe {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one `produce` of `cancellable_producer`.
    pub fn bump_produce(&self) {
        self.inner.produce_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one `exchange` of `cancellable_exchange`.
    pub fn bump_exchange(&self) {
        self.inner.exchange_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one `on_cancel` of either cancellable stream.
    pub fn bump_on_cancel(&self) {
        self.inner.on_cancel_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// `[produce_calls, exchange_calls, on_cancel_calls]`.
    pub fn snapshot(&self) -> [i64; 3] {
        [
            self.inner.produce_calls.load(Ordering::Relaxed),
            self.inner.exchange_calls.load(Ordering::Relaxed),
            self.inner.on_cancel_calls.load(Ordering::Relaxed),
        ]
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.inner.produce_calls.store(0, Ordering::Relaxed);
        self.inner.exchange_calls.store(0, Ordering::Relaxed);
        self.inner.on_cancel_calls.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counts() {
        let probe = CancelProbe::new();
        let other = probe.clone();
        probe.bump_produce();
        other.bump_produce();
        other.bump_exchange();
        probe.bump_on_cancel();
        assert_eq!(probe.snapshot(), [2, 1, 1]);
        other.reset();
        assert_eq!(probe.snapshot(), [0, 0, 0]);
    }
}

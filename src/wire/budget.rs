//! A memory budget shared by every connection of a server: how many bytes of received
//! message bodies may be alive at once.
//!
//! Per-message limits bound one message; they do not bound a hundred connections each
//! sending a large one. A [`MemoryBudget`] does: before a large body is read, its claimed
//! length is reserved from the budget, and the reservation travels with the body's buffer
//! (through the record batch built over it, into the handler and beyond), so it is
//! released exactly when the last reference to those bytes is dropped. A body that does
//! not fit is read and thrown away in small steps, so the connection stays in step with
//! its peer, and the read reports [`Error::OverBudget`](crate::Error::OverBudget): the
//! server answers that call `RESOURCE_EXHAUSTED` with a retry hint and goes on.
//!
//! Small bodies (under [`MemoryBudget::exempt_below`]) are not counted: they cost little,
//! and a server whose budget is spent by a few large uploads should still answer a
//! `describe` or a small call. A body larger than the whole budget is admitted when no
//! other body holds any of it, so one large message always gets through a quiet server
//! (the per-message limit still bounds it); memory stays under the larger of the budget
//! and that limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default [`MemoryBudget::exempt_below`]: bodies smaller than this are not counted.
pub const DEFAULT_EXEMPT_BELOW: u64 = 1 << 20;

/// Bytes of received message bodies that may be alive at once, across connections.
///
/// Shared through an `Arc`; attach it to a server with
/// [`ServerBuilder::memory_budget`](crate::server::ServerBuilder::memory_budget) or to
/// any reader's [`Limits`](super::Limits) with [`Limits::with_budget`](super::Limits::with_budget).
#[derive(Debug)]
pub struct MemoryBudget {
    capacity: u64,
    exempt_below: u64,
    in_use: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `capacity` bytes; bodies under [`DEFAULT_EXEMPT_BELOW`] are not
    /// counted.
    pub fn new(capacity: u64) -> Self {
        MemoryBudget {
            capacity,
            exempt_below: DEFAULT_EXEMPT_BELOW,
            in_use: AtomicU64::new(0),
        }
    }

    /// Bodies smaller than `bytes` are read without touching the budget.
    #[must_use]
    pub fn with_exempt_below(mut self, bytes: u64) -> Self {
        self.exempt_below = bytes;
        self
    }

    /// The budget's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The body size below which reads are not counted.
    pub fn exempt_below(&self) -> u64 {
        self.exempt_below
    }

    /// Bytes reserved right now by bodies being read or still referenced.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Whether `more` bytes may be added to `used`, of which `own` are the caller's:
    /// when they fit, or when nobody else holds anything.
    fn admits(&self, used: u64, own: u64, more: u64) -> Option<u64> {
        let total = used.checked_add(more)?;
        (total <= self.capacity || used == own).then_some(total)
    }

    /// Reserves `bytes`, or `None` when they do not fit in what is left.
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                self.admits(used, 0, bytes)
            })
            .ok()
            .map(|_| Reservation {
                budget: Arc::clone(self),
                bytes,
            })
    }
}

/// Bytes held against a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// An empty reservation against `budget`, grown with [`Reservation::grow_to`] as a
    /// body arrives in pieces (an HTTP request body).
    pub fn empty(budget: &Arc<MemoryBudget>) -> Self {
        Reservation {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    /// Grows the reservation to `total` bytes once `total` reaches the budget's
    /// exempt size; `false` (and unchanged) when the growth does not fit.
    pub fn grow_to(&mut self, total: u64) -> bool {
        if total <= self.bytes || total < self.budget.exempt_below {
            return true;
        }
        let (more, own) = (total - self.bytes, self.bytes);
        let budget = &self.budget;
        let grown = budget
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                budget.admits(used, own, more)
            })
            .is_ok();
        if grown {
            self.bytes = total;
        }
        grown
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.in_use.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::wire::{self, Limits, StreamItem};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};

    /// An IPC stream of one int64 batch with `rows` rows (a body of `8 * rows` bytes).
    fn stream(rows: usize) -> Vec<u8> {
        let column: ArrayRef = Arc::new(Int64Array::from(vec![7; rows]));
        let batch = RecordBatch::try_from_iter([("v", column)]).expect("batch");
        wire::encode_stream(&batch.schema(), &[batch]).expect("encode")
    }

    #[test]
    fn a_body_over_the_budget_is_skipped_and_the_stream_stays_in_step() {
        let budget = Arc::new(MemoryBudget::new(1000).with_exempt_below(100));
        let _held = budget.try_reserve(1).expect("fits");
        let limits = Limits::default().with_budget(Arc::clone(&budget));
        // 2000 bytes do not fit beside another's byte; then a second stream of 48 bytes
        // (exempt).
        let mut bytes = stream(250);
        bytes.extend(stream(50 / 8));
        let mut r = std::io::Cursor::new(bytes);
        let mut decoder = wire::read_stream_start(&mut r, &limits).expect("schema");
        match wire::read_stream_item(&mut r, &mut decoder, &limits) {
            Err(Error::OverBudget { claimed, capacity }) => {
                assert_eq!((claimed, capacity), (2000, 1000));
            }
            other => panic!("expected OverBudget, got {other:?}"),
        }
        assert!(matches!(
            wire::read_stream_item(&mut r, &mut decoder, &limits),
            Ok(StreamItem::End)
        ));
        let mut next = wire::read_stream_start(&mut r, &limits).expect("next stream");
        let Ok(StreamItem::Batch(batch, _)) = wire::read_stream_item(&mut r, &mut next, &limits)
        else {
            panic!("the next stream's batch");
        };
        assert_eq!(batch.num_rows(), 6);
        assert_eq!(budget.in_use(), 1, "exempt bodies are not counted");
    }

    #[test]
    fn a_reservation_grows_while_it_fits() {
        let budget = Arc::new(MemoryBudget::new(100).with_exempt_below(10));
        let other = budget.try_reserve(30).expect("fits");
        let mut held = Reservation::empty(&budget);
        assert!(held.grow_to(5), "under the exempt size: not counted");
        assert_eq!(budget.in_use(), 30);
        assert!(held.grow_to(60));
        assert!(!held.grow_to(71));
        assert_eq!(budget.in_use(), 90, "a failed growth changes nothing");
        drop(other);
        assert!(held.grow_to(200), "alone, it may grow past the budget");
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn untrusted_channels_get_the_smaller_body_limit_and_trusted_ones_no_budget() {
        let budget = Arc::new(MemoryBudget::new(1 << 30));
        let limits = Limits::default().with_budget(budget);
        let socket = limits.clone().on_channel(false);
        assert_eq!(socket.max_body, wire::DEFAULT_MAX_UNTRUSTED_BODY);
        assert!(socket.budget().is_some());
        let stdio = limits.on_channel(true);
        assert_eq!(stdio.max_body, 16 << 30);
        assert!(stdio.budget().is_none());
    }

    #[test]
    fn a_reservation_lives_as_long_as_the_batch_over_its_body() {
        let budget = Arc::new(MemoryBudget::new(1 << 20).with_exempt_below(100));
        let limits = Limits::default().with_budget(Arc::clone(&budget));
        let mut r = std::io::Cursor::new(stream(1000));
        let mut decoder = wire::read_stream_start(&mut r, &limits).expect("schema");
        let Ok(StreamItem::Batch(batch, _)) = wire::read_stream_item(&mut r, &mut decoder, &limits)
        else {
            panic!("a batch");
        };
        assert_eq!(budget.in_use(), 8000);
        let column = batch.column(0).clone();
        drop(batch);
        assert_eq!(budget.in_use(), 8000, "a column still refers to the body");
        drop(column);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn reservations_are_returned_when_dropped() {
        let budget = Arc::new(MemoryBudget::new(100));
        let a = budget.try_reserve(60).expect("fits");
        assert!(budget.try_reserve(41).is_none(), "60 + 41 > 100");
        let b = budget.try_reserve(40).expect("60 + 40 fits exactly");
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        assert!(budget.try_reserve(u64::MAX).is_none(), "no overflow");
        drop(b);
        assert_eq!(budget.in_use(), 0);
        let whole = budget
            .try_reserve(500)
            .expect("over the budget, but nothing else held");
        assert!(
            budget.try_reserve(1).is_none(),
            "nothing else while it is held"
        );
        drop(whole);
        assert_eq!(budget.in_use(), 0);
    }
}

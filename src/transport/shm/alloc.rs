//! First-fit allocation over a validated [`Table`]: pure bookkeeping, no memory access.
//!
//! The reference scans the gaps `[65536, first)`, between neighbours and
//! `[last_end, segment_end)` and takes the first one that fits; freeing drops the entry
//! whose offset matches, so neighbouring free space coalesces implicitly. We do the same
//! with one refinement that stays layout-compatible: a reservation is rounded up to
//! [`ALIGN`] bytes and starts on an [`ALIGN`]-byte boundary, so Arrow buffers decoded in
//! place are aligned. A segment used only by this crate therefore allocates exactly as
//! the reference would for the rounded sizes; gaps left by a peer's odd-sized entries
//! lose at most `ALIGN - 1` bytes at their start.

use super::ShmError;
use super::header::{Entry, HEADER_SIZE, MAX_ALLOCS, Table};

/// Alignment of every region we reserve (Arrow's preferred buffer alignment).
pub(crate) const ALIGN: u64 = 64;

const _: () = assert!(HEADER_SIZE.is_multiple_of(ALIGN));

fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN - 1).map(|n| n & !(ALIGN - 1))
}

impl Table {
    /// Reserves at least `len` bytes (rounded up to [`ALIGN`]) in the first gap that fits,
    /// keeping the table sorted. `None` when the table is full or no gap is large enough;
    /// the caller then sends the batch inline.
    #[cfg(test)]
    pub(crate) fn allocate(&mut self, len: u64, segment_size: u64) -> Option<Entry> {
        self.allocate_excluding(len, segment_size, &[])
    }

    /// [`Table::allocate`] that also keeps clear of `excluded` ranges: regions this
    /// process still uses, which a misbehaving peer may have dropped from the table.
    pub(crate) fn allocate_excluding(
        &mut self,
        len: u64,
        segment_size: u64,
        excluded: &[Entry],
    ) -> Option<Entry> {
        if self.entries.len() >= MAX_ALLOCS {
            return None;
        }
        let length = align_up(len.max(1))?;
        // Busy ranges in offset order; they may overlap when `excluded` is not empty.
        let mut busy = self.entries.clone();
        if !excluded.is_empty() {
            busy.extend_from_slice(excluded);
            busy.sort_unstable_by_key(|e| e.offset);
        }
        let mut prev_end = HEADER_SIZE;
        let mut found = None;
        for e in &busy {
            let start = align_up(prev_end)?;
            if start.checked_add(length).is_some_and(|end| end <= e.offset) {
                found = Some(start);
                break;
            }
            prev_end = prev_end.max(e.end());
        }
        let offset = match found {
            Some(offset) => offset,
            None => {
                let start = align_up(prev_end)?;
                if start.checked_add(length)? > segment_size {
                    return None;
                }
                start
            }
        };
        let entry = Entry { offset, length };
        let slot = self.entries.partition_point(|e| e.offset < offset);
        self.entries.insert(slot, entry);
        Some(entry)
    }

    /// Drops the entry starting at `offset`.
    ///
    /// # Errors
    /// [`ShmError::NoAllocation`] when no entry starts there.
    pub(crate) fn free(&mut self, offset: u64) -> Result<Entry, ShmError> {
        let i = self
            .entries
            .binary_search_by_key(&offset, |e| e.offset)
            .map_err(|_| ShmError::NoAllocation(offset))?;
        Ok(self.entries.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::shm::header::tests::check_invariants;
    use proptest::prelude::*;

    const SIZE: u64 = HEADER_SIZE + 1024 * 1024;

    fn offsets(t: &Table) -> Vec<(u64, u64)> {
        t.entries().iter().map(|e| (e.offset, e.length)).collect()
    }

    #[test]
    fn first_fit_reuses_the_first_gap() {
        let mut t = Table::default();
        let a = t.allocate(1000, SIZE).unwrap();
        let b = t.allocate(5000, SIZE).unwrap();
        let c = t.allocate(64, SIZE).unwrap();
        assert_eq!((a.offset, a.length), (65536, 1024));
        assert_eq!((b.offset, b.length), (66560, 5056));
        assert_eq!(c.offset, 71616);
        t.free(b.offset).unwrap();
        // 2000 fits where b was; 6000 does not and goes after c.
        assert_eq!(t.allocate(2000, SIZE).unwrap().offset, 66560);
        assert_eq!(t.allocate(6000, SIZE).unwrap().offset, 71680);
        assert_eq!(t.free(12345), Err(ShmError::NoAllocation(12345)));
        check_invariants(&t, SIZE);
    }

    #[test]
    fn odd_peer_entries_are_skipped_to_an_aligned_start() {
        // A peer (the reference) reserved 1001 bytes at the start.
        let mut t = Table {
            entries: vec![Entry {
                offset: 65536,
                length: 1001,
            }],
        };
        assert_eq!(t.allocate(10, SIZE).unwrap().offset, 65536 + 1024);
    }

    #[test]
    fn full_table_and_full_segment_give_none() {
        let mut t = Table::default();
        assert!(t.allocate(SIZE - HEADER_SIZE + 1, SIZE).is_none());
        assert!(t.allocate(u64::MAX, SIZE).is_none());
        let all = t.allocate(SIZE - HEADER_SIZE, SIZE).unwrap();
        assert!(t.allocate(1, SIZE).is_none());
        t.free(all.offset).unwrap();
        for _ in 0..MAX_ALLOCS {
            t.allocate(1, SIZE).unwrap();
        }
        assert!(t.allocate(1, SIZE).is_none());
        check_invariants(&t, SIZE);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(u64),
        Free(usize),
        /// Allocate clear of `(offset, length)` ranges held elsewhere.
        AllocExcluding(u64, Vec<(u64, u64)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..200_000).prop_map(Op::Alloc),
            1 => (0u64..SIZE * 2).prop_map(Op::Alloc),
            3 => any::<usize>().prop_map(Op::Free),
            1 => (
                1u64..100_000,
                proptest::collection::vec((HEADER_SIZE..SIZE, 0u64..50_000), 0..4),
            )
                .prop_map(|(len, ex)| Op::AllocExcluding(len, ex)),
        ]
    }

    /// Is there an aligned gap of `len` bytes anywhere? (The allocator must find one if so.)
    fn fits_somewhere(t: &Table, len: u64) -> bool {
        let Some(len) = align_up(len.max(1)) else {
            return false;
        };
        let mut prev = HEADER_SIZE;
        for e in t.entries().iter().chain([&Entry {
            offset: SIZE,
            length: 0,
        }]) {
            let start = align_up(prev).unwrap();
            if start.checked_add(len).is_some_and(|end| end <= e.offset) {
                return true;
            }
            prev = e.end();
        }
        false
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random allocate/free sequences keep the table valid, never hand out
        /// overlapping regions, and say `None` only when nothing fits.
        #[test]
        fn allocate_free_round_trips(ops in proptest::collection::vec(op(), 1..120)) {
            let mut t = Table::default();
            let mut live: Vec<Entry> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc(len) => {
                        let before = t.clone();
                        match t.allocate(len, SIZE) {
                            Some(e) => {
                                prop_assert!(e.length >= len && e.offset % ALIGN == 0);
                                prop_assert!(live.iter().all(|l| e.end() <= l.offset || l.end() <= e.offset));
                                live.push(e);
                            }
                            None => prop_assert!(
                                before.entries().len() >= MAX_ALLOCS || !fits_somewhere(&before, len)
                            ),
                        }
                    }
                    Op::AllocExcluding(len, ranges) => {
                        let excluded: Vec<Entry> = ranges
                            .iter()
                            .map(|&(offset, length)| Entry { offset, length })
                            .collect();
                        if let Some(e) = t.allocate_excluding(len, SIZE, &excluded) {
                            prop_assert!(e.length >= len && e.offset % ALIGN == 0);
                            prop_assert!(live.iter().chain(&excluded).all(|l| e.end() <= l.offset || l.end() <= e.offset));
                            live.push(e);
                        }
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let e = live.swap_remove(i % live.len());
                        prop_assert_eq!(t.free(e.offset), Ok(e));
                    }
                    Op::Free(_) => {}
                }
                check_invariants(&t, SIZE);
                let mut sorted = live.clone();
                sorted.sort_by_key(|e| e.offset);
                prop_assert_eq!(offsets(&t), sorted.iter().map(|e| (e.offset, e.length)).collect::<Vec<_>>());
            }
        }
    }
}

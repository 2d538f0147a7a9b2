//! Per-thread reuse on the per-message path: metadata blocks, empty bodies and the
//! schemas of repeated streams.
//!
//! Every call reads at least four messages (a request's schema and batch, and the same
//! for its answer) and most are a few hundred bytes. Allocating a metadata buffer, a body
//! and a decoded schema for each was most of a small call's allocations, and decoding the
//! schema was a good share of its CPU. A connection serves one call at a time on one
//! thread, and a caller repeats the same method, so each thread keeps:
//! - one spare metadata buffer, taken by the next message read and given back when its
//!   [`RawMessage`](super::RawMessage) drops;
//! - the decoded schemas of the last few distinct schema messages, keyed by their exact
//!   flatbuffer bytes (equal bytes decode to an equal schema, so a hit skips verifying
//!   and decoding them again);
//! - the encoded schema messages of the last few distinct dictionary-free schemas sent
//!   (compared by value, which for the same `Fields` is a pointer comparison);
//! - an empty body buffer, shared by every message without a body;
//! - one spare large body buffer: a body of 64 KiB or more is read into it, and it comes
//!   back when the last array over that body drops. A fresh buffer of a megabyte costs
//!   a page fault per 4 KiB on first touch, every time, since the allocator hands large
//!   freed blocks back to the system.
//!
//! Whole batch messages without columns are kept the same way, in
//! `wire::columnless`.

use std::cell::{Cell, RefCell};
use std::sync::LazyLock;

use arrow_buffer::Buffer;
use arrow_schema::{Schema, SchemaRef};

use super::budget::Reservation;

/// Metadata buffers larger than this are not kept.
const SPARE_MAX: usize = 16 << 10;
/// Messages larger than this are not cached (schemas here, column-less batches in
/// `columnless`).
pub(super) const CACHED_MESSAGE_MAX: usize = 4 << 10;
/// Entries a [`Ring`] keeps: distinct schemas per thread here, column-less messages and
/// their sightings in `columnless`.
const RING_ENTRIES: usize = 8;

/// Bodies at least this large are read into (and given back to) the spare body buffer.
const BODY_POOL_MIN: usize = 64 << 10;
/// Body buffers larger than this are not kept.
const BODY_POOL_MAX: usize = 64 << 20;

thread_local! {
    static SPARE_BODY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static SPARE_META: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static SCHEMA_CACHE: RefCell<Ring<(Vec<u8>, SchemaRef)>> = const {
        RefCell::new(Ring { entries: Vec::new(), next: 0 })
    };
    static ENCODED_SCHEMAS: RefCell<Ring<(Schema, Vec<u8>)>> = const {
        RefCell::new(Ring { entries: Vec::new(), next: 0 })
    };
}

/// A buffer of `len` bytes for a metadata block, reusing the thread's spare. Its bytes
/// are stale (the caller overwrites all of them) but initialized: the spare comes back
/// with the length of the last block, so only growth past that is zeroed.
pub(super) fn meta_buffer(len: usize) -> Vec<u8> {
    let mut buf = SPARE_META.try_with(Cell::take).unwrap_or_default();
    if buf.len() >= len {
        buf.truncate(len);
    } else {
        buf.resize(len, 0);
    }
    buf
}

/// Gives a metadata buffer back for the thread's next message.
pub(super) fn recycle_meta(buf: Vec<u8>) {
    if buf.capacity() <= SPARE_MAX {
        let _ = SPARE_META.try_with(|spare| spare.set(buf));
    }
}

/// The body of a message without one (shared; no allocation per message).
pub(super) fn empty_body() -> Buffer {
    static EMPTY: LazyLock<Buffer> = LazyLock::new(|| Buffer::from_vec(Vec::<u8>::new()));
    EMPTY.clone()
}

/// The schema an identical schema message decoded to before, on this thread.
pub(super) fn cached_schema(meta: &[u8]) -> Option<SchemaRef> {
    SCHEMA_CACHE
        .try_with(|cache| {
            let cache = cache.borrow();
            cache
                .entries
                .iter()
                .find(|(bytes, _)| bytes.as_slice() == meta)
                .map(|(_, schema)| schema.clone())
        })
        .ok()
        .flatten()
}

/// Remembers what the schema message `meta` decoded to.
pub(super) fn remember_schema(meta: &[u8], schema: &SchemaRef) {
    if meta.len() > CACHED_MESSAGE_MAX {
        return;
    }
    let _ = SCHEMA_CACHE.try_with(|cache| {
        cache.borrow_mut().push((meta.to_vec(), schema.clone()));
    });
}

/// An empty buffer to read a body of `len` bytes into: the thread's spare when it is
/// large enough, else a new one with room for at most `first_step` bytes (a peer that
/// claims a huge body and sends nothing must not cost its claim).
///
/// A spare comes back `Pooled` as a [`Landing`] of `len` bytes starting on a page: its
/// bytes are stale (the caller overwrites all of them) but initialized, so reading into
/// it zeroes nothing. Reading into a `Fresh` buffer through `read_to_end` zeroes each
/// part once.
pub(super) fn body_buffer(len: usize, first_step: usize) -> BodyBuffer {
    if len >= BODY_POOL_MIN {
        let spare = SPARE_BODY.try_with(Cell::take).unwrap_or_default();
        // A spare that holds the body holds it page-aligned after growing by less than
        // a page (bounded, whatever the peer claims).
        if spare.capacity() >= len {
            return BodyBuffer::Pooled(Landing::new(spare, len));
        }
        // Too small for this body: keep it for the next one.
        let _ = SPARE_BODY.try_with(|slot| slot.set(spare));
    }
    BodyBuffer::Fresh(Vec::with_capacity(len.min(first_step)))
}

/// Where a body is read into (see [`body_buffer`]).
pub(super) enum BodyBuffer {
    /// The thread's spare, as a page-aligned window of the body's length.
    Pooled(Landing),
    /// A new, empty buffer with room for the first part of the body.
    Fresh(Vec<u8>),
}

/// Large bodies land at the start of a page of the spare buffer.
///
/// Copying out of a pipe is 2x slower on AMD cores (fast `rep movsb`, which the kernel
/// uses) when the destination sits 8 to 24 bytes past the source modulo 4 KiB: 1.9-2.1
/// ms against 0.9-1.0 ms for 3 MB, a C reader pinned beside its writer, whatever else
/// the offset (negative ones included). A writer's message starts a page of the pipe
/// when the pipe was empty (lockstep calls), so its body sits there `h` bytes (the
/// message's header, a few hundred) past a page boundary, and a body landed on a page
/// boundary is `h` bytes *before* its source: never in that window. Where the
/// allocator put the buffer instead (16 bytes past a page for a mapped block, anywhere
/// for a heap block, which glibc switches to after the first large free) decided
/// whether a 1 MiB echo over stdio took 1x or 2x its usual time. Sockets were not
/// sensitive to it (within 4 % at every offset tried).
pub(super) struct Landing {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

/// The page size [`Landing`] aligns to.
const PAGE: usize = 4096;

impl Landing {
    /// `len` bytes of `storage`, page-aligned; `storage`'s length marks how much of it
    /// was ever initialized.
    fn new(mut storage: Vec<u8>, len: usize) -> Self {
        let room = len + PAGE - 1;
        if storage.capacity() < room {
            storage.reserve_exact(room - storage.len());
        }
        let start = storage.as_ptr().align_offset(PAGE).min(PAGE - 1);
        if storage.len() < start + len {
            // Zeroes only what was never initialized (nothing, once warm).
            storage.resize(start + len, 0);
        }
        Landing {
            storage,
            start,
            len,
        }
    }

    /// All of `storage` (a body read into a fresh buffer).
    fn whole(storage: Vec<u8>) -> Self {
        let len = storage.len();
        Landing {
            storage,
            start: 0,
            len,
        }
    }

    /// The body's bytes.
    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The bytes to read the body into.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// The Arrow buffer over a body that was read into `bytes`, holding `reservation` (the
/// memory budget's share) for as long as any array refers to it.
pub(super) fn body(bytes: Vec<u8>, reservation: Option<Reservation>) -> Buffer {
    if bytes.is_empty() && reservation.is_none() {
        return empty_body();
    }
    if bytes.len() < BODY_POOL_MIN && reservation.is_none() {
        return Buffer::from_vec(bytes);
    }
    landed(Landing::whole(bytes), reservation)
}

/// The Arrow buffer over a body read into `landing` (see [`body`]).
pub(super) fn landed(landing: Landing, reservation: Option<Reservation>) -> Buffer {
    Buffer::from(bytes::Bytes::from_owner(PooledBody {
        landing,
        _reservation: reservation,
    }))
}

/// A body's bytes, given back to the spare slot of whichever thread drops them last.
struct PooledBody {
    landing: Landing,
    _reservation: Option<Reservation>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        self.landing.bytes()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // The length stays: it marks how much of the buffer is initialized.
        let bytes = std::mem::take(&mut self.landing.storage);
        if bytes.capacity() > BODY_POOL_MAX {
            return;
        }
        let _ = SPARE_BODY.try_with(|slot| {
            let spare = slot.take();
            // Keep the larger of the two.
            slot.set(if spare.capacity() >= bytes.capacity() {
                spare
            } else {
                bytes
            });
        });
    }
}

/// A few entries, the oldest replaced first.
pub(super) struct Ring<T> {
    entries: Vec<T>,
    next: usize,
}

impl<T> Ring<T> {
    pub(super) const fn new() -> Self {
        Ring {
            entries: Vec::new(),
            next: 0,
        }
    }

    pub(super) fn entries(&self) -> &[T] {
        &self.entries
    }

    pub(super) fn push(&mut self, entry: T) {
        if self.entries.len() < RING_ENTRIES {
            self.entries.push(entry);
        } else {
            let at = self.next;
            self.entries[at] = entry;
            self.next = (at + 1) % RING_ENTRIES;
        }
    }
}

/// Appends the framed schema message `schema` was encoded to before on this thread;
/// `false` when there is none.
pub(super) fn write_encoded_schema(schema: &Schema, out: &mut Vec<u8>) -> bool {
    ENCODED_SCHEMAS
        .try_with(|cache| {
            let cache = cache.borrow();
            let found = cache.entries.iter().find(|(cached, _)| cached == schema);
            found
                .map(|(_, framed)| out.extend_from_slice(framed))
                .is_some()
        })
        .unwrap_or(false)
}

/// Remembers the framed schema message of a dictionary-free `schema`.
pub(super) fn remember_encoded_schema(schema: &Schema, framed: &[u8]) {
    if framed.len() > CACHED_MESSAGE_MAX {
        return;
    }
    let _ = ENCODED_SCHEMAS.try_with(|cache| {
        cache.borrow_mut().push((schema.clone(), framed.to_vec()));
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};

    use super::PAGE;
    use crate::wire::{Limits, encode_stream, read_message};

    #[test]
    fn large_bodies_land_on_a_page_once_the_spare_is_warm() {
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(0..40_000));
        let batch = RecordBatch::try_from_iter([("x", values)]).unwrap();
        let bytes = encode_stream(&batch.schema(), std::slice::from_ref(&batch)).unwrap();
        let limits = Limits::default();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let mut r = &bytes[..];
            let _schema = read_message(&mut r, &limits, true).unwrap().unwrap();
            let message = read_message(&mut r, &limits, false).unwrap().unwrap();
            assert_eq!(message.body().len(), 320_000);
            starts.push(message.body().as_ptr() as usize % PAGE);
            // The body's buffer goes back to the spare slot here.
        }
        // The first body is read into a fresh buffer; the spare then holds the next ones
        // at a page boundary.
        assert_eq!(starts[1..], [0, 0], "{starts:?}");
    }
}

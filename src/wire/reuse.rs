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
/// A spare comes back `Pooled` with its length set to `len`: its bytes are stale
/// (the caller overwrites all of them) but initialized, so reading into it zeroes
/// nothing. Reading into a `Fresh` buffer through `read_to_end` zeroes each part once.
pub(super) fn body_buffer(len: usize, first_step: usize) -> BodyBuffer {
    if len >= BODY_POOL_MIN {
        let mut spare = SPARE_BODY.try_with(Cell::take).unwrap_or_default();
        if spare.capacity() >= len {
            // Zeroes only what was never initialized (nothing, once warm).
            spare.resize(len, 0);
            return BodyBuffer::Pooled(spare);
        }
        // Too small for this body: keep it for the next one.
        let _ = SPARE_BODY.try_with(|slot| slot.set(spare));
    }
    BodyBuffer::Fresh(Vec::with_capacity(len.min(first_step)))
}

/// Where a body is read into (see [`body_buffer`]).
pub(super) enum BodyBuffer {
    /// The thread's spare, already `len` bytes long.
    Pooled(Vec<u8>),
    /// A new, empty buffer with room for the first part of the body.
    Fresh(Vec<u8>),
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
    Buffer::from(bytes::Bytes::from_owner(PooledBody {
        bytes,
        _reservation: reservation,
    }))
}

/// A body's bytes, given back to the spare slot of whichever thread drops them last.
struct PooledBody {
    bytes: Vec<u8>,
    _reservation: Option<Reservation>,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // The length stays: it marks how much of the buffer is initialized.
        let bytes = std::mem::take(&mut self.bytes);
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

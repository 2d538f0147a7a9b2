//! Shared-memory side channel: the POSIX segment that carries large batches between a
//! client and a worker on the same host, in the reference's (vgi-rpc 0.52.2) layout.
//!
//! The segment ([`Segment`]) is wired to the engines through the side-channel seam
//! (`crate::wire::SideChannel`): [`ShmChannel`] is a segment as a side channel (pointer
//! batches out, zero-copy batches in), [`ShmHost`] attaches the segments clients name on
//! the worker's pipe and Unix-socket connections, and a client opened with
//! `ConnectOptions::with_shm(size)` creates one per connection, offers it with
//! `__transport_options__` and uses it only if the worker says `true`.
//!
//! # The segment
//! The client creates a segment (`psm_xxxxxxxx`, mode 0600) and advertises it in request
//! metadata (`vgi_rpc.shm_segment_name` / `vgi_rpc.shm_segment_size`). The worker
//! [attaches](Segment::attach) read-write on first sight and keeps the mapping for the
//! connection. A 64 KiB header (`VGIS`, version 1, `data_size`, a sorted table of at most
//! 4094 `{offset, length}` allocations) precedes the data region; the exact layout is in
//! `header.rs`. The writer of a large batch [allocates](Segment::allocate) a region
//! (first fit; reserve `encoded + `[`STREAM_OVERHEAD`] as the reference does), encodes
//! into it and [publishes](RegionMut::publish) `(offset, written)` as a 0-row pointer
//! batch. **The reader frees** it: zero-copy through [`Segment::claim`], whose
//! [`SharedRegion`] (or the Arrow [`arrow_buffer::Buffer`] made from it) releases the
//! region when its last reference drops, or by offset with [`Segment::free`].
//!
//! # Concurrency rule
//! Both sides allocate (client: requests and stream inputs; worker: results and stream
//! outputs) and both free (whatever they read). The header has no lock — the reference
//! has none and its layout leaves no room for one. Instead the protocol's lockstep turn is
//! the lock: **a side changes the table only while it holds the turn**, i.e. after it has
//! read the peer's message for this turn and before it has sent its own end of the turn
//! (the worker's output EOS; the client's request or stream input). Within one process a
//! mutex serialises table updates between threads.
//!
//! Only [`Segment::allocate`], [`Segment::free`] and [`Segment::reclaim`] touch the
//! header. [`Segment::claim`] does not read it: the reference worker frees its last stream
//! input after writing the output pointer (before EOS), so a reader that looked at the
//! table then could see it mid-update. An Arrow buffer can be dropped at any moment, on any
//! thread, so dropping never writes the header either: it queues the offset for the next
//! `allocate`, `free` or `reclaim`. The transports call `reclaim` where the reference
//! frees: the client before it sends each request or stream input (answers dropped
//! since), the worker before it sends each turn's output (inputs consumed by then), so
//! our worker's last output batch and its EOS leave in one write with no table update
//! between them. A region held past that point stays allocated (the peer will not reuse
//! it) until a later turn.
//!
//! **Residual window (reference workers).** A reference worker whose exchange stream
//! finishes on its own frees its last *pointer* input after writing the last output
//! batch and before its EOS. A client that writes the table in that window — its next
//! input's allocation or reclaim — races with that free. The reference's own client has
//! the same window; producer streams (whose inputs are ticks, never pointers) and streams
//! the client ends are not affected.
//!
//! # Validation and the truncation defence
//! Nothing from the peer is trusted. Each header transaction copies the header out of the
//! mapping, validates the copy (magic, version, `data_size` against the real file size,
//! `num_allocs` ≤ 4094, entries non-empty, sorted, non-overlapping, inside
//! `[65536, size)`, no overflow) and works on it. A claimed pointer must lie inside the
//! data region without overflow and must not overlap a region this process is writing;
//! new allocations keep clear of every region this process still holds, even if a
//! misbehaving peer dropped it from the table, so no two local handles ever alias. Failures
//! are [`crate::Error::Protocol`] errors, never panics.
//!
//! A peer that shrinks the file would make any touch of the cut-off pages raise SIGBUS.
//! So every operation first `fstat`s the segment and refuses unless the file still backs
//! the whole mapping ("segment truncated or resized"). **Residual risk:** a truncation
//! between that check and the access, or while a [`SharedRegion`] or buffer is read later,
//! still raises SIGBUS. `MAP_POPULATE` and `mlock` do not close the window (truncating a
//! shared file mapping removes the pages from every mapping, locked or not, and the
//! re-fault past end-of-file is SIGBUS); `F_SEAL_SHRINK` would, but seals exist only for
//! memfd, which a peer attaching by name (as the reference does) cannot open; a SIGBUS
//! handler with `siglongjmp` is process-global and unsound in Rust; reading through
//! `pread` would be safe but is a copy. Since the peer is a co-located process of the same
//! user that the client started or dialled, and no vgi-rpc implementation ever truncates a
//! segment, the check (which deterministically catches a segment already damaged) plus
//! this documented window is the trade-off.
//!
//! # No leaked segments
//! - The worker never owns the name; the creator's last handle unlinks it on drop.
//! - The client should [unlink](Segment::unlink) the name as soon as the worker holds its
//!   own mapping: the reference worker attaches on the first request naming the segment
//!   and caches the mapping per connection (later requests still carry the name and
//!   match the cache without reopening it), so once the first response to such a request
//!   has arrived the name is no longer needed. The client does exactly that: the first
//!   successful answer to a request that named the segment (not the
//!   `__transport_options__` offer, which the reference answers without attaching)
//!   unlinks it ([`ShmChannel`]'s `established`). From then on a `kill -9` of either side
//!   leaves nothing in `/dev/shm`: the memory goes with the last mapping.
//! - A `kill -9` of the client before that leaves the name behind. The creator holds a
//!   shared `flock` on the segment for as long as it is mapped and tags the 8 header bytes
//!   the reference leaves unassigned; [`sweep_orphans`] (Linux) removes `psm_*` segments
//!   with our tag whose lock nobody holds (the kernel drops a dead process's locks). The
//!   client end calls it once, before it creates its first segment. Segments made by other
//!   implementations carry no tag and are never swept.

mod alloc;
mod channel;
#[cfg(test)]
mod channel_tests;
#[cfg(target_os = "linux")]
mod cleanup;
mod header;
#[cfg(test)]
mod interop_tests;
mod os;
mod segment;
#[cfg(test)]
mod tests;

pub use crate::wire::ShmPointer;
pub use channel::{ShmChannel, ShmHost, min_batch_bytes, segment_of};
#[cfg(target_os = "linux")]
pub use cleanup::sweep_orphans;
pub use segment::{RegionMut, Segment, SharedRegion};

/// Size of the segment header; the data region starts at this offset.
pub const HEADER_SIZE: u64 = header::HEADER_SIZE;
/// Capacity of the allocation table (`(65536 - 24) / 16`).
pub const MAX_ALLOCATIONS: usize = header::MAX_ALLOCS;
/// What the reference adds to a batch's encoded size when it reserves a region for the
/// whole IPC stream (schema message + EOS framing): reserve `encoded + 4096` bytes.
pub const STREAM_OVERHEAD: usize = 4096;
/// Prefix of the names of segments created here (and by the reference).
pub const NAME_PREFIX: &str = "psm_";

/// Why a segment operation failed; surfaced as [`crate::Error::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShmError {
    #[error("shm segment header has bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("shm segment header version {0} is not supported (expected 1)")]
    UnsupportedVersion(u32),
    #[error("shm segment data_size {data_size} does not match the segment (expected {expected})")]
    DataSizeMismatch { data_size: u64, expected: u64 },
    #[error("shm allocation table claims {0} entries (at most 4094)")]
    TooManyAllocations(u32),
    #[error("shm segment header is cut short ({0} bytes)")]
    HeaderTooShort(usize),
    #[error("shm segment size {0} is out of range (must exceed the 65536-byte header)")]
    BadSize(u64),
    #[error("shm allocation {index} ({offset}, {length}) is corrupt: {reason}")]
    BadEntry {
        index: usize,
        offset: u64,
        length: u64,
        reason: &'static str,
    },
    #[error("no shm allocation at offset {0}")]
    NoAllocation(u64),
    #[error("shm segment truncated or resized under us: {actual} bytes, mapped {expected}")]
    Resized { expected: u64, actual: u64 },
    #[error("cannot fstat the shm segment: {0}")]
    Stat(String),
    #[error("{0:?} is not a shared-memory segment")]
    NotASegment(String),
    #[error("invalid shm segment name {0:?}")]
    BadName(String),
    #[error("shm pointer ({}, {}) does not name a range of the data region", .0.offset, .0.length)]
    BadPointer(ShmPointer),
    #[error("shm region at offset {0} is still held by this process")]
    InUse(u64),
    #[error("wrote {written} bytes into a shm region of {capacity}")]
    Overrun { written: usize, capacity: usize },
}

impl From<ShmError> for crate::Error {
    fn from(e: ShmError) -> Self {
        crate::Error::Protocol(e.to_string())
    }
}

//! The region handles borrowed from a [`Segment`](super::Segment): one this side is
//! writing ([`RegionMut`]) and one a peer published to it ([`SharedRegion`]), each
//! keeping the mapping alive and freeing its range when dropped. Part of the segment
//! module's `unsafe` (its three blocks here borrow the mapping as slices or hand it to
//! Arrow); the ranges were checked when the segment made the handles.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_buffer::alloc::Allocation;

use super::Shared;
use crate::Result;
use crate::transport::shm::{ShmError, ShmPointer};

/// A region this side reserved and is writing; [`RegionMut::publish`] hands it to the
/// peer. Dropped unpublished, it is freed at this side's next turn.
///
/// ```no_run
/// # fn demo(segment: &vgi_rpc::transport::shm::Segment, payload: &[u8]) -> vgi_rpc::Result<()> {
/// use std::io::Write;
/// if let Some(mut region) = segment.allocate(payload.len())? {
///     let mut cursor = std::io::Cursor::new(region.as_mut_slice());
///     cursor.write_all(payload)?; // an IPC writer can encode straight into the cursor
///     let written = cursor.position() as usize;
///     let pointer = region.publish(written)?; // -> vgi_rpc.shm_offset / shm_length
///     # let _ = pointer;
/// }
/// # Ok(()) }
/// ```
pub struct RegionMut {
    pub(super) shared: Arc<Shared>,
    pub(super) offset: u64,
    pub(super) capacity: usize,
    pub(super) published: bool,
}

impl RegionMut {
    /// Absolute offset in the segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes reserved (the table entry's length), at least what was asked for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The whole reservation, to write the payload into.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: [offset, offset + capacity) is the entry `allocate` inserted into a
        // validated table, so it lies inside the mapping, which `self.shared` keeps alive.
        // No other handle of this process overlaps it: `allocate` kept clear of every held
        // region, and `claim` refuses ranges overlapping a region being written, both under
        // the state lock; `RegionMut` is not Clone and `&mut self` makes this borrow
        // exclusive. The peer does not touch a region before it is published to it (a peer
        // that breaks this can only change byte values, all valid `u8`s).
        unsafe { std::slice::from_raw_parts_mut(self.shared.at(self.offset), self.capacity) }
    }

    /// Hands the region to the peer: returns the pointer to put in the batch metadata
    /// (`written` bytes at `offset`; the table keeps the full reservation, as the
    /// reference does). The reader frees it.
    ///
    /// # Errors
    /// [`Error::Protocol`](crate::Error::Protocol) if `written` exceeds the capacity (the region is then freed).
    pub fn publish(mut self, written: usize) -> Result<ShmPointer> {
        if written > self.capacity {
            return Err(ShmError::Overrun {
                written,
                capacity: self.capacity,
            }
            .into());
        }
        self.published = true;
        // The peer owns it now (and frees it); nothing here references it any more.
        self.shared.lock().held.remove(&self.offset);
        Ok(ShmPointer {
            offset: self.offset,
            length: written as u64,
        })
    }
}

impl Drop for RegionMut {
    fn drop(&mut self) {
        if !self.published {
            self.shared.release(self.offset);
        }
    }
}

impl fmt::Debug for RegionMut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegionMut")
            .field("offset", &self.offset)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A peer's region held by this process (zero-copy). Clones share it; when the last
/// clone and every [`Buffer`] made by [`SharedRegion::into_buffer`] are dropped, the
/// region is queued for freeing at this side's next turn ([`Segment::reclaim`](super::Segment::reclaim)).
#[derive(Clone)]
pub struct SharedRegion {
    pub(super) owner: Arc<RegionOwner>,
}

/// Keeps the mapping alive and frees the region on drop; the owner of Arrow buffers.
pub(super) struct RegionOwner {
    pub(super) shared: Arc<Shared>,
    pub(super) offset: u64,
    pub(super) len: usize,
}

impl Drop for RegionOwner {
    fn drop(&mut self) {
        self.shared.release(self.offset);
    }
}

impl SharedRegion {
    /// The pointer this region was claimed with.
    pub fn pointer(&self) -> ShmPointer {
        ShmPointer {
            offset: self.owner.offset,
            length: self.owner.len as u64,
        }
    }

    /// Length of the payload in bytes.
    pub fn len(&self) -> usize {
        self.owner.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.owner.len == 0
    }

    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `claim` checked [offset, offset + len) lies inside the mapping (and that
        // the file still backs it); `owner.shared` keeps the mapping alive for this borrow.
        // While the owner lives the range is held: no `RegionMut` of this process overlaps
        // it (see `RegionMut::as_mut_slice`) and it is not freed, so the peer does not
        // reuse it (a peer that does can only change byte values, all valid `u8`s).
        unsafe { std::slice::from_raw_parts(self.owner.shared.at(self.owner.offset), self.len()) }
    }

    /// An Arrow [`Buffer`] over the region without copying; the region is released when
    /// the last buffer (and handle) drops.
    pub fn into_buffer(self) -> Buffer {
        let ptr =
            NonNull::new(self.owner.shared.at(self.owner.offset)).unwrap_or_else(NonNull::dangling);
        let len = self.len();
        let owner: Arc<dyn Allocation> = self.owner;
        // SAFETY: `ptr` is valid for reads of `len` bytes for as long as `owner` lives, and
        // this process does not write them meanwhile (both as argued in `as_slice`); the
        // buffer keeps `owner` alive. Alignment is not required by `Buffer`.
        unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
    }
}

impl fmt::Debug for SharedRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRegion")
            .field("pointer", &self.pointer())
            .finish_non_exhaustive()
    }
}

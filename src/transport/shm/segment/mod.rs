//! The mapping: creating, attaching, unlinking and accessing one POSIX shared-memory
//! segment, and the region handles that borrow from it.
//!
//! This is the only module of the crate that reads or writes memory through raw pointers
//! (elsewhere `unsafe` only marks the opt-out from validation, `Limits::with_validation`):
//! six blocks, here and in the region handles of [`region`], that read or write the mapping
//! or hand a range of it to Arrow. Every range is checked
//! against the mapping's length first (the header range is constant; data ranges come
//! from a validated table or a bounds-checked pointer), and every operation is preceded by
//! an `fstat` that proves the file still backs the whole mapping (see the [module
//! docs](super) for the residual window).
// The workspace denies `unsafe_code`; a shared mapping cannot be read, written or handed
// to Arrow without raw pointers, so this one module opts out. Each block says why it holds.
#![allow(unsafe_code)]

mod region;

use region::RegionOwner;
pub use region::{RegionMut, SharedRegion};

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use memmap2::MmapRaw;
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, FlockOperation, Mode};
use rustix::io::Errno;
use rustix::shm;

use super::header::{
    ENTRY_SIZE, Entry, FIXED_SIZE, Fixed, HEADER_SIZE, NUM_ALLOCS_AT, OWNER_TAG, OWNER_TAG_AT,
    TABLE_AT, Table, VERSION, VERSION_AT, check_segment_size,
};
use super::os::{UnlinkOnError, file_size, io_error, map, open_flags, open_new, shm_path};
use super::{ShmError, ShmPointer};
use crate::{Error, Result};

/// A mapped shared-memory segment in the reference's layout: a 64 KiB header with the
/// allocation table, then the data region.
///
/// Cloning is cheap and shares the mapping. The mapping (and, for the creator, the name)
/// lives until the last `Segment`, [`RegionMut`], [`SharedRegion`] or Arrow [`Buffer`](arrow_buffer::Buffer)
/// made from it is dropped; [`Segment::unlink`] removes the name earlier.
#[derive(Clone)]
pub struct Segment {
    shared: Arc<Shared>,
}

/// The state behind every handle to one mapping.
struct Shared {
    map: MmapRaw,
    /// Kept open: `fstat` before each access, and (creator) the liveness lock.
    fd: OwnedFd,
    name: String,
    /// The file size when mapped; the mapping's length.
    size: u64,
    owner: bool,
    unlinked: AtomicBool,
    /// Serialises this process's header updates and holds its deferred frees.
    state: Mutex<LocalState>,
}

/// This process's live handles into the data region and its deferred frees.
#[derive(Default)]
struct LocalState {
    /// Regions with live local references, by offset. New allocations keep clear of them
    /// even if a misbehaving peer dropped them from the table, so no two handles alias.
    held: HashMap<u64, Hold>,
    /// Regions whose last local reference dropped; freed at the next turn.
    pending: Vec<u64>,
}

#[derive(Clone, Copy)]
struct Hold {
    /// Bytes accessed through the handle.
    len: u64,
    /// A [`RegionMut`] (exclusive) rather than a [`SharedRegion`].
    writing: bool,
}

impl LocalState {
    fn held_ranges(&self) -> Vec<Entry> {
        self.held
            .iter()
            .map(|(&offset, h)| Entry {
                offset,
                length: h.len,
            })
            .collect()
    }

    /// Drops the deferred frees from `table`, except regions held again meanwhile (they
    /// are freed when released again); returns them so a failed store can restore them.
    fn apply_pending(&mut self, table: &mut Table) -> Vec<u64> {
        let pending = std::mem::take(&mut self.pending);
        for &offset in &pending {
            if !self.held.contains_key(&offset) && table.free(offset).is_err() {
                tracing::debug!(offset, "shm region already freed before our deferred free");
            }
        }
        pending
    }

    fn release(&mut self, offset: u64) {
        self.held.remove(&offset);
        self.pending.push(offset);
    }
}

impl Segment {
    /// Creates a new segment of `size` bytes (header included) under a fresh random name
    /// (`psm_` + 8 hex digits, like the reference), with an empty allocation table.
    ///
    /// The creator holds a shared `flock` on the segment for as long as it is mapped, so
    /// [`super::sweep_orphans`] can recognise a segment whose creator was killed.
    ///
    /// # Errors
    /// [`Error::Protocol`] if `size` is not larger than the 64 KiB header; [`Error::Io`]
    /// when `shm_open`, `ftruncate` or `mmap` fail.
    pub fn create(size: usize) -> Result<Segment> {
        let requested = u64::try_from(size).map_err(|_| ShmError::BadSize(u64::MAX))?;
        check_segment_size(requested)?;
        let (name, fd) = open_new()?;
        let guard = UnlinkOnError(Some(name));
        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared)
            .map_err(|e| io_error("flock", guard.name(), e))?;
        rustix::fs::ftruncate(&fd, requested)
            .map_err(|e| io_error("ftruncate", guard.name(), e))?;
        // Some systems round the size up to a page; the header records what was mapped.
        let size = file_size(&fd, guard.name())?;
        check_segment_size(size)?;
        let map = map(&fd, size, guard.name())?;
        let shared = Shared::new(map, fd, guard.defuse(), size, true);
        shared.initialise()?;
        Ok(Segment {
            shared: Arc::new(shared),
        })
    }

    /// Attaches to an existing segment by the name a client advertised
    /// (`vgi_rpc.shm_segment_name`), read-write, since the worker allocates its results in
    /// the client's segment. The size comes from `fstat`, and the header (magic, version,
    /// `data_size` against that size, the whole allocation table) is validated before
    /// anything is trusted.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a malformed name, a non-segment file or a corrupt header;
    /// [`Error::Io`] when `shm_open` or `mmap` fail (e.g. no such segment).
    pub fn attach(name: &str) -> Result<Segment> {
        let path = shm_path(name)?;
        let fd = shm::open(path.as_str(), open_flags(), Mode::empty())
            .map_err(|e| io_error("shm_open", name, e))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error("fstat", name, e))?;
        if !FileType::from_raw_mode(stat.st_mode).is_file() {
            return Err(ShmError::NotASegment(name.to_owned()).into());
        }
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        check_segment_size(size)?;
        let map = map(&fd, size, name)?;
        let shared = Shared::new(map, fd, name.to_owned(), size, false);
        shared.snapshot()?;
        Ok(Segment {
            shared: Arc::new(shared),
        })
    }

    /// The segment's OS name, as advertised on the wire (no leading `/`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Total size in bytes, header included (`vgi_rpc.shm_segment_size`).
    pub fn size(&self) -> u64 {
        self.shared.size
    }

    /// Whether `address` lies inside this process's mapping of the segment (a zero-copy
    /// batch's buffers do).
    pub fn contains_address(&self, address: usize) -> bool {
        let start = self.shared.map.as_ptr() as usize;
        (start..start.saturating_add(self.shared.map.len())).contains(&address)
    }

    /// Whether this process created the segment (and so unlinks its name).
    pub fn is_owner(&self) -> bool {
        self.shared.owner
    }

    /// Removes the segment's name so no new process can attach; existing mappings stay
    /// valid. Idempotent. The client calls this once the worker holds its own mapping
    /// (see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::Io`] if `shm_unlink` fails for a reason other than the name being gone.
    pub fn unlink(&self) -> Result<()> {
        self.shared.unlink()
    }

    /// Reserves at least `len` bytes (at least one; rounded up to 64, starting 64-aligned)
    /// with the first-fit rule, after applying this side's deferred frees. `Ok(None)` when
    /// the table (4094 entries) or the data region is full: send the batch inline.
    ///
    /// Call only while this side holds the turn (see the [module docs](super)).
    ///
    /// # Errors
    /// [`Error::Protocol`] if the segment was truncated or its header is corrupt.
    pub fn allocate(&self, len: usize) -> Result<Option<RegionMut>> {
        let mut state = self.shared.lock();
        let held = state.held_ranges();
        let size = self.shared.size;
        let entry = self.shared.update(&mut state, |table| {
            Ok(table.allocate_excluding(len as u64, size, &held))
        })?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let hold = Hold {
            len: entry.length,
            writing: true,
        };
        state.held.insert(entry.offset, hold);
        Ok(Some(RegionMut {
            shared: Arc::clone(&self.shared),
            offset: entry.offset,
            // Inside the mapping (validated table), whose length is a usize.
            capacity: entry.length as usize,
            published: false,
        }))
    }

    /// Frees the region starting at `offset` now (the reference's `free`), together with
    /// any deferred frees. Call only while this side holds the turn.
    ///
    /// # Errors
    /// [`Error::Protocol`] if no allocation starts at `offset`, a [`SharedRegion`] or
    /// [`RegionMut`] of this process still holds it, or the segment is truncated or
    /// corrupt.
    pub fn free(&self, offset: u64) -> Result<()> {
        let mut state = self.shared.lock();
        if state.held.contains_key(&offset) {
            return Err(ShmError::InUse(offset).into());
        }
        self.shared
            .update(&mut state, |table| table.free(offset).map(drop))
            .map_err(Error::from)
    }

    /// Applies the frees deferred by dropped [`SharedRegion`]s, Arrow buffers and
    /// unpublished [`RegionMut`]s; returns how many deferred frees it applied. The transport
    /// calls this at each turn boundary where the reference frees (see the
    /// [module docs](super)).
    ///
    /// # Errors
    /// [`Error::Protocol`] if the segment is truncated or its header is corrupt.
    pub fn reclaim(&self) -> Result<usize> {
        let mut state = self.shared.lock();
        let n = state.pending.len();
        if n > 0 {
            self.shared.update(&mut state, |_| Ok(()))?;
        }
        Ok(n)
    }

    /// Takes the region a peer's pointer names (zero-copy): it is freed, at this side's
    /// next turn, when the returned handle and every [`Buffer`](arrow_buffer::Buffer) made from it are dropped
    /// (the reader frees).
    ///
    /// The pointer is checked against the segment — inside the data region, no overflow,
    /// file not truncated, not overlapping a region this process is writing — but not
    /// against the allocation table: the reference's readers never read the header, and
    /// its worker may legally update it (freeing its last stream input) while our side
    /// reads the output pointer, so a header read here could see a torn table.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a pointer outside the data region, a truncated segment, or a
    /// region this process already holds.
    pub fn claim(&self, pointer: ShmPointer) -> Result<SharedRegion> {
        let mut state = self.shared.lock();
        self.shared.ensure_intact()?;
        let end = pointer
            .offset
            .checked_add(pointer.length)
            .filter(|&end| pointer.offset >= HEADER_SIZE && end <= self.shared.size)
            .ok_or(ShmError::BadPointer(pointer))?;
        let overlaps_a_write = state.held.iter().any(|(&offset, h)| {
            h.writing && offset < end && pointer.offset < offset.saturating_add(h.len)
        });
        if overlaps_a_write || state.held.contains_key(&pointer.offset) {
            return Err(ShmError::InUse(pointer.offset).into());
        }
        let hold = Hold {
            len: pointer.length,
            writing: false,
        };
        state.held.insert(pointer.offset, hold);
        Ok(SharedRegion {
            owner: Arc::new(RegionOwner {
                shared: Arc::clone(&self.shared),
                offset: pointer.offset,
                // Inside the mapping, whose length is a usize.
                len: pointer.length as usize,
            }),
        })
    }

    /// The validated allocation table as `(offset, length)` pairs, sorted by offset.
    ///
    /// # Errors
    /// [`Error::Protocol`] if the segment is truncated or its header is corrupt.
    pub fn allocations(&self) -> Result<Vec<(u64, u64)>> {
        let _state = self.shared.lock();
        let table = self.shared.snapshot()?;
        Ok(table
            .entries()
            .iter()
            .map(|e| (e.offset, e.length))
            .collect())
    }

    /// Checks that the file still has its mapped size and the header is valid.
    ///
    /// # Errors
    /// [`Error::Protocol`] describing the first problem found.
    pub fn check(&self) -> Result<()> {
        let _state = self.shared.lock();
        self.shared.snapshot().map(drop).map_err(Error::from)
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.shared.name)
            .field("size", &self.shared.size)
            .field("owner", &self.shared.owner)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn new(map: MmapRaw, fd: OwnedFd, name: String, size: u64, owner: bool) -> Self {
        Shared {
            map,
            fd,
            name,
            size,
            owner,
            unlinked: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LocalState> {
        // The state is a list of offsets: consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails unless the file still backs the whole mapping. A peer that shrank the file
    /// would make touching the cut-off pages raise SIGBUS; this turns it into an error.
    fn ensure_intact(&self) -> Result<(), ShmError> {
        let stat = rustix::fs::fstat(&self.fd).map_err(|e| ShmError::Stat(e.to_string()))?;
        let actual = u64::try_from(stat.st_size).unwrap_or(0);
        if actual != self.size {
            return Err(ShmError::Resized {
                expected: self.size,
                actual,
            });
        }
        Ok(())
    }

    /// Pointer to byte `offset` of the mapping (computed without `unsafe`; only the
    /// accesses through it need arguing, and each one checks its range first).
    fn at(&self, offset: u64) -> *mut u8 {
        debug_assert!(offset <= self.size);
        self.map.as_mut_ptr().wrapping_add(offset as usize)
    }

    /// The header's version field, accessed atomically so that a header published by
    /// writing the version last is seen whole.
    fn version(&self) -> &AtomicU32 {
        // SAFETY: bytes 4..8 lie inside the mapping (size > 65536) and are 4-byte aligned
        // (the mapping is page-aligned). The mapping outlives `&self`. Other accesses to
        // these bytes are the peer's plain 4-byte stores, made while it holds the turn;
        // the protocol's turn hand-off (a pipe round trip) orders them with ours.
        unsafe { AtomicU32::from_ptr(self.at(VERSION_AT as u64).cast::<u32>()) }
    }

    /// Copies `buf.len()` header bytes starting at `at` out of the mapping.
    fn read_header(&self, at: usize, buf: &mut [u8]) {
        assert!(
            at + buf.len() <= HEADER_SIZE as usize,
            "header read out of range"
        );
        // SAFETY: the range lies inside the header, inside the mapping (asserted above;
        // size > HEADER_SIZE); the caller checked the file still backs it. `buf` is a
        // local buffer, so the ranges cannot overlap. Copying once and validating the copy
        // means a concurrent peer write cannot change bytes between check and use.
        unsafe { std::ptr::copy_nonoverlapping(self.at(at as u64), buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `bytes` into the header at `at`.
    fn write_header(&self, at: usize, bytes: &[u8]) {
        assert!(
            at + bytes.len() <= HEADER_SIZE as usize,
            "header write out of range"
        );
        // SAFETY: as in `read_header`; the mapping is writable (PROT_READ|PROT_WRITE) and
        // only this process's table lock holder writes the header, while it holds the turn.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(at as u64), bytes.len()) }
    }

    /// Writes an empty header, version last (a peer that sees version 1 sees the rest).
    fn initialise(&self) -> Result<(), ShmError> {
        self.ensure_intact()?;
        let fixed = Fixed::encode_initial(self.size);
        self.write_header(0, &fixed[..VERSION_AT]);
        self.write_header(VERSION_AT + 4, &fixed[VERSION_AT + 4..]);
        self.write_header(OWNER_TAG_AT, &OWNER_TAG);
        self.version().store(VERSION, Ordering::Release);
        Ok(())
    }

    /// A validated copy of the allocation table.
    fn snapshot(&self) -> Result<Table, ShmError> {
        self.ensure_intact()?;
        let version = self.version().load(Ordering::Acquire);
        let mut fixed = [0u8; FIXED_SIZE];
        self.read_header(0, &mut fixed);
        fixed[VERSION_AT..VERSION_AT + 4].copy_from_slice(&version.to_le_bytes());
        let num = Fixed::decode(&fixed).validate(self.size)?;
        let mut entries = vec![0u8; num * ENTRY_SIZE];
        self.read_header(TABLE_AT, &mut entries);
        Table::parse(&entries, num, self.size)
    }

    /// Writes the table back: entries first, then the count.
    fn store(&self, table: &Table) -> Result<(), ShmError> {
        self.ensure_intact()?;
        self.write_header(TABLE_AT, &table.encode_entries());
        self.write_header(NUM_ALLOCS_AT, &table.encode_count());
        Ok(())
    }

    /// One header transaction in this side's turn: validate a fresh copy, apply the
    /// deferred frees, run `op`, store the table if anything changed. On failure the
    /// deferred frees stay queued.
    fn update<T>(
        &self,
        state: &mut LocalState,
        op: impl FnOnce(&mut Table) -> Result<T, ShmError>,
    ) -> Result<T, ShmError> {
        let before = self.snapshot()?;
        let mut table = before.clone();
        let pending = state.apply_pending(&mut table);
        let result = op(&mut table).and_then(|value| {
            if table != before {
                self.store(&table)?;
            }
            Ok(value)
        });
        if result.is_err() {
            state.pending.extend(pending);
        }
        result
    }

    /// The last local reference to a region is gone: queue its free for the next turn.
    fn release(&self, offset: u64) {
        self.lock().release(offset);
    }

    fn unlink(&self) -> Result<()> {
        if self.unlinked.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match shm::unlink(shm_path(&self.name)?.as_str()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => {
                self.unlinked.store(false, Ordering::Release);
                Err(io_error("shm_unlink", &self.name, e))
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.owner
            && let Err(e) = self.unlink()
        {
            tracing::warn!(name = %self.name, error = %e, "could not unlink shm segment");
        }
    }
}

#[cfg(test)]
impl Segment {
    /// Overwrites header bytes, to simulate a corrupt peer.
    pub(super) fn write_header_for_test(&self, at: usize, bytes: &[u8]) {
        self.shared.write_header(at, bytes);
    }

    /// Shrinks (or grows) the file under every mapping, as a hostile peer could.
    pub(super) fn resize_for_test(&self, len: u64) {
        rustix::fs::ftruncate(&self.shared.fd, len).unwrap();
    }

    /// Offsets waiting for the next turn.
    pub(super) fn pending_for_test(&self) -> Vec<u64> {
        self.shared.lock().pending.clone()
    }
}

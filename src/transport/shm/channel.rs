//! The shared-memory side channel: a [`Segment`] behind the engines'
//! [`SideChannel`] seam, and the worker's [`ShmHost`] that attaches the segments clients
//! name.
//!
//! A batch goes through the segment when it has rows and at least
//! [`min_batch_bytes`] of data (128 KiB, the reference's crossover; override with
//! `VGI_RPC_SHM_MIN_BATCH_BYTES` as for the reference). It is encoded straight into a
//! region reserved at its exact encoded size ([`RegionEncoding`]: one copy of the column
//! data), published, and replaced on the byte stream by a pointer batch. A full segment
//! (no gap large enough, or 4094 allocations) declines the batch, logged at `info`, and
//! it goes inline. A resolved pointer is claimed zero-copy: the batch's buffers are
//! slices of the mapping and the region is released when the last one drops (applied at
//! this side's next turn boundary). It is checked at the connection's validation level
//! ([`SideChannel::resolve_with`]): full unless the caller lowered it for a worker it
//! spawned, as for batches on the pipe beside it.
//!
//! **Trust.** Offsets, lengths and the header are validated (the segment module), and
//! the region's IPC framing is checked before Arrow reads it. Zero-copy still means the
//! batch's bytes stay in memory the peer can write: a peer that broke the protocol by
//! rewriting a region after publishing it could change validated Arrow data (offsets,
//! UTF-8) under the reader. The peer is a process of the same user on the same host that
//! the client started or dialled, as with the reference; a reader that cannot grant that
//! trust must not enable shared memory.

use std::any::Any;
use std::sync::{Arc, Once, OnceLock};

use arrow_array::RecordBatch;

use super::Segment;
use crate::Result;
use crate::server::SideChannelHost;
use crate::wire::{
    Limits, Metadata, RegionEncoding, ShmPointer, SideChannel, decode_region_with, keys,
};

/// Smallest batch (bytes of Arrow data) worth sending through the segment: 128 KiB, or
/// `VGI_RPC_SHM_MIN_BATCH_BYTES` when set (the reference reads the same variable).
pub fn min_batch_bytes() -> usize {
    static MIN: OnceLock<usize> = OnceLock::new();
    *MIN.get_or_init(|| {
        std::env::var("VGI_RPC_SHM_MIN_BATCH_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(128 << 10)
    })
}

/// One side's handle on a segment, as a [`SideChannel`].
#[derive(Debug)]
pub struct ShmChannel {
    segment: Segment,
    min_batch: usize,
}

impl ShmChannel {
    /// Creates a segment of `size` bytes (header included) for a client. The first call
    /// in a process first removes segments orphaned by killed clients
    /// ([`super::sweep_orphans`], Linux).
    ///
    /// # Errors
    /// As [`Segment::create`].
    pub fn create(size: usize) -> Result<Arc<ShmChannel>> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            #[cfg(target_os = "linux")]
            match super::sweep_orphans() {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(?removed, "removed orphaned shm segments");
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot sweep orphaned shm segments"),
            }
        });
        Ok(Arc::new(Self::over(Segment::create(size)?)))
    }

    /// Attaches the segment a client named (worker side).
    ///
    /// # Errors
    /// As [`Segment::attach`].
    pub fn attach(name: &str) -> Result<Arc<ShmChannel>> {
        Ok(Arc::new(Self::over(Segment::attach(name)?)))
    }

    /// A channel over an existing segment.
    pub fn over(segment: Segment) -> ShmChannel {
        ShmChannel {
            segment,
            min_batch: min_batch_bytes(),
        }
    }

    /// Sets the smallest batch sent through the segment (tests, benchmarks).
    #[must_use]
    pub fn with_min_batch_bytes(mut self, bytes: usize) -> Self {
        self.min_batch = bytes;
        self
    }

    /// The segment.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }
}

impl SideChannel for ShmChannel {
    fn advertise(&self, metadata: &mut Metadata) {
        if self.segment.is_owner() {
            metadata.insert(keys::SHM_SEGMENT_NAME, self.segment.name());
            metadata.insert(keys::SHM_SEGMENT_SIZE, self.segment.size().to_string());
        }
    }

    fn send(&self, batch: &RecordBatch, metadata: &Metadata) -> Result<Option<Metadata>> {
        if batch.num_rows() == 0 || batch.get_array_memory_size() < self.min_batch {
            return Ok(None);
        }
        let encoding = RegionEncoding::new(batch)?;
        if encoding.len() < self.min_batch {
            return Ok(None);
        }
        let Some(mut region) = self.segment.allocate(encoding.len())? else {
            tracing::info!(
                segment = self.segment.name(),
                bytes = encoding.len(),
                "shm segment full: sending the batch inline"
            );
            return Ok(None);
        };
        let written = encoding.write_into(region.as_mut_slice())?;
        let pointer = region.publish(written)?;
        tracing::trace!(
            segment = self.segment.name(),
            ?pointer,
            "batch sent through shm"
        );
        Ok(Some(pointer.annotate(metadata)))
    }

    fn resolve(
        &self,
        pointer: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        self.resolve_with(pointer, metadata, &Limits::default())
    }

    fn resolve_with(
        &self,
        pointer: &RecordBatch,
        metadata: &Metadata,
        limits: &Limits,
    ) -> Result<(RecordBatch, Metadata)> {
        let at = ShmPointer::from_metadata(metadata)?;
        let region = self.segment.claim(at)?.into_buffer();
        let batch = decode_region_with(&region, &pointer.schema(), limits)?;
        Ok((
            batch,
            ShmPointer::resolved_metadata(metadata, self.segment.name()),
        ))
    }

    fn reclaim(&self) -> Result<()> {
        self.segment.reclaim().map(drop)
    }

    fn established(&self) {
        if self.segment.is_owner()
            && let Err(e) = self.segment.unlink()
        {
            tracing::warn!(segment = self.segment.name(), error = %e, "cannot unlink shm segment");
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The worker's [`SideChannelHost`]: attaches the shared-memory segment a client names.
/// `transport` installs it on pipe and Unix-socket connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmHost;

impl SideChannelHost for ShmHost {
    fn attach(&self, name: &str) -> Result<Arc<dyn SideChannel>> {
        Ok(ShmChannel::attach(name)?)
    }
}

/// The segment behind a side channel, if it is a shared-memory one.
pub fn segment_of(channel: &dyn SideChannel) -> Option<&Segment> {
    channel
        .as_any()
        .downcast_ref::<ShmChannel>()
        .map(ShmChannel::segment)
}

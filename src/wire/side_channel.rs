//! The side-channel seam: where a batch too large for the byte stream travels instead, and
//! the pointer batch that stands for it on the stream.
//!
//! Shared memory is the one side channel today. Its OS half (the segment) lives in
//! `vgi_rpc::transport::shm`; the engines must not know it (they never import
//! `transport`). So the engines speak to a [`SideChannel`] trait object that the
//! transport installs: the client engine gets one from its link, the server engine from
//! the connection's side-channel host when a request names a segment. What crosses the
//! seam is a batch one way and a pointer batch's metadata the other; the pointer format
//! itself ([`ShmPointer`]) and the region's byte layout (`region.rs`) are sans-IO and live
//! here, beside the rest of the framing.
//!
//! The protocol's rules the engines follow around the trait:
//! - only data batches are offered ([`SideChannel::send`]); logs, errors and zero-row
//!   batches stay inline, and a channel may decline any batch (too small, full): it is
//!   then sent inline;
//! - the reader frees: a resolved batch's region is released when its last buffer drops,
//!   and the release is applied at the reader's next turn boundary
//!   ([`SideChannel::reclaim`]): the client before it sends, the worker before it ends a
//!   turn's output (so the client never sees an output EOS while an input is still held).

use std::any::Any;
use std::fmt;

use arrow_array::RecordBatch;

use super::{Limits, Metadata, keys};
use crate::{Error, Result};

/// A channel beside the byte stream that carries large batches by reference.
///
/// Implemented by `vgi_rpc::transport::shm` (a POSIX shared-memory segment in the
/// reference's layout). Methods are called only by the side that currently holds the
/// protocol's turn, but a resolved batch's buffers may be dropped on any thread.
pub trait SideChannel: Send + Sync + fmt::Debug {
    /// Adds the keys that name this channel to a request's metadata (the client's
    /// `vgi_rpc.shm_segment_name` / `vgi_rpc.shm_segment_size`). A worker-side channel
    /// adds nothing.
    fn advertise(&self, metadata: &mut Metadata);

    /// Offers a data batch. `Ok(Some(md))`: the batch now lives in the channel and the
    /// caller sends a zero-row batch of the same schema with metadata `md` (the batch's
    /// own `metadata` plus the pointer keys) in its place. `Ok(None)`: send it inline
    /// (too small to be worth it, zero rows, or no room).
    ///
    /// # Errors
    /// The channel is damaged (a truncated or corrupt segment); callers fall back to
    /// sending inline.
    fn send(&self, batch: &RecordBatch, metadata: &Metadata) -> Result<Option<Metadata>>;

    /// [`SideChannel::send`] for callers that always have the inline path: a failure is
    /// logged and treated as a decline.
    fn offer(&self, batch: &RecordBatch, metadata: &Metadata) -> Option<Metadata> {
        match self.send(batch, metadata) {
            Ok(pointer) => pointer,
            Err(e) => {
                tracing::warn!(error = %e, "the side channel failed; sending the batch inline");
                None
            }
        }
    }

    /// Resolves a pointer batch received from the peer into the batch it names (without
    /// copying its data where the channel allows) and its metadata: the pointer keys
    /// replaced by `vgi_rpc.shm_source`.
    ///
    /// # Errors
    /// [`Error::Protocol`] for a malformed pointer, one outside the channel, or a region
    /// that does not hold exactly one batch of the pointer's schema.
    fn resolve(
        &self,
        pointer: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<(RecordBatch, Metadata)>;

    /// [`SideChannel::resolve`] under the connection's [`Limits`]: the batch is checked at
    /// their [validation level](Limits::validation), which is below
    /// [`Validation::Full`](super::Validation::Full) only where the caller lowered it
    /// (`unsafe`) and the connection leads to a trusted process. The engines call this;
    /// the default ignores the limits and resolves as [`SideChannel::resolve`] does.
    ///
    /// # Errors
    /// As [`SideChannel::resolve`].
    fn resolve_with(
        &self,
        pointer: &RecordBatch,
        metadata: &Metadata,
        limits: &Limits,
    ) -> Result<(RecordBatch, Metadata)> {
        let _ = limits;
        self.resolve(pointer, metadata)
    }

    /// A turn boundary: applies the releases of resolved batches dropped since the last
    /// one, so the peer can reuse their space.
    ///
    /// # Errors
    /// The channel is damaged.
    fn reclaim(&self) -> Result<()>;

    /// The peer has answered a request that named this channel, so it holds its own
    /// handle: the creator may now drop the channel's public name (no leak if either
    /// side is killed from here on). Idempotent; a worker-side channel ignores it.
    fn established(&self) {}

    /// The concrete channel, for diagnostics and tests (`transport::shm` downcasts it).
    fn as_any(&self) -> &dyn Any;
}

/// Where a batch published in shared memory lives: the `vgi_rpc.shm_offset` /
/// `vgi_rpc.shm_length` pair of a pointer batch (decimal text on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShmPointer {
    /// Absolute byte offset in the segment.
    pub offset: u64,
    /// Bytes written (not the reservation).
    pub length: u64,
}

impl ShmPointer {
    /// Reads the pointer keys of a pointer batch's metadata.
    ///
    /// # Errors
    /// [`Error::Protocol`] when a key is missing or not a decimal `u64`.
    pub fn from_metadata(metadata: &Metadata) -> Result<ShmPointer> {
        let field = |key: &str| -> Result<u64> {
            let text = metadata
                .get(key)
                .ok_or_else(|| Error::protocol(format!("shm pointer batch without `{key}`")))?;
            text.parse::<u64>().map_err(|_| {
                Error::protocol(format!("shm pointer `{key}` is not a byte count: {text:?}"))
            })
        };
        Ok(ShmPointer {
            offset: field(keys::SHM_OFFSET)?,
            length: field(keys::SHM_LENGTH)?,
        })
    }

    /// `metadata` with this pointer's keys set (after the existing entries, as the
    /// reference merges them).
    pub fn annotate(self, metadata: &Metadata) -> Metadata {
        metadata
            .clone()
            .with(keys::SHM_OFFSET, self.offset.to_string())
            .with(keys::SHM_LENGTH, self.length.to_string())
    }

    /// The metadata a resolved batch carries: the pointer's without the pointer keys,
    /// plus `vgi_rpc.shm_source` naming the segment.
    pub fn resolved_metadata(metadata: &Metadata, source: &str) -> Metadata {
        let mut md = metadata.clone();
        md.remove(keys::SHM_OFFSET);
        md.remove(keys::SHM_LENGTH);
        md.with(keys::SHM_SOURCE, source)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pointer_metadata_round_trips_and_rejects_garbage() {
        let base = Metadata::new().with("app", "1");
        let md = ShmPointer {
            offset: 65536,
            length: 320_280,
        }
        .annotate(&base);
        let keys: Vec<&str> = md.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app", keys::SHM_OFFSET, keys::SHM_LENGTH]);
        assert_eq!(
            ShmPointer::from_metadata(&md).unwrap(),
            ShmPointer {
                offset: 65536,
                length: 320_280
            }
        );
        let resolved = ShmPointer::resolved_metadata(&md, "psm_1");
        assert_eq!(resolved.get("app"), Some("1"));
        assert_eq!(resolved.get(keys::SHM_SOURCE), Some("psm_1"));
        assert!(!resolved.contains(keys::SHM_OFFSET) && !resolved.contains(keys::SHM_LENGTH));

        let bad = Metadata::new()
            .with(keys::SHM_OFFSET, "-1")
            .with(keys::SHM_LENGTH, "8");
        assert!(ShmPointer::from_metadata(&bad).is_err());
        let missing = Metadata::new().with(keys::SHM_OFFSET, "65536");
        assert!(ShmPointer::from_metadata(&missing).is_err());
    }
}

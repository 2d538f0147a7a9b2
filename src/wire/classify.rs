//! Batch classification: is a received batch data, a log, an error, or a pointer?
//!
//! The order of the tests matters and follows the protocol: rows > 0 or no metadata means
//! data; a level + message pair means a log (or, at level EXCEPTION, an error); pointers
//! are recognised by their keys; a zero-row batch is never control on row count alone.

use arrow_array::RecordBatch;

use super::{Metadata, keys};

/// What a received batch means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Application data (including legitimate zero-row batches and void results).
    Data,
    /// An in-band log message.
    Log,
    /// An EXCEPTION batch: the call failed.
    Exception,
    /// A pointer to an externally stored batch (`vgi_rpc.location`).
    ExternalPointer,
    /// A pointer into a shared-memory segment (`vgi_rpc.shm_offset`).
    ShmPointer,
    /// An HTTP continuation token batch.
    Continuation,
}

impl BatchKind {
    /// Classifies `batch` by its row count and custom metadata.
    pub fn of(batch: &RecordBatch, metadata: &Metadata) -> Self {
        if batch.num_rows() > 0 || metadata.is_empty() {
            return BatchKind::Data;
        }
        if let (Some(level), Some(_)) = (
            metadata.get(keys::LOG_LEVEL),
            metadata.get(keys::LOG_MESSAGE),
        ) {
            return if level == "EXCEPTION" {
                BatchKind::Exception
            } else {
                BatchKind::Log
            };
        }
        if metadata.contains(keys::LOCATION) {
            BatchKind::ExternalPointer
        } else if metadata.contains(keys::SHM_OFFSET) {
            BatchKind::ShmPointer
        } else if metadata.contains(keys::STREAM_STATE) {
            BatchKind::Continuation
        } else {
            BatchKind::Data
        }
    }
}

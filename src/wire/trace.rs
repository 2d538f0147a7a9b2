//! Wire-level debug logging: every message in and out, on both ends, as `tracing` events
//! under the target `vgi_rpc::wire` (the reference's `vgi_rpc.wire` logger at DEBUG).
//!
//! Each data, log, error or pointer batch is one DEBUG event with its direction, kind,
//! row count, body bytes, a schema fingerprint and the *keys* of its custom metadata —
//! never metadata values or column data, which may be secrets. Stream starts and ends are
//! TRACE events. The engines wrap calls and stream turns in spans carrying the method, so
//! a subscriber sees which call each message belongs to. Nothing is computed unless the
//! target is enabled at that level.

use std::hash::{Hash, Hasher};

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use tracing::Level;

use super::{BatchKind, Metadata};

/// The `tracing` target of wire events and call spans.
pub const TARGET: &str = "vgi_rpc::wire";

/// Which way a message crossed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Received from the peer.
    In,
    /// Sent to the peer.
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Logs one batch message.
pub(crate) fn batch(direction: Direction, batch: &RecordBatch, metadata: &Metadata, bytes: usize) {
    if !tracing::enabled!(target: TARGET, Level::DEBUG) {
        return;
    }
    let keys: Vec<&str> = metadata.iter().map(|(k, _)| k).collect();
    tracing::debug!(
        target: TARGET,
        dir = direction.as_str(),
        kind = ?BatchKind::of(batch, metadata),
        rows = batch.num_rows(),
        bytes,
        schema = %fingerprint(batch.schema_ref()),
        keys = ?keys,
        "batch"
    );
}

/// Logs the schema message that starts a stream.
pub(crate) fn stream_start(direction: Direction, schema: &Schema) {
    if !tracing::enabled!(target: TARGET, Level::TRACE) {
        return;
    }
    tracing::trace!(
        target: TARGET,
        dir = direction.as_str(),
        schema = %fingerprint(schema),
        fields = schema.fields().len(),
        "stream start"
    );
}

/// Logs the end-of-stream marker.
pub(crate) fn stream_end(direction: Direction) {
    tracing::trace!(target: TARGET, dir = direction.as_str(), "stream end");
}

/// A short stable fingerprint of a schema's field names, types and nullability.
fn fingerprint(schema: &Schema) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for field in schema.fields() {
        field.name().hash(&mut hasher);
        field.data_type().hash(&mut hasher);
        field.is_nullable().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

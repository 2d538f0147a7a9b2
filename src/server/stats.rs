//! Per-call I/O statistics gathered by the call engine.
//!
//! Two kinds of size are kept apart on purpose: *logical* Arrow buffer bytes (what the
//! handler processed, unaffected by framing) and *on-wire* bytes (what crossed the
//! transport). Counting costs nothing when no [`super::CallHook`] is attached: the
//! [`Meter`] is then disabled and every `record_*` call returns at once.

use arrow_array::{Array, RecordBatch};
use arrow_data::ArrayData;

use crate::RpcError;

/// Counters for one call (or, on HTTP, one stream turn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallStats {
    /// Batches read: the request batch plus exchange input batches (producer ticks and the
    /// cancel batch are protocol artifacts and not counted).
    pub input_batches: u64,
    /// Batches written: results, stream outputs, headers, log and error batches.
    pub output_batches: u64,
    /// Rows across the input batches.
    pub input_rows: u64,
    /// Rows across the output batches.
    pub output_rows: u64,
    /// Logical Arrow buffer bytes across the input batches.
    pub input_bytes: u64,
    /// Logical Arrow buffer bytes across the output batches.
    pub output_bytes: u64,
    /// Bytes read off the transport for this call: the request stream and, for streams,
    /// the client's input stream.
    pub request_bytes: u64,
    /// Bytes written to the transport for this call: every response stream.
    pub response_bytes: u64,
}

impl CallStats {
    fn add_input(&mut self, batch: &RecordBatch) {
        self.input_batches += 1;
        self.input_rows += batch.num_rows() as u64;
        self.input_bytes += batch_buffer_bytes(batch);
    }

    fn add_output(&mut self, batch: &RecordBatch, copies: u64) {
        self.output_batches += copies;
        self.output_rows += batch.num_rows() as u64 * copies;
        self.output_bytes += batch_buffer_bytes(batch) * copies;
    }
}

/// Sum of the lengths of every buffer (values, offsets, validity, children) in `batch`.
pub(crate) fn batch_buffer_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| data_bytes(&c.to_data()))
        .sum()
}

fn data_bytes(data: &ArrayData) -> u64 {
    let own: usize = data.buffers().iter().map(|b| b.len()).sum();
    let nulls = data.nulls().map_or(0, |n| n.buffer().len());
    let children: u64 = data.child_data().iter().map(data_bytes).sum();
    (own + nulls) as u64 + children
}

/// The call engine's per-call accumulator; inert unless a hook is attached.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pub enabled: bool,
    pub stats: CallStats,
    /// The error the client was sent, if any.
    pub error: Option<RpcError>,
    /// The client cancelled the stream.
    pub cancelled: bool,
    /// An EXCEPTION batch was sent (tracked even when disabled).
    pub failed: bool,
}

impl Meter {
    pub(crate) fn new(enabled: bool) -> Self {
        Meter {
            enabled,
            ..Meter::default()
        }
    }

    /// Clears the counters for the next call.
    pub(crate) fn reset(&mut self) {
        self.stats = CallStats::default();
        self.error = None;
        self.cancelled = false;
        self.failed = false;
    }

    pub(crate) fn input(&mut self, batch: &RecordBatch) {
        if self.enabled {
            self.stats.add_input(batch);
        }
    }

    pub(crate) fn output(&mut self, batch: &RecordBatch) {
        self.outputs(batch, 1);
    }

    /// Records `copies` identical output batches (log batches share one empty batch).
    pub(crate) fn outputs(&mut self, batch: &RecordBatch, copies: u64) {
        if self.enabled && copies > 0 {
            self.stats.add_output(batch, copies);
        }
    }

    /// Remembers the error sent to the client (only when someone will read it).
    pub(crate) fn error(&mut self, error: &RpcError) {
        self.failed = true;
        if self.enabled {
            self.error = Some(error.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn logical_bytes_match_pyarrow_total_buffer_size() {
        // pyarrow: pa.record_batch({"value": ["hello"]}).get_total_buffer_size() == 13
        let strings = RecordBatch::try_from_iter([(
            "value",
            Arc::new(StringArray::from(vec!["hello"])) as _,
        )])
        .unwrap();
        assert_eq!(batch_buffer_bytes(&strings), 13);
        let ints = RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1, 2])) as _)])
            .unwrap();
        assert_eq!(batch_buffer_bytes(&ints), 16);
    }

    #[test]
    fn disabled_meter_counts_nothing() {
        let ints =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        let mut off = Meter::new(false);
        off.input(&ints);
        off.output(&ints);
        assert_eq!(off.stats, CallStats::default());
        let mut on = Meter::new(true);
        on.input(&ints);
        on.outputs(&ints, 3);
        assert_eq!(on.stats.input_rows, 1);
        assert_eq!(on.stats.output_batches, 3);
        assert_eq!(on.stats.output_bytes, 24);
    }
}

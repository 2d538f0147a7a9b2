//! `VgiBench`: the methods the conformance protocol lacks for the benchmarks, a producer
//! of int64 + float64 + utf8 batches of a chosen size and an exchange that answers each
//! such batch with itself. The conformance service
//! stays a mirror of the reference, so this lives here; everything else the benches call
//! (`void_noop`, `echo_string`, `echo_bytes`, `produce_large_batches`, `exchange_scale`)
//! is the conformance service, the same methods the Python reference worker serves.

use std::sync::{Arc, Mutex};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgi_rpc::prelude::*;

/// Length of every utf8 value in a mixed batch.
pub const LABEL_LEN: usize = 16;

/// Payload bytes of one mixed row: int64 + float64 + utf8 offset + the label.
pub const MIXED_ROW_BYTES: usize = 8 + 8 + 4 + LABEL_LEN;

/// Protocol name of [`BenchService`].
pub const PROTOCOL: &str = "VgiBench";

/// Benchmark-only methods.
#[vgi_rpc::service(protocol = "VgiBench", version = "1.0.0")]
pub trait Bench: Send + Sync + 'static {
    /// `batch_count` batches of `rows_per_batch` rows of `{id: int64, value: float64,
    /// label: utf8}`.
    fn produce_mixed(&self, rows_per_batch: i64, batch_count: i64) -> Result<Producer<Mixed>>;
    /// Answers every `{id, value, label}` input batch with the same batch.
    fn exchange_mixed(&self) -> Result<Exchange<EchoMixed>>;
}

/// The [`Bench`] implementation. The last generated batch is kept, so a stream of a few
/// big batches measures the transport, not formatting 100 000 labels at open.
#[derive(Debug, Default)]
pub struct BenchService {
    last: Mutex<Option<RecordBatch>>,
}

impl Bench for BenchService {
    fn produce_mixed(&self, rows_per_batch: i64, batch_count: i64) -> Result<Producer<Mixed>> {
        let rows = usize::try_from(rows_per_batch)
            .map_err(|_| RpcError::value_error("rows_per_batch must be non-negative"))?;
        let mut last = self
            .last
            .lock()
            .map_err(|_| RpcError::runtime_error("poisoned"))?;
        let batch = match &*last {
            Some(b) if b.num_rows() == rows => b.clone(),
            _ => {
                let b = mixed_batch(rows)?;
                *last = Some(b.clone());
                b
            }
        };
        Ok(Producer::new(Mixed {
            batch,
            remaining: batch_count,
        }))
    }

    fn exchange_mixed(&self) -> Result<Exchange<EchoMixed>> {
        Ok(Exchange::new(EchoMixed))
    }
}

/// The schema of a mixed batch.
pub fn mixed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("label", DataType::Utf8, false),
    ]))
}

/// One mixed batch of `rows` rows.
///
/// # Errors
/// Never in practice (the columns match the schema).
pub fn mixed_batch(rows: usize) -> Result<RecordBatch> {
    let ids = Int64Array::from_iter_values(0..rows as i64);
    let values = Float64Array::from_iter_values((0..rows).map(|r| r as f64 * 0.5));
    let labels = StringArray::from_iter_values((0..rows).map(|r| format!("{r:0>LABEL_LEN$}")));
    Ok(RecordBatch::try_new(
        mixed_schema(),
        vec![Arc::new(ids), Arc::new(values), Arc::new(labels)],
    )?)
}

/// Producer state: the same prebuilt batch, `remaining` more times, so the figures
/// measure the framework and the transport rather than data generation.
#[derive(Debug)]
pub struct Mixed {
    batch: RecordBatch,
    remaining: i64,
}

impl ProducerState for Mixed {
    fn output_schema(&self) -> SchemaRef {
        mixed_schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.remaining <= 0 {
            turn.finish();
            return Ok(());
        }
        self.remaining -= 1;
        turn.emit(self.batch.clone())
    }
}

/// Exchange state: every input batch goes back as it came (the same buffers), so the
/// figures measure moving the batch both ways.
#[derive(Debug)]
pub struct EchoMixed;

impl ExchangeState for EchoMixed {
    fn input_schema(&self) -> SchemaRef {
        mixed_schema()
    }

    fn output_schema(&self) -> SchemaRef {
        mixed_schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        turn.emit(input)
    }
}

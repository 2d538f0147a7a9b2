//! Exchange stream states (the reference's `*ExchangeState` classes in `_types.py`).
//! Each `exchange` call answers one input batch, already coerced by the server to the
//! state's input schema, with exactly one output batch.

use std::sync::Arc;

use arrow_array::types::Float64Type;
use arrow_array::{Array, Float64Array, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use vgi_rpc::prelude::*;

use crate::batches::counter_batch;
use crate::probe::CancelProbe;
use crate::producers::StickyCounter;
use crate::types::{
    AccumulateRow, CounterRow, IncrementRow, InputMetadataRow, IntValueRow, ScaleRow,
};

/// Application metadata key `exchange_input_metadata` reports.
pub const INPUT_METADATA_KEY: &str = "vgi.conformance.input";

/// The `value: float64` column of a coerced input batch.
fn value_column(input: &RecordBatch) -> Result<&Float64Array> {
    input
        .column_by_name("value")
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| RpcError::type_error("input batch has no float64 'value' column").into())
}

/// The input batch, relabelled with the output schema (the echo states' output).
fn echo(input: &RecordBatch, output_schema: SchemaRef) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        output_schema,
        input.columns().to_vec(),
    )?)
}

/// `value * factor` (`exchange_scale`, `exchange_cast_compatible` with factor 1, and the
/// header exchanges). Nulls stay null.
#[derive(Debug, Serialize, Deserialize)]
pub struct Scale {
    factor: f64,
}

impl Scale {
    /// A state multiplying by `factor`.
    pub fn new(factor: f64) -> Self {
        Scale { factor }
    }
}

impl ExchangeState for Scale {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let factor = self.factor;
        let scaled = value_column(&input)?.unary::<_, Float64Type>(|v| v * factor);
        turn.emit(RecordBatch::try_new(
            self.output_schema(),
            vec![Arc::new(scaled)],
        )?)
    }
}

/// Running sum of every input value and the number of exchanges
/// (`exchange_accumulate`).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Accumulate {
    running_sum: f64,
    exchange_count: i64,
}

impl ExchangeState for Accumulate {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        AccumulateRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let values = value_column(&input)?;
        // Arrow's sum of no valid values is null, and the reference then fails adding
        // it to a float.
        if values.null_count() == values.len() {
            return Err(RpcError::type_error(
                "unsupported operand type(s) for +=: 'float' and 'NoneType'",
            )
            .into());
        }
        self.running_sum += values.iter().flatten().sum::<f64>();
        self.exchange_count += 1;
        turn.emit_rows(vec![AccumulateRow {
            running_sum: Some(self.running_sum),
            exchange_count: Some(self.exchange_count),
        }])
    }
}

/// Echo with an INFO `exchange processing` and a DEBUG `exchange debug` log
/// (`exchange_with_logs`).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Logging;

impl ExchangeState for Logging {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        turn.log(LogLevel::Info, "exchange processing");
        turn.log(LogLevel::Debug, "exchange debug");
        turn.emit(echo(&input, self.output_schema())?)
    }
}

/// Echo, failing on the `fail_on`-th exchange and every one after it
/// (`exchange_error_on_nth`).
#[derive(Debug, Serialize, Deserialize)]
pub struct FailOnNth {
    fail_on: i64,
    exchange_count: i64,
}

impl FailOnNth {
    /// A state failing from exchange `fail_on` (1-based) on.
    pub fn new(fail_on: i64) -> Self {
        FailOnNth {
            fail_on,
            exchange_count: 0,
        }
    }
}

impl ExchangeState for FailOnNth {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        self.exchange_count += 1;
        if self.exchange_count >= self.fail_on {
            return Err(RpcError::runtime_error(format!(
                "intentional error on exchange {}",
                self.exchange_count
            ))
            .into());
        }
        turn.emit(echo(&input, self.output_schema())?)
    }
}

/// Zero-column input, zero-column (and zero-row) output (`exchange_zero_columns`).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct ZeroColumns;

impl ExchangeState for ZeroColumns {
    fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn exchange(&mut self, _input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        turn.emit(RecordBatch::new_empty(self.output_schema()))
    }
}

/// Reports each input's custom metadata: the `vgi.conformance.input` value and every key,
/// sorted and comma-joined (`exchange_input_metadata`).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct InputMetadata;

impl ExchangeState for InputMetadata {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        InputMetadataRow::schema()
    }

    fn exchange(&mut self, _input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let metadata = turn.input_metadata();
        let seen = metadata.get(INPUT_METADATA_KEY).unwrap_or("").to_owned();
        let mut keys: Vec<&str> = metadata.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        let keys = keys.join(",");
        turn.emit_rows(vec![InputMetadataRow {
            seen: Some(seen),
            keys: Some(keys),
        }])
    }
}

/// Answers any input with one `{index, value}` batch of `rows_per_batch` rows
/// (`exchange_oversized`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Oversized {
    rows_per_batch: i64,
}

impl Oversized {
    /// A state answering with `rows_per_batch` rows.
    pub fn new(rows_per_batch: i64) -> Self {
        Oversized { rows_per_batch }
    }
}

impl ExchangeState for Oversized {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn exchange(&mut self, _input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        turn.emit(counter_batch(0, self.rows_per_batch)?)
    }
}

/// Echo counted in the cancel probe (`cancellable_exchange`).
#[derive(Debug)]
pub struct Cancellable {
    probe: CancelProbe,
}

impl Cancellable {
    /// An echo exchange reporting to `probe`.
    pub fn new(probe: CancelProbe) -> Self {
        Cancellable { probe }
    }
}

impl ExchangeState for Cancellable {
    fn input_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        ScaleRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        self.probe.bump_exchange();
        turn.emit(echo(&input, self.output_schema())?)
    }

    fn on_cancel(&mut self) -> Result<()> {
        self.probe.bump_on_cancel();
        Ok(())
    }
}

/// The sticky-session counter exchange (`exchange_session_counter`): `{by}` in,
/// `{value}` out. Sticky sessions exist only on HTTP; with no session bound every
/// exchange fails as the reference does.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct SessionCounter;

impl ExchangeState for SessionCounter {
    fn input_schema(&self) -> SchemaRef {
        IncrementRow::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        IntValueRow::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let counter = StickyCounter::bound()?;
        let by = input
            .column_by_name("by")
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::Int64Array>())
            .ok_or_else(|| RpcError::type_error("the input has no int64 `by` column"))?;
        // pyarrow's sum of no valid values is null, which Python then fails to add.
        if by.null_count() == by.len() {
            return Err(RpcError::type_error(
                "unsupported operand type(s) for +=: 'int' and 'NoneType'",
            )
            .into());
        }
        let sum = by.iter().flatten().fold(0_i64, i64::wrapping_add);
        turn.emit_rows(vec![IntValueRow {
            value: Some(counter.add(sum)),
        }])
    }
}

//! Producer stream states (the reference's `*ProducerState` / `*State` classes in
//! `_types.py`). Each `produce` call answers one client tick with at most one batch, or
//! finishes the stream.
//!
//! Unless noted otherwise a state finishes on the tick *after* its last batch, as the
//! reference does: `produce_n(2)` answers three ticks (two batches, then end of stream).

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use vgi_rpc::prelude::*;
use vgi_rpc::wire::Metadata;

use crate::batches::{counter_batch, counter_row, int64_column, overflow};
use crate::probe::CancelProbe;
use crate::types::{CounterRow, IntValueRow, TickRow};

/// Application metadata key `produce_tick_metadata` reports.
pub const TICK_METADATA_KEY: &str = "vgi.conformance.tick";

/// The constant, deliberately non-ASCII label `produce_annotated_batches` attaches.
pub const ANNOTATED_EMIT_LABEL: &str = "\u{fc}n\u{ef}code-\u{3bb}";

/// The message of every sticky-session method when no session is bound (always, off HTTP).
pub const NO_STICKY_COUNTER: &str = "no sticky counter bound to this request";

/// The value `open_counter` keeps in a sticky session (the reference's `_StickyCounter`).
/// The transport serializes calls on one session, so the lock is never contended; it is
/// there because a session's value is shared (`Arc`) and mutated.
#[derive(Debug, Default)]
pub struct StickyCounter {
    value: std::sync::Mutex<i64>,
}

impl StickyCounter {
    /// A counter starting at `initial`.
    pub fn new(initial: i64) -> Self {
        StickyCounter {
            value: std::sync::Mutex::new(initial),
        }
    }

    /// Adds `by` (wrapping, as Python's unbounded int never overflows but Arrow's int64
    /// would) and returns the new value.
    pub fn add(&self, by: i64) -> i64 {
        let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *value = value.wrapping_add(by);
        *value
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        *self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counter of the sticky session bound to the request being served.
    pub fn bound() -> Result<Arc<StickyCounter>> {
        vgi_rpc::server::sticky::session::<StickyCounter>()
            .ok_or_else(|| RpcError::runtime_error(NO_STICKY_COUNTER).into())
    }
}

/// `count` single-row batches `{i, 10 i}` (`produce_n`, the header producers).
#[derive(Debug, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
    current: i64,
}

impl Counter {
    /// A counter producing `count` batches.
    pub fn new(count: i64) -> Self {
        Counter { count, current: 0 }
    }
}

impl ProducerState for Counter {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.count {
            turn.finish();
            return Ok(());
        }
        turn.emit_rows(vec![counter_row(self.current)?])?;
        self.current += 1;
        Ok(())
    }
}

/// Reports each tick's `vgi.conformance.tick` metadata; finishes in the turn of the
/// `count`-th batch (at least one batch is always emitted).
#[derive(Debug, Serialize, Deserialize)]
pub struct TickMetadata {
    count: i64,
    current: i64,
}

impl TickMetadata {
    /// A state answering `count` ticks.
    pub fn new(count: i64) -> Self {
        TickMetadata { count, current: 0 }
    }
}

impl ProducerState for TickMetadata {
    fn output_schema(&self) -> SchemaRef {
        TickRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        let seen = turn.input_metadata().get(TICK_METADATA_KEY).unwrap_or("");
        let row = TickRow {
            index: Some(self.current),
            seen: Some(seen.to_owned()),
        };
        turn.emit_rows(vec![row])?;
        self.current += 1;
        if self.current >= self.count {
            turn.finish();
        }
        Ok(())
    }
}

/// Finishes on the first tick (`produce_empty`).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Empty;

impl ProducerState for Empty {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        turn.finish();
        Ok(())
    }
}

/// One `{0, 0}` batch, then end (`produce_single`), or one batch of `rows` rows
/// (`produce_oversized_batch`).
#[derive(Debug, Serialize, Deserialize)]
pub struct OneBatch {
    rows: i64,
    emitted: bool,
}

impl OneBatch {
    /// A single batch of `rows` counter rows.
    pub fn new(rows: i64) -> Self {
        OneBatch {
            rows,
            emitted: false,
        }
    }
}

impl ProducerState for OneBatch {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.emitted {
            turn.finish();
            return Ok(());
        }
        self.emitted = true;
        turn.emit(counter_batch(0, self.rows)?)
    }
}

/// `batch_count` batches of `rows_per_batch` rows with a running index
/// (`produce_large_batches`).
#[derive(Debug, Serialize, Deserialize)]
pub struct LargeBatches {
    rows_per_batch: i64,
    batch_count: i64,
    current: i64,
}

impl LargeBatches {
    /// A state producing `batch_count` batches of `rows_per_batch` rows.
    pub fn new(rows_per_batch: i64, batch_count: i64) -> Self {
        LargeBatches {
            rows_per_batch,
            batch_count,
            current: 0,
        }
    }
}

impl ProducerState for LargeBatches {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.batch_count {
            turn.finish();
            return Ok(());
        }
        let offset = self
            .current
            .checked_mul(self.rows_per_batch)
            .ok_or_else(|| overflow("batch offset"))?;
        turn.emit(counter_batch(offset, self.rows_per_batch)?)?;
        self.current += 1;
        Ok(())
    }
}

/// `count` batches of `{value}` rows `i * 1_000_000 + r`, each carrying its own custom
/// metadata (`produce_annotated_batches`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Annotated {
    count: i64,
    rows_per_batch: i64,
    current: i64,
}

impl Annotated {
    /// A state producing `count` annotated batches of `rows_per_batch` rows.
    pub fn new(count: i64, rows_per_batch: i64) -> Self {
        Annotated {
            count,
            rows_per_batch,
            current: 0,
        }
    }
}

impl ProducerState for Annotated {
    fn output_schema(&self) -> SchemaRef {
        IntValueRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.count {
            turn.finish();
            return Ok(());
        }
        let base = self
            .current
            .checked_mul(1_000_000)
            .ok_or_else(|| overflow("value"))?;
        let len = usize::try_from(self.rows_per_batch.max(0)).map_err(|_| overflow("rows"))?;
        let values = int64_column(len, |r| base.checked_add(r))?;
        let batch = RecordBatch::try_new(IntValueRow::schema(), vec![values])?;
        let metadata = Metadata::new()
            .with("conformance.batch_index", self.current.to_string())
            .with("conformance.batch_total", self.count.to_string())
            .with("conformance.emit_label", ANNOTATED_EMIT_LABEL);
        turn.emit_with_metadata(batch, metadata)?;
        self.current += 1;
        Ok(())
    }
}

/// Like [`Counter`], with an INFO log `producing batch <i>` before each batch
/// (`produce_with_logs`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Logging {
    inner: Counter,
}

impl Logging {
    /// A logging counter producing `count` batches.
    pub fn new(count: i64) -> Self {
        Logging {
            inner: Counter::new(count),
        }
    }
}

impl ProducerState for Logging {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.inner.current < self.inner.count {
            turn.log(
                LogLevel::Info,
                format!("producing batch {}", self.inner.current),
            );
        }
        self.inner.produce(turn)
    }
}

/// Emits `emit_before_error` batches, then fails (`produce_error_mid_stream`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorAfter {
    emit_before_error: i64,
    current: i64,
}

impl ErrorAfter {
    /// A state failing after `emit_before_error` batches.
    pub fn new(emit_before_error: i64) -> Self {
        ErrorAfter {
            emit_before_error,
            current: 0,
        }
    }
}

impl ProducerState for ErrorAfter {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.emit_before_error {
            return Err(RpcError::runtime_error(format!(
                "intentional error after {} batches",
                self.emit_before_error
            ))
            .into());
        }
        turn.emit_rows(vec![counter_row(self.current)?])?;
        self.current += 1;
        Ok(())
    }
}

/// Endless `{i, 10 i}` batches, counted in the cancel probe (`cancellable_producer`).
#[derive(Debug)]
pub struct Cancellable {
    current: i64,
    probe: CancelProbe,
}

impl Cancellable {
    /// An endless producer reporting to `probe`.
    pub fn new(probe: CancelProbe) -> Self {
        Cancellable { current: 0, probe }
    }
}

impl ProducerState for Cancellable {
    fn output_schema(&self) -> SchemaRef {
        CounterRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        self.probe.bump_produce();
        turn.emit_rows(vec![counter_row(self.current)?])?;
        self.current += 1;
        Ok(())
    }

    fn on_cancel(&mut self) -> Result<()> {
        self.probe.bump_on_cancel();
        Ok(())
    }
}

/// `{index[, label][, score]}` rows `{i, "row-<i>", 1.5 i}` whose schema depends on two
/// flags chosen at init (`produce_dynamic_schema`).
#[derive(Debug)]
pub struct Dynamic {
    count: i64,
    schema: SchemaRef,
    current: i64,
}

impl Dynamic {
    /// A state producing `count` batches with the optional columns selected.
    pub fn new(count: i64, include_strings: bool, include_floats: bool) -> Self {
        let mut fields = vec![Field::new("index", DataType::Int64, true)];
        if include_strings {
            fields.push(Field::new("label", DataType::Utf8, true));
        }
        if include_floats {
            fields.push(Field::new("score", DataType::Float64, true));
        }
        Dynamic {
            count,
            schema: Arc::new(Schema::new(fields)),
            current: 0,
        }
    }
}

/// Saved as its count, position and the two flags; the schema is rebuilt from the flags.
impl vgi_rpc::stream::Resumable for Dynamic {
    fn save(&self) -> Result<Vec<u8>> {
        let has = |name: &str| self.schema.field_with_name(name).is_ok();
        let saved = (self.count, self.current, has("label"), has("score"));
        serde_json::to_vec(&saved).map_err(|e| Error::protocol(e.to_string()))
    }

    fn restore(saved: &[u8]) -> Result<Self> {
        let (count, current, strings, floats): (i64, i64, bool, bool) =
            serde_json::from_slice(saved).map_err(|e| Error::protocol(e.to_string()))?;
        let mut state = Dynamic::new(count, strings, floats);
        state.current = current;
        Ok(state)
    }
}

impl ProducerState for Dynamic {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.count {
            turn.finish();
            return Ok(());
        }
        let i = self.current;
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.name().as_str() {
                    "label" => Arc::new(StringArray::from(vec![format!("row-{i}")])),
                    "score" => Arc::new(Float64Array::from(vec![i as f64 * 1.5])),
                    _ => Arc::new(Int64Array::from(vec![i])),
                }
            })
            .collect();
        turn.emit(RecordBatch::try_new(self.schema.clone(), columns)?)?;
        self.current += 1;
        Ok(())
    }
}

/// The sticky-session counter producer (`stream_session_counter`). Sticky sessions exist
/// only on HTTP; with no session bound every batch-producing turn fails as the reference
/// does, while `count <= 0` still finishes cleanly.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionCounter {
    count: i64,
    current: i64,
}

impl SessionCounter {
    /// A state emitting `count` counter increments.
    pub fn new(count: i64) -> Self {
        SessionCounter { count, current: 0 }
    }
}

impl ProducerState for SessionCounter {
    fn output_schema(&self) -> SchemaRef {
        IntValueRow::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.current >= self.count {
            turn.finish();
            return Ok(());
        }
        let value = StickyCounter::bound()?.add(1);
        turn.emit_rows(vec![IntValueRow { value: Some(value) }])?;
        self.current += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_schema_follows_flags() {
        let names = |s: &Dynamic| -> Vec<String> {
            s.output_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        assert_eq!(
            names(&Dynamic::new(1, true, true)),
            ["index", "label", "score"]
        );
        assert_eq!(names(&Dynamic::new(1, false, true)), ["index", "score"]);
        assert_eq!(names(&Dynamic::new(1, false, false)), ["index"]);
    }
}

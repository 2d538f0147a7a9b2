//! One turn of a stream: what a state sees (input metadata) and what it produces (logs,
//! at most one batch, and whether the stream is finished).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::log::{LogLevel, LogRecord};
use crate::schema::ArrowRecord;
use crate::wire::Metadata;
use crate::{Error, Result};

/// The handle a stream state uses during one turn.
pub struct Turn<'a> {
    input_metadata: &'a Metadata,
    output_schema: &'a SchemaRef,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) output: Option<(RecordBatch, Metadata)>,
    pub(crate) finished: bool,
}

impl<'a> Turn<'a> {
    pub(crate) fn new(input_metadata: &'a Metadata, output_schema: &'a SchemaRef) -> Self {
        Turn {
            input_metadata,
            output_schema,
            logs: Vec::new(),
            output: None,
            finished: false,
        }
    }

    /// Application metadata the client attached to this turn's input (tick or batch), with
    /// protocol keys removed.
    pub fn input_metadata(&self) -> &Metadata {
        self.input_metadata
    }

    /// The stream's output schema.
    pub fn output_schema(&self) -> &SchemaRef {
        self.output_schema
    }

    /// Emits this turn's output batch.
    ///
    /// # Errors
    /// Fails when a batch was already emitted this turn, or the batch's schema does not
    /// match the stream's output schema.
    pub fn emit(&mut self, batch: RecordBatch) -> Result<()> {
        self.emit_with_metadata(batch, Metadata::new())
    }

    /// Emits this turn's output batch with custom metadata attached.
    ///
    /// # Errors
    /// As [`Turn::emit`].
    pub fn emit_with_metadata(&mut self, batch: RecordBatch, metadata: Metadata) -> Result<()> {
        if self.output.is_some() {
            return Err(Error::protocol("a stream turn may emit only one batch"));
        }
        if batch.schema().fields() != self.output_schema.fields() {
            return Err(Error::type_error(format!(
                "emitted batch schema {:?} does not match the output schema {:?}",
                batch.schema().fields(),
                self.output_schema.fields()
            )));
        }
        self.output = Some((batch, metadata));
        Ok(())
    }

    /// Emits `rows` as this turn's output batch.
    ///
    /// # Errors
    /// As [`Turn::emit`], plus encoding errors.
    pub fn emit_rows<T: ArrowRecord>(&mut self, rows: Vec<T>) -> Result<()> {
        self.emit(T::to_batch(rows)?)
    }

    /// Ends the stream after this turn (a batch emitted in the same turn is still sent).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Whether [`Turn::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Sends a log message to the client ahead of this turn's output.
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.logs.push(LogRecord::new(level, message));
    }

    /// Sends a log message with extra JSON fields.
    pub fn log_with_extra(
        &mut self,
        level: LogLevel,
        message: impl Into<String>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) {
        let mut record = LogRecord::new(level, message);
        record.extra = extra;
        self.logs.push(record);
    }
}

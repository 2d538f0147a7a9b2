//! A stream session on the client side: producer ticks or exchange turns over one input
//! stream (written lazily: schema and first batch go out together) and one output stream.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::{Schema, SchemaRef};

use super::connection::{Connection, Received, closed_mid_call};
use crate::log::LogRecord;
use crate::wire::{self, Metadata, StreamDecoder, StreamEncoder, StreamItem, keys};
use crate::{Error, Result};

/// Whether the method declares a stream header: it decides what the client reads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamOpen {
    /// No header: the first thing read is the output stream.
    Plain,
    /// A header stream comes first, read at open.
    WithHeader,
}

/// An open producer or exchange stream on one connection (no deadline or cancel: those
/// are [`ClientStream`](super::ClientStream)'s).
///
/// Dropping a session that is still open closes it (best effort); call
/// [`StreamSession::close`] to see errors.
pub(crate) struct StreamSession<'c> {
    conn: &'c mut Connection,
    header: Option<RecordBatch>,
    logs: Vec<LogRecord>,
    input: Option<(StreamEncoder, SchemaRef)>,
    output: Option<StreamDecoder>,
    finished: bool,
}

impl<'c> StreamSession<'c> {
    pub(crate) fn open(conn: &'c mut Connection, open: StreamOpen) -> Result<Self> {
        let mut session = StreamSession {
            conn,
            header: None,
            logs: Vec::new(),
            input: None,
            output: None,
            finished: false,
        };
        if open == StreamOpen::WithHeader {
            match session.conn.read_single_result(&mut session.logs) {
                Ok((header, _)) => session.header = header,
                Err(e) if e.keeps_connection() => {
                    // An error stream replaced the header and the server drains one input
                    // stream; or the header was a pointer this client could not resolve,
                    // and the stream is open on the server: an empty input ends it, and
                    // its output is drained.
                    session.finished = true;
                    let mut out = Vec::new();
                    let mut enc = StreamEncoder::new();
                    enc.schema(&mut out, &Schema::empty());
                    enc.eos(&mut out);
                    session.conn.send(&out)?;
                    if !matches!(e, Error::Rpc(_)) {
                        session.drain_output()?;
                    }
                    return Err(e);
                }
                Err(e) => {
                    session.finished = true;
                    return Err(e);
                }
            }
        }
        Ok(session)
    }

    /// The stream's header batch, if the method declares one.
    pub(crate) fn header(&self) -> Option<&RecordBatch> {
        self.header.as_ref()
    }

    /// Takes the log messages received so far.
    pub(crate) fn take_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.logs)
    }

    /// Whether the server has ended the stream.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Producer: a tick carrying application metadata; returns the next batch with the
    /// custom metadata the server attached to it.
    ///
    /// # Errors
    /// As [`StreamSession::tick`].
    pub(crate) fn tick_with_metadata(
        &mut self,
        metadata: Metadata,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        let tick = empty_batch();
        self.turn(&tick, &metadata)
    }

    /// Exchange with input metadata; returns the output batch and its metadata.
    ///
    /// # Errors
    /// As [`StreamSession::exchange`].
    pub(crate) fn exchange_with_metadata(
        &mut self,
        input: &RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        self.turn(input, &metadata)?
            .ok_or_else(|| Error::protocol("the server ended the exchange stream"))
    }

    fn turn(
        &mut self,
        input: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        if self.finished {
            return Err(Error::protocol("the stream has already ended"));
        }
        // The input stream's schema is fixed by its first batch; a later batch of other
        // types would be framed under it and read back as reinterpreted bytes.
        if let Some((_, schema)) = &self.input
            && !same_layout(schema, &input.schema())
        {
            return Err(Error::type_error(format!(
                "exchange input batch has schema {:?}, but this stream's input schema (fixed by its first batch) is {:?}",
                input.schema().fields(),
                schema.fields()
            )));
        }
        // A large exchange input travels through the side channel, or else through
        // external storage when this client has storage of its own (ticks never do:
        // they have no rows). Decided before anything is framed, so a failed upload
        // leaves the stream as it was.
        let pointer = match self.conn.side() {
            Some(side) => side.offer(input, metadata),
            None => match self.conn.external.as_deref().filter(|e| e.wants(input)) {
                Some(external) => Some(wire::external::externalize(
                    external,
                    &input.schema(),
                    &[(input, metadata)],
                )?),
                None => None,
            },
        };
        let mut out = Vec::new();
        let (enc, _) = self.input.get_or_insert_with(|| {
            let mut enc = StreamEncoder::new();
            enc.schema(&mut out, &input.schema());
            (enc, input.schema())
        });
        let body = match pointer {
            Some(pointer) => {
                enc.batch(&mut out, &RecordBatch::new_empty(input.schema()), &pointer)?;
                None
            }
            // A large input goes from its arrays' buffers, as a large request does.
            None => enc.batch_split(&mut out, input, metadata, wire::SPLIT_BODY_AT)?,
        };
        self.conn
            .send_parts(&out, body.as_deref().unwrap_or_default())?;
        self.read_turn()
    }

    fn read_turn(&mut self) -> Result<Option<(RecordBatch, Metadata)>> {
        let conn = &mut *self.conn;
        let decoder = match &mut self.output {
            Some(decoder) => decoder,
            None => self.output.insert(
                wire::read_stream_start(&mut conn.reader, &conn.limits).map_err(closed_mid_call)?,
            ),
        };
        loop {
            match wire::read_stream_item(&mut conn.reader, decoder, &conn.limits)? {
                StreamItem::End => {
                    self.finished = true;
                    self.end_input()?;
                    return Ok(None);
                }
                StreamItem::Batch(batch, md) => match conn.receive(batch, md, &mut self.logs) {
                    Received::Log => {}
                    Received::Data(batch, md) => {
                        conn.mark_established();
                        return Ok(Some((batch, md)));
                    }
                    Received::Failed(e) => {
                        self.finished = true;
                        match &e {
                            // The server ended its output after the EXCEPTION and drains
                            // the input.
                            Error::Rpc(_) => {
                                self.drain_output()?;
                                self.end_input()?;
                            }
                            // A batch read whole that this client cannot take (a pointer
                            // it cannot resolve): the server is waiting for the next
                            // input, so end the input first, then drain its output.
                            e if e.keeps_connection() => {
                                self.end_input()?;
                                self.drain_output()?;
                            }
                            // Anything else leaves the stream out of step: the caller
                            // drops the connection; nothing more is read or written.
                            _ => {}
                        }
                        return Err(e);
                    }
                },
            }
        }
    }

    /// Cancels the stream: the server stops producing and runs its cancel hook.
    ///
    /// # Errors
    /// Transport errors.
    pub(crate) fn cancel(mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let cancel = Metadata::new().with(keys::CANCEL, "1");
        let mut out = Vec::new();
        match self.input.take() {
            Some((mut enc, schema)) => {
                enc.batch(&mut out, &RecordBatch::new_empty(schema), &cancel)?;
                enc.eos(&mut out);
            }
            None => {
                let mut enc = StreamEncoder::new();
                enc.schema(&mut out, &Schema::empty());
                enc.batch(&mut out, &empty_batch(), &cancel)?;
                enc.eos(&mut out);
            }
        }
        self.conn.send(&out)?;
        self.drain_output()
    }

    /// Ends the stream normally, draining whatever the server still sends.
    ///
    /// # Errors
    /// Transport errors.
    pub(crate) fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.end_input()?;
        self.drain_output()
    }

    /// Forgets the stream without touching the connection (it is being torn down).
    pub(crate) fn abandon(&mut self) {
        self.finished = true;
    }

    /// Sends the input stream's EOS (opening it on the empty schema if never written).
    fn end_input(&mut self) -> Result<()> {
        let mut out = Vec::new();
        match self.input.take() {
            Some((mut enc, _)) => enc.eos(&mut out),
            None => {
                let mut enc = StreamEncoder::new();
                enc.schema(&mut out, &Schema::empty());
                enc.eos(&mut out);
            }
        }
        self.conn.send(&out)
    }

    fn drain_output(&mut self) -> Result<()> {
        let conn = &mut *self.conn;
        if self.output.is_none() {
            wire::read_stream_start(&mut conn.reader, &conn.limits).map_err(closed_mid_call)?;
        }
        self.output = None;
        wire::drain_stream(&mut conn.reader, &conn.limits)
    }
}

/// Whether batches of `b` may be written into an IPC stream declared with `a`: the same
/// column count and types (names and nullability do not change the byte layout).
fn same_layout(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields().iter())
            .all(|(x, y)| x.data_type() == y.data_type())
}

impl Drop for StreamSession<'_> {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

fn empty_batch() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(0));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use arrow_schema::{DataType, Field};

    #[test]
    fn only_column_types_decide_whether_a_batch_fits_the_input_stream() {
        let a = Schema::new(vec![Field::new("value", DataType::Float64, false)]);
        let renamed = Schema::new(vec![Field::new("v", DataType::Float64, true)]);
        let int = Schema::new(vec![Field::new("value", DataType::Int64, false)]);
        assert!(same_layout(&a, &renamed));
        assert!(!same_layout(&a, &int));
        assert!(!same_layout(&a, &Schema::empty()));
    }
}

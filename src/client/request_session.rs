//! A stream session over a request/response transport (HTTP): every turn is one request.
//!
//! On a byte stream a stream is one long input stream and one long output stream. Over
//! HTTP the server keeps no connection state: the stream start is one request (answered
//! by the header, if any, and the first turn's output), and each later turn is another
//! request carrying the two tokens the server sealed: the cursor
//! (`vgi_rpc.stream_state#b64`, renewed every turn) and the call token
//! (`vgi_rpc.call_state#b64`, minted once at the start and echoed on every turn, since
//! any worker may serve the next turn). The answers are decoded by the same code as on
//! byte streams (logs, EXCEPTION batches, data); this module adds only the token
//! bookkeeping and the reference client's reading rules:
//!
//! - a producer answer holds at most one data batch and, unless the producer finished,
//!   a zero-row sentinel batch carrying the new cursor (at the start also the call
//!   token); a second data batch is a lock-step violation;
//! - an exchange answer's first data batch is the output, its metadata carries the new
//!   cursor, and both token keys are removed before the caller sees the metadata;
//! - closing sends nothing (the server holds nothing to release); cancelling sends the
//!   cancel turn once, and its failures are ignored, as the reference client does.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;

use super::connection::{Connection, Received, closed_mid_call};
use super::link::{Deadline, RoundTrip, Route, RouteStep};
use super::session::StreamOpen;
use crate::log::LogRecord;
use crate::wire::{self, Metadata, StreamEncoder, StreamItem, keys};
use crate::{Error, Result};

/// How an answer's data batch is told from its token sentinel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Stream start and producer turns: a zero-row batch carrying a cursor is the
    /// sentinel, anything else is data (at most one).
    Produce,
    /// Exchange turns: the first data batch is the output, whatever its size.
    Exchange,
}

/// What one answer held.
#[derive(Default)]
struct Answer {
    data: Option<(RecordBatch, Metadata)>,
    cursor: Option<String>,
    call_token: Option<String>,
}

/// An open stream over a [`RoundTrip`] (see the module docs).
pub(crate) struct RequestSession<'c> {
    conn: &'c mut Connection,
    round_trip: &'c mut Box<dyn RoundTrip>,
    deadline: &'c Deadline,
    protocol: String,
    method: String,
    header: Option<RecordBatch>,
    logs: Vec<LogRecord>,
    /// The data batch the start's answer carried, returned by the first tick.
    pending: Option<(RecordBatch, Metadata)>,
    cursor: Option<String>,
    call_token: Option<String>,
    finished: bool,
}

impl<'c> RequestSession<'c> {
    /// Starts the stream: sends the request and reads the header (if declared) and the
    /// first turn's output.
    ///
    /// # Errors
    /// Transport errors; a remote error when the stream failed at start.
    pub(crate) fn open(
        conn: &'c mut Connection,
        round_trip: &'c mut Box<dyn RoundTrip>,
        deadline: &'c Deadline,
        route: Route<'_>,
        request: &[u8],
        open: StreamOpen,
    ) -> Result<Self> {
        let body = round_trip.round_trip(route, request, deadline)?;
        let mut session = RequestSession {
            conn,
            round_trip,
            deadline,
            protocol: route.protocol.to_owned(),
            method: route.method.to_owned(),
            header: None,
            logs: Vec::new(),
            pending: None,
            cursor: None,
            call_token: None,
            finished: false,
        };
        let mut body = body.as_slice();
        if open == StreamOpen::WithHeader {
            let (header, _) = session
                .conn
                .read_single_body(&mut body, &mut session.logs)?;
            session.header = header;
        }
        let answer = session.read_answer(&mut body, Shape::Produce)?;
        session.pending = answer.data;
        session.call_token = answer.call_token;
        session.cursor = answer.cursor;
        session.finished = session.cursor.is_none();
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

    /// Whether the stream has ended (nothing buffered, no cursor to continue with).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished && self.pending.is_none()
    }

    /// The position after the last batch returned, as one opaque blob (the reference's
    /// `u32le cursor length | cursor | call token`), from which a new session of the same
    /// server could resume; `None` once the stream has ended.
    pub(crate) fn resume_token(&self) -> Option<Vec<u8>> {
        let cursor = self.cursor.as_deref()?;
        let call = self.call_token.as_deref().unwrap_or_default();
        let len = u32::try_from(cursor.len()).ok()?;
        let mut blob = Vec::with_capacity(4 + cursor.len() + call.len());
        blob.extend_from_slice(&len.to_le_bytes());
        blob.extend_from_slice(cursor.as_bytes());
        blob.extend_from_slice(call.as_bytes());
        Some(blob)
    }

    /// Producer: the next batch and its metadata; `Ok(None)` once the producer has
    /// finished. `metadata` rides on the tick request (not on a batch the start's answer
    /// already delivered).
    ///
    /// # Errors
    /// A remote error ends the stream; transport errors.
    pub(crate) fn tick_with_metadata(
        &mut self,
        metadata: Metadata,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        loop {
            if let Some(pending) = self.pending.take() {
                return Ok(Some(pending));
            }
            let Some(cursor) = self.cursor.take() else {
                self.finished = true;
                return Ok(None);
            };
            let md = self.token_metadata(metadata.clone(), &cursor);
            let body = self.send(&empty_batch(), &md)?;
            let answer = self.read_answer(&mut body.as_slice(), Shape::Produce)?;
            self.pending = answer.data;
            self.cursor = answer.cursor;
            self.finished = self.cursor.is_none();
            // A turn that produced nothing but a cursor is followed at once, as the
            // reference client's iterator does.
        }
    }

    /// Exchange: sends one input batch with its metadata, returns the output batch and
    /// its metadata (token keys removed).
    ///
    /// # Errors
    /// A remote error ends the stream; a stream without a cursor (finished, cancelled)
    /// is a protocol error.
    pub(crate) fn exchange_with_metadata(
        &mut self,
        input: &RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        // A zero-column exchange is served like a producer: its start's answer may hold a
        // batch that no exchange asked for.
        self.pending = None;
        let Some(cursor) = self.cursor.take() else {
            self.finished = true;
            return Err(Error::protocol(
                "the stream has finished: no state token available",
            ));
        };
        let md = self.token_metadata(metadata, &cursor);
        let body = self.send(input, &md)?;
        let answer = self.read_answer(&mut body.as_slice(), Shape::Exchange)?;
        self.cursor = answer.cursor;
        self.finished = self.cursor.is_none();
        answer
            .data
            .ok_or_else(|| Error::protocol("the server ended the exchange stream"))
    }

    /// Cancels the stream: one cancel turn if the stream can still continue; its outcome
    /// is ignored (the reference client's best effort).
    ///
    /// # Errors
    /// None in practice; the signature matches the byte-stream session's.
    pub(crate) fn cancel(mut self) -> Result<()> {
        self.pending = None;
        self.finished = true;
        let Some(cursor) = self.cursor.take() else {
            return Ok(());
        };
        let md = self.token_metadata(Metadata::new().with(keys::CANCEL, "1"), &cursor);
        match self.send(&empty_batch(), &md) {
            Ok(body) => {
                if let Err(e) = wire::drain_stream(&mut body.as_slice(), &self.conn.limits) {
                    tracing::debug!(error = %e, "cancel answer was not a clean stream");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cancel request failed"),
        }
        Ok(())
    }

    /// Ends the stream: nothing is sent, the server holds nothing.
    pub(crate) fn close(self) -> Result<()> {
        Ok(())
    }

    /// Forgets the stream.
    pub(crate) fn abandon(&mut self) {
        self.finished = true;
        self.pending = None;
        self.cursor = None;
    }

    /// A turn's request metadata: the caller's metadata with both tokens added.
    fn token_metadata(&self, mut md: Metadata, cursor: &str) -> Metadata {
        md.insert(keys::STREAM_STATE, cursor);
        if let Some(call) = &self.call_token {
            md.insert(keys::CALL_STATE, call.as_str());
        }
        md
    }

    /// Sends one turn: `[batch's schema][batch + metadata][EOS]` to `…/exchange`.
    fn send(&mut self, batch: &RecordBatch, md: &Metadata) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut out, &batch.schema());
        enc.batch(&mut out, batch, md)?;
        enc.eos(&mut out);
        let route = Route {
            protocol: &self.protocol,
            method: &self.method,
            step: RouteStep::StreamTurn,
        };
        self.round_trip.round_trip(route, &out, self.deadline)
    }

    /// Reads one answer stream (see [`Shape`]); a remote error ends the stream.
    fn read_answer(&mut self, body: &mut &[u8], shape: Shape) -> Result<Answer> {
        let outcome = read_answer(self.conn, body, shape, &mut self.logs);
        if outcome.is_err() {
            self.abandon();
        }
        outcome
    }
}

fn read_answer(
    conn: &mut Connection,
    body: &mut &[u8],
    shape: Shape,
    logs: &mut Vec<LogRecord>,
) -> Result<Answer> {
    let limits = conn.limits.clone();
    let mut decoder = wire::read_stream_start(body, &limits).map_err(closed_mid_call)?;
    let mut answer = Answer::default();
    loop {
        let (batch, mut md) = match wire::read_stream_item(body, &mut decoder, &limits)? {
            StreamItem::End => return Ok(answer),
            StreamItem::Batch(batch, md) => match conn.receive(batch, md, logs) {
                Received::Log => continue,
                Received::Failed(e) => return Err(e),
                Received::Data(batch, md) => (batch, md),
            },
        };
        let sentinel = batch.num_rows() == 0
            && md.contains(keys::STREAM_STATE)
            && (shape == Shape::Produce || answer.data.is_some());
        if let Some(cursor) = md.remove(keys::STREAM_STATE) {
            answer.cursor = Some(cursor);
        }
        if let Some(call) = md.remove(keys::CALL_STATE) {
            answer.call_token = Some(call);
        }
        if sentinel {
            continue;
        }
        match (&answer.data, shape) {
            (None, _) => answer.data = Some((batch, md)),
            (Some(_), Shape::Produce) => {
                return Err(Error::protocol(
                    "VGI-RPC lock-step violation: producer response contained multiple data batches",
                ));
            }
            (Some(_), Shape::Exchange) => {}
        }
    }
}

/// A zero-row batch on the empty schema: a producer tick, the cancel's carrier.
fn empty_batch() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(0));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}

//! Everything the server sends, encoded in one place.
//!
//! An answer is one outgoing IPC stream: a schema, log batches, data batches, perhaps an
//! EXCEPTION batch, then EOS. [`Answer::batch`] is the only place an outgoing data batch
//! becomes wire bytes: when the call has a side channel ([`Out::side`], shared memory)
//! it offers the batch there first and, if taken, writes the zero-row pointer batch in
//! its place; a declined batch (small, zero rows, no room) goes inline. Bytes go to a
//! [`Sink`]: a byte-stream connection writes them, an HTTP response collects them.
//!
//! The reader frees a side channel's regions: the worker's inputs are released when
//! their batches drop, and every turn boundary ([`Answer::flush`], [`Answer::end`])
//! applies those releases before the bytes go out, so the client never sees a turn's
//! end (or the output's EOS) while the worker still holds an input region.
//!
//! Answers are built in a per-connection buffer; each flush writes it with one call (or
//! two for a large batch, whose body goes out from arrow's own buffer without a copy).
//!
//! External storage ([`Out::external`]) is decided before an answer's batches are
//! written, by the call sites ([`externalize`]), because a failed upload must become the
//! call's EXCEPTION and a stream turn's logs go into the same object as its data batch:
//! the pointer then replaces the turn's every batch ([`Answer::pointer`]). A call that
//! uses shared memory never externalizes.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::{Schema, SchemaRef};

use super::exception::{ErrorSite, exception_metadata, log_metadata};
use super::registry::ServerInner;
use super::stats::Meter;
use crate::log::LogRecord;
use crate::wire::{
    ExternalLocation, Metadata, SPLIT_BODY_AT, SideChannel, StreamEncoder, external,
};
use crate::{Result, RpcError};

/// Where an answer's bytes go.
pub(crate) trait Sink {
    /// Appends `bytes` to the answer.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Ends a turn: everything written so far must reach the peer now.
    fn flush(&mut self) -> Result<()>;
    /// Appends `head`, then `parts` (a large batch's body as its arrays' own buffers).
    fn write_parts(&mut self, head: &[u8], parts: &[Buffer]) -> Result<()> {
        self.write(head)?;
        parts.iter().try_for_each(|part| self.write(part))
    }
}

/// The statistics and reusable buffer of the call an answer belongs to.
pub(crate) struct Out<'a, S: Sink + ?Sized> {
    pub sink: &'a mut S,
    pub buf: &'a mut Vec<u8>,
    pub meter: &'a mut Meter,
    /// The call's side channel (shared memory), when its request named one.
    pub side: Option<&'a dyn SideChannel>,
    /// The server's external storage (see [`externalize`]).
    pub external: Option<&'a dyn ExternalLocation>,
}

impl<S: Sink + ?Sized> Out<'_, S> {
    /// A turn boundary: applies the side channel's pending releases.
    fn reclaim(&self) {
        if let Some(side) = self.side
            && let Err(e) = side.reclaim()
        {
            tracing::warn!(error = %e, "cannot release shared-memory inputs");
        }
    }
}

/// One outgoing IPC stream.
pub(crate) struct Answer {
    enc: StreamEncoder,
    schema: SchemaRef,
}

impl Answer {
    /// Starts a stream on `schema` (the schema message goes into the buffer).
    pub(crate) fn begin<S: Sink + ?Sized>(out: &mut Out<'_, S>, schema: &SchemaRef) -> Self {
        let mut enc = StreamEncoder::new();
        enc.schema(out.buf, schema);
        Answer {
            enc,
            schema: schema.clone(),
        }
    }

    /// Appends one log batch per record (zero-row batches on the stream's schema).
    pub(crate) fn logs<S: Sink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        logs: &[LogRecord],
        server_id: &str,
        request_id: Option<&str>,
    ) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let empty = RecordBatch::new_empty(self.schema.clone());
        for log in logs {
            let md = log_metadata(log, server_id, request_id);
            self.enc.batch(out.buf, &empty, &md)?;
        }
        out.meter.outputs(&empty, logs.len() as u64);
        Ok(())
    }

    /// Appends a data batch: the one place an outgoing batch is encoded.
    pub(crate) fn batch<S: Sink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        batch: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<()> {
        out.meter.output(batch);
        if let Some(pointer) = out.side.and_then(|side| side.offer(batch, metadata)) {
            let stub = RecordBatch::new_empty(self.schema.clone());
            return self.enc.batch(out.buf, &stub, &pointer);
        }
        let body = self
            .enc
            .batch_split(out.buf, batch, metadata, SPLIT_BODY_AT)?;
        if let Some(body) = body {
            // A large body goes out from the arrays' buffers: no copy.
            out.sink.write_parts(out.buf, &body)?;
            out.buf.clear();
        }
        Ok(())
    }

    /// Appends the EXCEPTION batch reporting `error`.
    pub(crate) fn error<S: Sink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        error: &RpcError,
        site: &ErrorSite<'_>,
    ) -> Result<()> {
        let empty = RecordBatch::new_empty(self.schema.clone());
        self.enc
            .batch(out.buf, &empty, &exception_metadata(error, site))?;
        out.meter.output(&empty);
        out.meter.error(error);
        Ok(())
    }

    /// Appends the zero-row pointer batch standing for `batch` (and the logs that went
    /// into its object): `pointer` is the metadata [`externalize`] returned.
    pub(crate) fn pointer<S: Sink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        batch: &RecordBatch,
        pointer: &Metadata,
    ) -> Result<()> {
        out.meter.output(batch);
        let stub = RecordBatch::new_empty(self.schema.clone());
        self.enc.batch(out.buf, &stub, pointer)
    }

    /// Ends a turn: sends what is buffered and flushes; the stream stays open.
    pub(crate) fn flush<S: Sink + ?Sized>(&mut self, out: &mut Out<'_, S>) -> Result<()> {
        out.reclaim();
        out.sink.write(out.buf)?;
        out.buf.clear();
        out.sink.flush()
    }

    /// Ends the stream (EOS), sends it and flushes.
    pub(crate) fn end<S: Sink + ?Sized>(mut self, out: &mut Out<'_, S>) -> Result<()> {
        self.enc.eos(out.buf);
        self.flush(out)
    }
}

/// Sends `batch` (with `metadata`, after `logs`) to external storage when the server has
/// storage, the call does not use shared memory and the batch reaches the threshold.
/// `None`: write it inline; `Some(Ok(pointer))`: write [`Answer::pointer`] instead of the
/// logs and the batch; `Some(Err)`: the upload failed, answer with the error.
pub(crate) fn externalize<S: Sink + ?Sized>(
    out: &Out<'_, S>,
    schema: &SchemaRef,
    logs: &[LogRecord],
    ids: (&str, Option<&str>),
    batch: &RecordBatch,
    metadata: &Metadata,
) -> Option<Result<Metadata>> {
    let location = out
        .external
        .filter(|e| out.side.is_none() && e.wants(batch))?;
    let (server_id, request_id) = ids;
    let empty = RecordBatch::new_empty(schema.clone());
    let log_md: Vec<Metadata> = logs
        .iter()
        .map(|log| log_metadata(log, server_id, request_id))
        .collect();
    let mut batches: Vec<(&RecordBatch, &Metadata)> =
        log_md.iter().map(|md| (&empty, md)).collect();
    batches.push((batch, metadata));
    Some(external::externalize(location, schema, &batches))
}

/// Where an error happened, for its EXCEPTION batch.
pub(crate) fn site<'a>(
    inner: &'a ServerInner,
    protocol: &'a str,
    method: &'a str,
    request_id: &'a str,
) -> ErrorSite<'a> {
    ErrorSite {
        protocol,
        method,
        server_id: &inner.server_id,
        request_id,
        include_traceback: inner.include_tracebacks,
    }
}

/// A whole answer reporting `error`: the schema, the call's logs, the EXCEPTION batch.
pub(crate) fn answer_error<S: Sink + ?Sized>(
    inner: &ServerInner,
    out: &mut Out<'_, S>,
    schema: &SchemaRef,
    error: &RpcError,
    site: &ErrorSite<'_>,
    logs: &[LogRecord],
) -> Result<()> {
    let mut answer = Answer::begin(out, schema);
    answer.logs(out, logs, &inner.server_id, Some(site.request_id))?;
    answer.error(out, error, site)?;
    answer.end(out)
}

/// The empty schema (void results, errors of streams, built-ins): one shared instance.
pub(crate) fn empty() -> SchemaRef {
    static EMPTY: std::sync::LazyLock<SchemaRef> =
        std::sync::LazyLock::new(|| Arc::new(Schema::empty()));
    EMPTY.clone()
}

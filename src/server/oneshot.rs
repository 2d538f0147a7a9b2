//! Serving calls whose every turn is its own request (HTTP).
//!
//! A byte-stream connection reads a request, then feeds a stream its input until EOS
//! (`conn.rs`). A request/response transport instead answers one body with one body: a
//! unary call, a stream's start, or one turn of a stream continued from a token. This
//! module gives such a transport the engine's pieces for that — reading a body, routing,
//! running the call into a collected answer, error answers, and the call's record for
//! the hooks — so the transport adds only its own protocol (paths, status codes,
//! headers, tokens).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;

use super::Server;
use super::answer::{Out, Sink, answer_error, empty, site};
use super::call::{Caller, run};
pub(crate) use super::emit::TraceHeaders;
use super::emit::{Finished, Target, call_span, call_spans_enabled, emit};
use super::peer::Peer;
use super::registry::{Binding, ServerInner};
use super::route::{Call, Request};
use super::stats::Meter;
use super::streams::Next;
use crate::wire::{self, ExternalLocation, Limits, Metadata, StreamItem};
use crate::{Error, Result, RpcError};

/// An answer collected in memory: `parts`, then `bytes`. A large batch's body stays in
/// its arrays' own buffers (a part each, no copy), so a transport can send the answer
/// without joining them.
#[derive(Debug, Default)]
pub(crate) struct BodySink {
    /// The answer's bytes after its last part.
    pub bytes: Vec<u8>,
    /// The answer's leading parts, in order.
    pub parts: Vec<BodyPart>,
}

/// A piece of a collected answer.
#[derive(Debug)]
pub(crate) enum BodyPart {
    /// Bytes encoded for the answer.
    Owned(Vec<u8>),
    /// An array's buffer, shared with the batch it came from.
    Shared(Buffer),
}

impl BodyPart {
    pub(crate) fn len(&self) -> usize {
        match self {
            BodyPart::Owned(bytes) => bytes.len(),
            BodyPart::Shared(buffer) => buffer.len(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            BodyPart::Owned(bytes) => bytes,
            BodyPart::Shared(buffer) => buffer.as_slice(),
        }
    }
}

impl BodySink {
    /// The answer's size.
    pub(crate) fn len(&self) -> usize {
        self.parts.iter().map(BodyPart::len).sum::<usize>() + self.bytes.len()
    }

    /// Drops the answer so far.
    pub(crate) fn clear(&mut self) {
        self.parts.clear();
        self.bytes.clear();
    }

    /// Takes the answer's parts, in order (none empty).
    pub(crate) fn take_parts(&mut self) -> Vec<BodyPart> {
        let mut parts = std::mem::take(&mut self.parts);
        parts.push(BodyPart::Owned(std::mem::take(&mut self.bytes)));
        parts.retain(|part| part.len() > 0);
        parts
    }
}

impl Sink for BodySink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn write_parts(&mut self, head: &[u8], parts: &[Buffer]) -> Result<()> {
        self.bytes.extend_from_slice(head);
        self.parts
            .push(BodyPart::Owned(std::mem::take(&mut self.bytes)));
        self.parts
            .extend(parts.iter().cloned().map(BodyPart::Shared));
        Ok(())
    }
}

/// One request being answered: the call's identity, its statistics and its answer.
pub(crate) struct OneShot<'a> {
    pub inner: &'a ServerInner,
    pub peer: Arc<Peer>,
    pub request_id: String,
    pub meter: Meter,
    pub body: BodySink,
    /// Where answers' large batches go: the server's external storage by default; a
    /// transport may put a capped view of it in its place.
    pub external: Option<&'a dyn ExternalLocation>,
    /// The caller's trace context: the request metadata's, else the HTTP headers'.
    pub trace: Option<TraceHeaders>,
    /// The call's `tracing` span (none until [`OneShot::call_span`]).
    span: tracing::Span,
    buf: Vec<u8>,
    started: Instant,
}

impl<'a> OneShot<'a> {
    pub(crate) fn new(server: &'a Server, peer: Peer, request_id: String) -> Self {
        let inner = &*server.inner;
        OneShot {
            inner,
            peer: Arc::new(peer),
            request_id,
            // Errors are always tracked: the transport flags answers carrying one.
            meter: Meter::new(!inner.hooks.is_empty() || call_spans_enabled()),
            body: BodySink::default(),
            external: inner.external.as_deref(),
            trace: None,
            span: tracing::Span::none(),
            buf: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Opens the `tracing` span of this request's call (see the byte-stream engine's),
    /// for the transport to enter while it answers.
    pub(crate) fn call_span(&mut self, method: &str) -> tracing::Span {
        self.span = call_span(&self.inner.server_id, method, &self.request_id);
        self.span.clone()
    }

    /// The server's size limits for a peer that is not trusted. A one-shot request
    /// arrives whole, already bounded by the transport's own body limits, so it is not
    /// charged to the memory budget again.
    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits.clone().on_channel(false).without_budget()
    }

    /// Where answers go.
    pub(crate) fn out(&mut self) -> Out<'_, BodySink> {
        Out {
            sink: &mut self.body,
            buf: &mut self.buf,
            meter: &mut self.meter,
            side: None,
            external: self.external,
        }
    }

    /// Replaces the answer so far with an error stream on `schema` reporting `error`.
    pub(crate) fn answer_error(
        &mut self,
        schema: &SchemaRef,
        error: &RpcError,
        protocol: &str,
        method: &str,
    ) -> Result<()> {
        self.body.clear();
        self.buf.clear();
        let inner = self.inner;
        let request_id = self.request_id.clone();
        let site = site(inner, protocol, method, &request_id);
        answer_error(inner, &mut self.out(), schema, error, &site, &[])
    }

    /// An error stream on the empty schema (a request refused before dispatch).
    pub(crate) fn reject(&mut self, error: &RpcError, protocol: &str, method: &str) -> Result<()> {
        self.answer_error(&empty(), error, protocol, method)
    }

    /// An error stream on the empty schema with no traceback: a refusal by transport
    /// middleware before any method ran (the reference's sticky `SessionLostError`).
    pub(crate) fn reject_untraced(&mut self, error: &RpcError) -> Result<()> {
        self.body.clear();
        self.buf.clear();
        let inner = self.inner;
        let request_id = self.request_id.clone();
        let mut site = site(inner, "", "", &request_id);
        site.include_traceback = false;
        answer_error(inner, &mut self.out(), &empty(), error, &site, &[])
    }

    /// Runs a routed call: interceptors, handler, and its answer (for a stream, its
    /// header stream); a stream comes back open for the transport to drive.
    pub(crate) fn run(&mut self, call: Call<'a>, request: Request) -> Result<Next<'a>> {
        let inner = self.inner;
        let peer = Arc::clone(&self.peer);
        // Lent to the call (the answer's sink borrows `self`), and given back.
        let request_id = std::mem::take(&mut self.request_id);
        let caller = Caller {
            peer: &peer,
            request_id: &request_id,
            shm: false,
        };
        self.meter.input(&request.batch);
        let next = run(inner, &caller, call, request, &mut self.out());
        self.request_id = request_id;
        next
    }

    /// Hands the call's record to the hooks.
    pub(crate) fn record(&mut self, record: &OneShotRecord<'_>) {
        if !self.meter.enabled {
            return;
        }
        self.meter.stats.request_bytes = record.request_bytes;
        self.meter.stats.response_bytes = self.body.len() as u64;
        let target = match record.binding {
            Some((binding, index)) => Target::method(binding, index),
            None => match Target::named(self.inner, record.protocol, record.method, true) {
                Some(target) => target,
                None => return,
            },
        };
        let done = Finished {
            inner: self.inner,
            peer: &self.peer,
            target,
            request_id: &self.request_id,
            request_schema: record.request_schema,
            request_rows: record.request_rows,
            started: self.started,
            stream_id: record.stream_id,
            http_status: Some(record.http_status),
            trace: self.trace.as_ref(),
            span: &self.span,
        };
        emit(&done, &self.meter, &Ok(()));
    }
}

/// What a transport knows of a finished request, for its record.
pub(crate) struct OneShotRecord<'r> {
    pub binding: Option<(&'r Binding, usize)>,
    pub protocol: &'r str,
    pub method: &'r str,
    pub request_schema: &'r SchemaRef,
    pub request_rows: usize,
    pub stream_id: Option<&'r str>,
    pub http_status: u16,
    /// The request body's size as received.
    pub request_bytes: u64,
}

/// Reads a body holding one IPC stream: its first batch and that batch's metadata. A
/// parameterless request this thread read last time is not decoded again
/// ([`wire::Repeat`]).
///
/// # Errors
/// The body is not an IPC stream, or it carries no batch.
pub(crate) fn read_body(body: &[u8], limits: &Limits) -> Result<(RecordBatch, Metadata)> {
    thread_local! {
        static LAST: RefCell<wire::Repeat> = RefCell::default();
    }
    if let Ok(Some(repeated)) = LAST.try_with(|last| last.borrow().get(body, limits)) {
        return Ok(repeated);
    }
    let mut reader = body;
    let mut decoder = wire::read_stream_start(&mut reader, limits)?;
    let mut first = None;
    let mut batches = 0usize;
    while let StreamItem::Batch(batch, metadata) =
        wire::read_stream_item(&mut reader, &mut decoder, limits)?
    {
        batches += 1;
        if first.is_none() {
            first = Some((batch, metadata));
        }
    }
    let first = first.ok_or_else(|| Error::protocol("Request stream carried no batch"))?;
    if batches == 1 {
        let _ = LAST.try_with(|last| last.borrow_mut().keep(body, limits, &first.0, &first.1));
    }
    Ok(first)
}

//! Serving one byte-stream connection (stdio, Unix or TCP): read a request stream,
//! validate and route it, run the handler, write the response — then the next call.
//!
//! Every call-level failure is answered in-band and leaves the connection in sync. Only a
//! broken transport or a peer that breaks the IPC framing (so we cannot find the next
//! stream boundary) ends the connection, after a best-effort error stream.

use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

use super::emit::{Finished, Target, emit};
use super::exception::{ErrorSite, exception_metadata, framework, log_metadata};
use super::peer::Peer;
use super::registry::ServerInner;
use super::route::{Call, Rejection, Request, Routed, error_schema, route};
use super::service::{MethodKind, Response};
use super::stats::{Meter, Metered};
use super::{CallContext, Server, ids, streams};
use crate::log::LogRecord;
use crate::wire::{self, Metadata, StreamEncoder, StreamItem, keys};
use crate::{Error, Result, RpcError};

/// Largest single write or read syscall; Linux caps at 0x7ffff000 and macOS rejects
/// larger socket I/O, so stay well below `i32::MAX`.
const MAX_IO_CHUNK: usize = 1 << 30;

/// A byte-stream connection: a buffered reader owned by the connection (so buffering
/// past one stream's EOS is harmless), a writer that receives whole streams, and the
/// current call's statistics.
pub(crate) struct Conn<R, W> {
    pub reader: Metered<BufReader<R>>,
    pub writer: W,
    /// Bytes handed to `writer` on this connection.
    pub written: u64,
    pub meter: Meter,
}

impl<R: Read, W: Write> Conn<R, W> {
    pub(crate) fn new(reader: R, writer: W, metered: bool) -> Self {
        Conn {
            reader: Metered::new(BufReader::with_capacity(256 << 10, reader)),
            writer,
            written: 0,
            meter: Meter::new(metered),
        }
    }

    /// Writes `bytes` in chunks below `i32::MAX` and flushes.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_unflushed(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Writes `bytes` in chunks below `i32::MAX`; a later [`Conn::send`] flushes.
    pub(crate) fn send_unflushed(&mut self, bytes: &[u8]) -> Result<()> {
        for chunk in bytes.chunks(MAX_IO_CHUNK) {
            self.writer.write_all(chunk)?;
            self.written += chunk.len() as u64;
        }
        Ok(())
    }
}

/// Serves calls on one stdio or pipe connection until the peer closes it: shorthand for
/// [`serve_connection_from`] with [`Peer::pipe`].
///
/// # Errors
/// Transport errors, or framing the server could not recover from.
pub fn serve_connection<R: Read, W: Write>(server: &Server, reader: R, writer: W) -> Result<()> {
    serve_connection_from(server, Peer::pipe(), reader, writer)
}

/// Serves calls on one connection from `peer` until the peer closes it.
///
/// Transports call this once per accepted connection, each on its own thread; `server` is
/// shared by reference. `peer` appears in every [`super::CallRecord`] of the connection.
///
/// # Errors
/// Transport errors, or framing the server could not recover from.
pub fn serve_connection_from<R: Read, W: Write>(
    server: &Server,
    peer: Peer,
    reader: R,
    writer: W,
) -> Result<()> {
    let inner = &server.inner;
    let mut conn = Conn::new(reader, writer, !inner.hooks.is_empty());
    loop {
        match serve_call(inner, &mut conn, &peer) {
            Ok(()) => {}
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn read_request<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
) -> Result<Option<Request>> {
    let mut first = None;
    let read = (|| {
        let mut decoder = wire::read_stream_start(&mut conn.reader, &inner.limits)?;
        loop {
            match wire::read_stream_item(&mut conn.reader, &mut decoder, &inner.limits)? {
                StreamItem::Batch(batch, metadata) => {
                    if first.is_none() {
                        first = Some(Request { batch, metadata });
                    }
                }
                StreamItem::End => return Ok(()),
            }
        }
    })();
    match read {
        Ok(()) => Ok(first),
        Err(e @ Error::InvalidMessage(_)) => {
            // The bad message was skipped whole: consume the rest of the request so
            // the answer lines up with it and the connection stays usable.
            wire::drain_stream(&mut conn.reader, &inner.limits)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn serve_call<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    peer: &Peer,
) -> Result<()> {
    let request_id = ids::random_hex(16);
    conn.meter.reset();
    let (read_before, written_before) = (conn.reader.consumed, conn.written);
    let request = match read_request(inner, conn) {
        Ok(Some(request)) => request,
        Ok(None) => {
            let err = framework::protocol_error("Request stream carried no batch");
            return write_error_stream(inner, conn, &empty(), &err, "", "", &request_id, &[]);
        }
        Err(e @ (Error::Closed | Error::Io(_))) => return Err(e),
        Err(Error::InvalidMessage(message)) => {
            let err = framework::protocol_error(message);
            return write_error_stream(inner, conn, &empty(), &err, "", "", &request_id, &[]);
        }
        Err(e) => {
            // We lost the stream boundary: report, then give up on the connection.
            let err = framework::protocol_error(e.to_string());
            let _ = write_error_stream(inner, conn, &empty(), &err, "", "", &request_id, &[]);
            return Err(e);
        }
    };
    let started = Instant::now();
    conn.meter.input(&request.batch);
    let routed = route(inner, &request);
    let (target, result) = match &routed {
        Ok(Routed::TransportOptions) => {
            let target = Target::named(inner, "", keys::TRANSPORT_OPTIONS_METHOD, false);
            (target, write_transport_options(inner, conn))
        }
        Ok(Routed::Call(call)) => (
            Some(Target::method(call.binding, call.index)),
            run_call(inner, conn, *call, &request, &request_id),
        ),
        Err(rejection) => {
            let target = Target::named(
                inner,
                &rejection.protocol,
                &rejection.method,
                rejection.stream,
            );
            (target, reject(inner, conn, rejection, &request_id))
        }
    };
    if let Some(target) = target.filter(|_| conn.meter.enabled) {
        conn.meter.stats.request_bytes = conn.reader.consumed - read_before;
        conn.meter.stats.response_bytes = conn.written - written_before;
        let done = Finished {
            inner,
            peer,
            target,
            request_id: &request_id,
            request: &request.batch,
            started,
        };
        emit(&done, &conn.meter, &result);
    }
    result
}

/// Answers a request refused before dispatch.
fn reject<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    rejection: &Rejection,
    request_id: &str,
) -> Result<()> {
    write_error_stream(
        inner,
        conn,
        &rejection.schema,
        &rejection.error,
        &rejection.protocol,
        &rejection.method,
        request_id,
        &[],
    )?;
    // Our clients (and the reference's) send an input stream after a stream request;
    // consume it so the next call starts in sync.
    if rejection.stream {
        drain_input(inner, conn)
    } else {
        Ok(())
    }
}

/// Runs a routed call and writes its response.
fn run_call<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    call: Call<'_>,
    request: &Request,
    request_id: &str,
) -> Result<()> {
    let Call { binding, index } = call;
    let spec = &binding.spec.methods[index];
    let (protocol, method) = (binding.spec.name.as_str(), spec.name.as_str());
    let ctx = CallContext::new(protocol, method, request_id.to_owned(), &inner.server_id);
    match binding.service.call(index, &request.batch, &ctx) {
        Ok(Response::Unary(batch)) => {
            let schema = spec.result.clone().unwrap_or_else(empty);
            write_unary(inner, conn, &schema, batch, &ctx)
        }
        Ok(Response::Producer(state, header)) => streams::drive(
            inner,
            conn,
            &ctx,
            spec,
            streams::State::Producer(state),
            header,
        ),
        Ok(Response::Exchange(state, header)) => streams::drive(
            inner,
            conn,
            &ctx,
            spec,
            streams::State::Exchange(state),
            header,
        ),
        Err(e) => {
            let is_stream = spec.kind != MethodKind::Unary;
            let logs = ctx.take_logs();
            let schema = error_schema(spec);
            write_error_stream(
                inner,
                conn,
                &schema,
                &e.to_rpc(),
                protocol,
                method,
                request_id,
                &logs,
            )?;
            if is_stream {
                drain_input(inner, conn)
            } else {
                Ok(())
            }
        }
    }
}

/// Reads and discards one whole input stream (used after a stream call failed early).
pub(crate) fn drain_input<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
) -> Result<()> {
    wire::read_stream_start(&mut conn.reader, &inner.limits)?;
    wire::drain_stream(&mut conn.reader, &inner.limits)
}

pub(crate) fn empty() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// Appends log batches on `schema` to `out`.
pub(crate) fn encode_logs(
    enc: &mut StreamEncoder,
    out: &mut Vec<u8>,
    schema: &SchemaRef,
    logs: &[LogRecord],
    server_id: &str,
    request_id: Option<&str>,
    meter: &mut Meter,
) -> Result<()> {
    if logs.is_empty() {
        return Ok(());
    }
    let empty_batch = RecordBatch::new_empty(schema.clone());
    for log in logs {
        enc.batch(out, &empty_batch, &log_metadata(log, server_id, request_id))?;
    }
    meter.outputs(&empty_batch, logs.len() as u64);
    Ok(())
}

/// Starts a one-shot answer stream: the schema message, then the call's logs.
fn begin_answer<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    schema: &SchemaRef,
    logs: &[LogRecord],
    request_id: &str,
) -> Result<(StreamEncoder, Vec<u8>)> {
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, schema);
    encode_logs(
        &mut enc,
        &mut out,
        schema,
        logs,
        &inner.server_id,
        Some(request_id),
        &mut conn.meter,
    )?;
    Ok((enc, out))
}

fn write_unary<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    schema: &SchemaRef,
    batch: Option<RecordBatch>,
    ctx: &CallContext,
) -> Result<()> {
    let (mut enc, mut out) = begin_answer(inner, conn, schema, &ctx.take_logs(), ctx.request_id())?;
    let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    enc.batch(&mut out, &batch, &Metadata::new())?;
    conn.meter.output(&batch);
    enc.eos(&mut out);
    conn.send(&out)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_error_stream<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    schema: &SchemaRef,
    error: &RpcError,
    protocol: &str,
    method: &str,
    request_id: &str,
    logs: &[LogRecord],
) -> Result<()> {
    let (mut enc, mut out) = begin_answer(inner, conn, schema, logs, request_id)?;
    let site = ErrorSite {
        protocol,
        method,
        server_id: &inner.server_id,
        request_id,
        include_traceback: inner.include_tracebacks,
    };
    let batch = RecordBatch::new_empty(schema.clone());
    enc.batch(&mut out, &batch, &exception_metadata(error, &site))?;
    conn.meter.output(&batch);
    conn.meter.error(error);
    enc.eos(&mut out);
    conn.send(&out)
}

fn write_transport_options<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
) -> Result<()> {
    let schema = empty();
    let md = Metadata::new()
        .with(keys::TRANSPORT_SHM, "false")
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
        .with(keys::SERVER_ID, inner.server_id.clone());
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &schema);
    let batch = RecordBatch::new_empty(schema.clone());
    enc.batch(&mut out, &batch, &md)?;
    conn.meter.output(&batch);
    enc.eos(&mut out);
    conn.send(&out)
}

//! Serving one byte-stream connection (stdio, Unix or TCP): read a request stream, hand it
//! to the call engine, feed a stream call its input — then the next call.
//!
//! Every call-level failure is answered in-band and leaves the connection in sync. Only a
//! broken transport or a peer that breaks the IPC framing (so we cannot find the next
//! stream boundary) ends the connection, after a best-effort error stream.
//!
//! A transport that shares memory with its peer passes a [`SideChannelHost`] in the
//! [`ConnectionInfo`]; requests and stream inputs that arrive as shared-memory or
//! external-storage pointers are resolved (`side.rs`, `inputs.rs`) before the call
//! engine sees them.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use super::answer::{Out, Sink, answer_error, empty, site};
use super::call::{Caller, dispatch};
use super::emit::{Finished, TraceHeaders, call_span, call_spans_enabled, emit};
use super::exception::framework;
use super::inputs::{Inputs, resolve_request};
use super::peer::{Peer, TransportKind};
use super::registry::ServerInner;
use super::route::Request;
use super::side::{ConnSide, SideChannelHost};
use super::stats::Meter;
use super::streams::{Flow, Next, StreamRun};
use super::{Server, ids};
use crate::wire::{self, ExternalLocation, Limits, Metered, StreamItem};
use crate::{Error, Result, RpcError};

impl<W: Write> Sink for wire::Outbound<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(wire::Outbound::write(self, bytes)?)
    }

    fn flush(&mut self) -> Result<()> {
        Ok(wire::Outbound::flush(self)?)
    }

    fn write_parts(&mut self, head: &[u8], parts: &[arrow_buffer::Buffer]) -> Result<()> {
        Ok(wire::Outbound::write_parts(self, head, parts)?)
    }
}

/// A byte-stream connection: a buffered reader owned by the connection (so buffering
/// past one stream's EOS is harmless), the sink answers go to, the current call's
/// statistics and the answer buffer reused by every call.
pub(crate) struct Conn<R, W> {
    limits: Limits,
    reader: Metered<BufReader<R>>,
    sink: wire::Outbound<W>,
    meter: Meter,
    buf: Vec<u8>,
    side: ConnSide,
    phases: Option<Arc<dyn ReadPhases>>,
    /// The last request read whole that was one parameterless batch ([`wire::Repeat`]).
    repeat: wire::Repeat,
    /// The current call's request id (the buffer is reused).
    request_id: String,
    /// The current call's trace context, when hooks want it (the buffers are reused).
    trace: TraceHeaders,
}

impl<R: Read, W: Write> Conn<R, W> {
    pub(crate) fn new(reader: R, writer: W, metered: bool, limits: Limits) -> Self {
        Conn {
            limits,
            reader: Metered::new(BufReader::with_capacity(wire::READ_AHEAD, reader)),
            sink: wire::Outbound::new(writer, None),
            meter: Meter::new(metered),
            buf: Vec::new(),
            side: ConnSide::default(),
            phases: None,
            repeat: wire::Repeat::default(),
            request_id: String::new(),
            trace: TraceHeaders::default(),
        }
    }

    /// The reader, the side channel and where answers go (with `external` storage).
    fn split<'c>(
        &'c mut self,
        external: Option<&'c dyn ExternalLocation>,
    ) -> (
        &'c mut Metered<BufReader<R>>,
        &'c ConnSide,
        &'c Limits,
        Out<'c, wire::Outbound<W>>,
    ) {
        let Conn {
            reader,
            sink,
            meter,
            buf,
            side,
            limits,
            ..
        } = self;
        let out = Out {
            sink,
            buf,
            meter,
            side: side.channel(),
            external,
        };
        (reader, side, limits, out)
    }
}

/// Lets a transport time reads differently while a connection waits for its next
/// message (idle: the peer may think for a while) and while a message is arriving
/// (busy: a peer that stalls mid-message is broken or hostile).
///
/// The engine calls [`ReadPhases::idle`] before waiting for a request or a stream's next
/// input, and [`ReadPhases::busy`] once its first byte arrived. A socket transport sets
/// its receive timeout in each, or keeps one timeout for both and lets
/// [`ReadPhases::keep_waiting`] stretch the idle wait; a failed read ends only that
/// connection.
pub trait ReadPhases: Send + Sync {
    /// Waiting for the peer's next message.
    fn idle(&self);
    /// A message is arriving.
    fn busy(&self);
    /// The wait for the next message timed out, the `timeouts`th time in a row (from 1):
    /// whether to wait again. The default ends the connection at the first timeout.
    fn keep_waiting(&self, timeouts: u32) -> bool {
        let _ = timeouts;
        false
    }
}

/// How a transport hands a connection to the engine: who is calling, and what the
/// transport offers besides the byte stream.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The remote end, as the transport saw it.
    pub peer: Peer,
    /// Attaches the shared-memory segments the client names (transports whose peers run
    /// on this host: pipes, Unix sockets). `None`: `__transport_options__` answers
    /// `vgi_rpc.transport.shm=false` and every batch travels inline.
    pub side_channels: Option<Arc<dyn SideChannelHost>>,
    /// Read timing per phase (idle between messages, busy inside one); `None`: the
    /// transport's reads are never timed.
    pub read_phases: Option<Arc<dyn ReadPhases>>,
}

impl std::fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("peer", &self.peer)
            .field("side_channels", &self.side_channels.is_some())
            .field("read_phases", &self.read_phases.is_some())
            .finish()
    }
}

impl ConnectionInfo {
    /// A connection from `peer`, without side channels.
    pub fn new(peer: Peer) -> Self {
        ConnectionInfo {
            peer,
            side_channels: None,
            read_phases: None,
        }
    }

    /// Sets [`ConnectionInfo::read_phases`].
    #[must_use]
    pub fn with_read_phases(mut self, phases: Arc<dyn ReadPhases>) -> Self {
        self.read_phases = Some(phases);
        self
    }

    /// Sets [`ConnectionInfo::side_channels`].
    #[must_use]
    pub fn with_side_channels(mut self, host: Arc<dyn SideChannelHost>) -> Self {
        self.side_channels = Some(host);
        self
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
/// shared by reference. `peer` appears in every [`super::CallRecord`] of the connection
/// and in every call's [`super::CallContext`].
///
/// # Errors
/// Transport errors, or framing the server could not recover from.
pub fn serve_connection_from<R: Read, W: Write>(
    server: &Server,
    peer: Peer,
    reader: R,
    writer: W,
) -> Result<()> {
    serve_connection_with(server, ConnectionInfo::new(peer), reader, writer)
}

/// Serves calls on one connection described by `info` (its peer and side channels)
/// until the peer closes it.
///
/// # Errors
/// Transport errors, or framing the server could not recover from.
pub fn serve_connection_with<R: Read, W: Write>(
    server: &Server,
    info: ConnectionInfo,
    reader: R,
    writer: W,
) -> Result<()> {
    serve_connection_lending(server, info, reader, writer, None)
}

/// [`serve_connection_with`], with large answer bodies lent to the kernel through
/// `splice` when there is one (`writer` must then be unbuffered: see [`wire::Splice`]).
///
/// # Errors
/// As [`serve_connection_with`].
pub(crate) fn serve_connection_lending<R: Read, W: Write>(
    server: &Server,
    info: ConnectionInfo,
    reader: R,
    writer: W,
    splice: Option<Box<dyn wire::Splice>>,
) -> Result<()> {
    let inner = &server.inner;
    // A worker's stdio leads to the client that started it; sockets to anyone.
    let limits = inner
        .limits
        .clone()
        .on_channel(info.peer.kind == TransportKind::Pipe);
    let peer = Arc::new(info.peer);
    let side = ConnSide::new(info.side_channels, limits.clone());
    let mut conn = Conn::new(
        reader,
        writer,
        !inner.hooks.is_empty() || call_spans_enabled(),
        limits,
    );
    conn.side = side;
    conn.phases = info.read_phases;
    conn.sink.set_splice(splice);
    loop {
        match serve_call(inner, &mut conn, &peer) {
            Ok(()) => {}
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Reads one whole request stream; its first batch is the request. A request that
/// repeats this connection's last parameterless one byte for byte is not decoded again
/// ([`wire::Repeat`]).
pub(crate) fn read_request<R: Read, W: Write>(conn: &mut Conn<R, W>) -> Result<Option<Request>> {
    if let Some((batch, metadata)) = conn.repeat.take_from(&mut conn.reader, &conn.limits)? {
        return Ok(Some(Request::new(batch, metadata)));
    }
    let start = conn.reader.consumed;
    let mut first = None;
    let mut batches = 0usize;
    let (reader, limits) = (&mut conn.reader, &conn.limits);
    let read = (|| {
        let mut decoder = wire::read_stream_start(reader, limits)?;
        loop {
            match wire::read_stream_item(reader, &mut decoder, limits)? {
                StreamItem::Batch(batch, metadata) => {
                    batches += 1;
                    if first.is_none() {
                        first = Some(Request::new(batch, metadata));
                    }
                }
                StreamItem::End => return Ok(()),
            }
        }
    })();
    match read {
        Ok(()) => {
            if let (Some(request), 1) = (&first, batches) {
                let len = usize::try_from(conn.reader.consumed - start).unwrap_or(usize::MAX);
                conn.repeat
                    .keep_noted(len, &conn.limits, &request.batch, &request.metadata);
            }
            Ok(first)
        }
        Err(e @ (Error::InvalidMessage(_) | Error::OverBudget { .. })) => {
            // The bad (or unaffordable) message was skipped whole: consume the rest of
            // the request so the answer lines up with it and the connection stays usable.
            wire::drain_stream(&mut conn.reader, &conn.limits)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn serve_call<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    peer: &Arc<Peer>,
) -> Result<()> {
    await_message(&mut conn.reader, conn.phases.as_deref())?;
    // The request id's buffer is the connection's, lent to each call.
    let mut request_id = std::mem::take(&mut conn.request_id);
    ids::random_hex_into(&mut request_id, 16);
    let served = serve_request(inner, conn, peer, &request_id);
    conn.request_id = request_id;
    served
}

fn serve_request<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    peer: &Arc<Peer>,
    request_id: &str,
) -> Result<()> {
    conn.meter.reset();
    let (read_before, written_before) = (conn.reader.consumed, conn.sink.written());
    let request = match read_request(conn) {
        Ok(Some(request)) => request,
        Ok(None) => {
            let err = framework::protocol_error("Request stream carried no batch");
            return answer_unrouted(inner, conn, &err, request_id);
        }
        Err(e @ (Error::Closed | Error::Disconnected(_) | Error::Io(_))) => return Err(e),
        Err(Error::InvalidMessage(message)) => {
            let err = framework::protocol_error(message);
            return answer_unrouted(inner, conn, &err, request_id);
        }
        Err(e @ Error::OverBudget { .. }) => {
            return answer_unrouted(inner, conn, &e.to_rpc(), request_id);
        }
        Err(e) => {
            // We lost the stream boundary: report, then give up on the connection.
            let err = framework::protocol_error(e.to_string());
            let _ = answer_unrouted(inner, conn, &err, request_id);
            return Err(e);
        }
    };
    let started = Instant::now();
    let method = request.metadata.get(wire::keys::METHOD).unwrap_or_default();
    let call = call_span(&inner.server_id, method, request_id);
    let _call = call.enter();
    let traced = conn.meter.enabled && conn.trace.refill(&request.metadata);
    let _span = tracing::debug_span!(
        target: wire::trace::TARGET,
        "serve",
        method = %request.metadata.get(wire::keys::METHOD).unwrap_or_default(),
        request_id = %request_id,
    )
    .entered();
    let mut request = request;
    conn.side.begin_call(&mut request);
    resolve_request(inner, &mut request, &conn.limits);
    conn.meter.input(&request.batch);
    // Only the shape: holding the batch would hold a shared-memory request past the answer.
    let shape = conn
        .meter
        .enabled
        .then(|| (request.batch.schema(), request.batch.num_rows()));
    let caller = Caller {
        peer,
        request_id,
        shm: conn.side.supported(),
    };
    let phases = conn.phases.clone();
    let (reader, side, limits, mut out) = conn.split(inner.external.as_deref());
    let (target, next) = dispatch(inner, &caller, request, &mut out);
    let inputs = Inputs {
        side,
        external: inner.external.as_deref(),
        limits,
    };
    let result = next.and_then(|next| match next {
        Next::Done => Ok(()),
        Next::DrainInput => drain_input(limits, reader),
        Next::Stream(run) => pump(&inputs, reader, phases.as_deref(), *run, &mut out),
    });
    if let (Some(target), Some((schema, rows))) = (target, shape) {
        conn.meter.stats.request_bytes = conn.reader.consumed - read_before;
        conn.meter.stats.response_bytes = conn.sink.written() - written_before;
        let done = Finished {
            inner,
            peer,
            target,
            request_id,
            request_schema: &schema,
            request_rows: rows,
            started,
            stream_id: None,
            http_status: None,
            trace: traced.then_some(&conn.trace),
            span: &call,
        };
        emit(&done, &conn.meter, &result);
    }
    result
}

/// Feeds a stream call the client's input stream, one batch per turn (pointers
/// resolved), until either side ends it.
fn pump<R: Read, S: Sink>(
    inputs: &Inputs<'_>,
    reader: &mut Metered<BufReader<R>>,
    phases: Option<&dyn ReadPhases>,
    mut run: StreamRun<'_>,
    out: &mut Out<'_, S>,
) -> Result<()> {
    let limits = inputs.limits;
    let mut input = wire::read_stream_start(reader, limits).map_err(|e| match e {
        Error::Closed => Error::disconnected("connection closed before the stream's input began"),
        other => other,
    })?;
    run.begin_output(out)?;
    loop {
        // The client may think between inputs as long as between calls.
        await_message(reader, phases)?;
        let item = match wire::read_stream_item(reader, &mut input, limits) {
            // The input was skipped whole: the turn fails, the connection stays usable.
            Err(e @ Error::OverBudget { .. }) => {
                run.fail(&e, out)?;
                return wire::drain_stream(reader, limits);
            }
            item => item?,
        };
        match item {
            StreamItem::End => return run.end(out),
            StreamItem::Batch(batch, metadata) => {
                let flow = match inputs.resolve(batch, metadata) {
                    Ok((batch, metadata)) => run.turn(batch, metadata, out, None)?,
                    Err(e) => run.fail(&e, out)?,
                };
                if flow == Flow::Over {
                    return wire::drain_stream(reader, limits);
                }
            }
        }
    }
}

/// Waits (idle-timed) until the peer's next message begins, then switches to the
/// in-message timing. At EOF it returns at once: the reader reports the close.
fn await_message<R: Read>(
    reader: &mut Metered<BufReader<R>>,
    phases: Option<&dyn ReadPhases>,
) -> Result<()> {
    let Some(phases) = phases else {
        return Ok(());
    };
    phases.idle();
    let mut timeouts = 0;
    let waited = loop {
        match reader.fill_buf().map(|_| ()) {
            Err(e) if timed_out(&e) && phases.keep_waiting(timeouts + 1) => timeouts += 1,
            waited => break waited,
        }
    };
    phases.busy();
    match waited {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(Error::Io(e)),
    }
}

/// A receive timeout (`SO_RCVTIMEO` reports `EAGAIN`).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Answers a request that could not be attributed to any method.
fn answer_unrouted<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    error: &RpcError,
    request_id: &str,
) -> Result<()> {
    let (_, _, _, mut out) = conn.split(None);
    answer_error(
        inner,
        &mut out,
        &empty(),
        error,
        &site(inner, "", "", request_id),
        &[],
    )
}

/// Answers the connection's first request with `error` (used to refuse a connection).
pub(crate) fn refuse_with<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    error: &RpcError,
) -> Result<()> {
    let request = read_request(conn)?;
    let md = request.as_ref().map(|r| &r.metadata);
    let protocol = md.and_then(|m| m.get(crate::wire::keys::PROTOCOL));
    let method = md.and_then(|m| m.get(crate::wire::keys::METHOD));
    let request_id = ids::random_hex(16);
    let site = site(
        inner,
        protocol.unwrap_or_default(),
        method.unwrap_or_default(),
        &request_id,
    );
    let (_, _, _, mut out) = conn.split(None);
    answer_error(inner, &mut out, &empty(), error, &site, &[])
}

/// Reads and discards one whole input stream (after a stream call failed early).
fn drain_input<R: Read>(limits: &Limits, reader: &mut Metered<BufReader<R>>) -> Result<()> {
    wire::read_stream_start(reader, limits)?;
    wire::drain_stream(reader, limits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::{Metadata, REPEAT_HITS, keys, repeat_tests};

    fn rows(conn: &mut Conn<&[u8], std::io::Sink>) -> Result<usize> {
        Ok(read_request(conn)?.expect("a request").batch.num_rows())
    }

    #[test]
    fn a_request_repeating_the_last_is_read_from_the_connections_repeat() {
        let metadata = Metadata::new().with(keys::METHOD, "noop");
        let noop = repeat_tests::stream(1, &metadata);
        let other = repeat_tests::stream(2, &metadata);
        let bytes = [&noop[..], &noop, &other, &noop].concat();
        let mut conn = Conn::new(&bytes[..], std::io::sink(), false, Limits::default());
        let hits = REPEAT_HITS.get();
        let read: Vec<usize> = (0..4).map(|_| rows(&mut conn).unwrap()).collect();
        assert_eq!(read, [1, 1, 2, 1]);
        assert_eq!(
            REPEAT_HITS.get(),
            hits + 1,
            "only the second repeats the one before"
        );
        assert_eq!(conn.reader.consumed, bytes.len() as u64);
        assert!(matches!(rows(&mut conn), Err(Error::Closed)));

        // A cut repeat is no hit: it is decoded, and found cut.
        let bytes = [&noop[..], &noop[..noop.len() - 1]].concat();
        let mut conn = Conn::new(&bytes[..], std::io::sink(), false, Limits::default());
        assert_eq!(rows(&mut conn).unwrap(), 1);
        assert!(matches!(rows(&mut conn), Err(Error::Disconnected(_))));
        assert_eq!(REPEAT_HITS.get(), hits + 1);
    }

    #[test]
    fn traced_requests_differing_in_their_traceparent_are_read_from_the_repeat() {
        let traceparents = [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-1234567890abcdef1234567890abcdef-0123456789abcdef-00",
            "00-fedcba9876543210fedcba9876543210-0123456789abcdef-01",
        ];
        let target = crate::client::Target::new("Svc", Some("1"));
        let params = repeat_tests::void(1);
        let mut encoder = crate::client::request::RequestEncoder::new();
        let mut bytes = Vec::new();
        for traceparent in traceparents {
            let per_call = Metadata::new().with(keys::TRACEPARENT, traceparent);
            let none = Metadata::new();
            bytes.extend_from_slice(
                encoder
                    .encode_with(&target, "noop", &params, &none, &per_call, None)
                    .unwrap()
                    .head(),
            );
        }
        let mut conn = Conn::new(&bytes[..], std::io::sink(), false, Limits::default());
        let hits = REPEAT_HITS.get();
        for traceparent in traceparents {
            let request = read_request(&mut conn).unwrap().expect("a request");
            assert_eq!(request.metadata.get(keys::TRACEPARENT), Some(traceparent));
            assert_eq!(request.metadata.get(keys::METHOD), Some("noop"));
        }
        assert_eq!(REPEAT_HITS.get(), hits + 2, "all but the first are repeats");
        assert_eq!(conn.reader.consumed, bytes.len() as u64);
    }
}

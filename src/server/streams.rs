//! Driving a producer or exchange stream over a byte-stream connection.
//!
//! After the request: an optional header stream, then lockstep over one long-lived client
//! input stream and one long-lived server output stream. The output schema goes out only
//! once the client's input schema has arrived (the client writes its first tick without
//! waiting). Each turn's logs and batch are written with one syscall.

use std::io::{Read, Write};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::CallContext;
use super::conn::{Conn, drain_input, empty, encode_logs, write_error_stream};
use super::exception::{ErrorSite, exception_metadata};
use super::registry::ServerInner;
use super::service::MethodSpec;
use crate::stream::coerce_batch;
use crate::stream::{ExchangeState, ProducerState, Turn};
use crate::wire::{self, Metadata, StreamEncoder, StreamItem, keys};
use crate::{Error, Result, RpcError};

/// The state object behind a stream call.
pub(crate) enum State {
    Producer(Box<dyn ProducerState>),
    Exchange(Box<dyn ExchangeState>),
}

impl State {
    fn output_schema(&self) -> SchemaRef {
        match self {
            State::Producer(s) => s.output_schema(),
            State::Exchange(s) => s.output_schema(),
        }
    }

    fn on_cancel(&mut self) {
        // The protocol says cancel hooks' errors are swallowed.
        let _ = match self {
            State::Producer(s) => s.on_cancel(),
            State::Exchange(s) => s.on_cancel(),
        };
    }

    fn turn(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        match self {
            State::Producer(s) => s.produce(turn),
            State::Exchange(s) => {
                let input = coerce_batch(&input, &s.input_schema())?;
                s.exchange(input, turn)
            }
        }
    }
}

/// Runs a stream call to completion.
pub(crate) fn drive<R: Read, W: Write>(
    inner: &ServerInner,
    conn: &mut Conn<R, W>,
    ctx: &CallContext,
    spec: &MethodSpec,
    mut state: State,
    header: Option<RecordBatch>,
) -> Result<()> {
    let site = ErrorSite {
        protocol: ctx.protocol(),
        method: ctx.method(),
        server_id: &inner.server_id,
        request_id: ctx.request_id(),
        include_traceback: inner.include_tracebacks,
    };
    let mut init_logs = ctx.take_logs();
    if let Some(header_schema) = &spec.header {
        let Some(header) = header else {
            let err = RpcError::runtime_error(format!(
                "{}() declared a header but returned none",
                spec.name
            ));
            write_error_stream(
                inner,
                conn,
                &empty(),
                &err,
                site.protocol,
                site.method,
                site.request_id,
                &init_logs,
            )?;
            return drain_input(inner, conn);
        };
        let mut out = Vec::new();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut out, header_schema);
        encode_logs(
            &mut enc,
            &mut out,
            header_schema,
            &init_logs,
            &inner.server_id,
            Some(ctx.request_id()),
            &mut conn.meter,
        )?;
        enc.batch(&mut out, &header, &Metadata::new())?;
        conn.meter.output(&header);
        enc.eos(&mut out);
        conn.send(&out)?;
        init_logs.clear();
    }

    let mut input =
        wire::read_stream_start(&mut conn.reader, &inner.limits).map_err(closed_is_protocol)?;
    let output_schema = state.output_schema();
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &output_schema);
    encode_logs(
        &mut enc,
        &mut out,
        &output_schema,
        &init_logs,
        &inner.server_id,
        Some(ctx.request_id()),
        &mut conn.meter,
    )?;

    loop {
        let (batch, mut metadata) =
            match wire::read_stream_item(&mut conn.reader, &mut input, &inner.limits)? {
                StreamItem::End => {
                    enc.eos(&mut out);
                    return conn.send(&out);
                }
                StreamItem::Batch(batch, metadata) => (batch, metadata),
            };
        if metadata.contains(keys::CANCEL) {
            conn.meter.cancelled = true;
            state.on_cancel();
            enc.eos(&mut out);
            conn.send(&out)?;
            return wire::drain_stream(&mut conn.reader, &inner.limits);
        }
        if matches!(state, State::Exchange(_)) {
            conn.meter.input(&batch);
        }
        strip_protocol_keys(&mut metadata);
        let mut turn = Turn::new(&metadata, &output_schema);
        let mut result = state.turn(batch, &mut turn);
        if result.is_ok() && turn.output.is_none() && !turn.finished {
            result = Err(RpcError::runtime_error(format!(
                "{}() turn produced no output batch",
                spec.name
            ))
            .into());
        }
        encode_logs(
            &mut enc,
            &mut out,
            &output_schema,
            &turn.logs,
            &inner.server_id,
            None,
            &mut conn.meter,
        )?;
        match result {
            Err(e) => {
                let error = e.to_rpc();
                let md = exception_metadata(&error, &site);
                let batch = RecordBatch::new_empty(output_schema.clone());
                enc.batch(&mut out, &batch, &md)?;
                conn.meter.output(&batch);
                conn.meter.error(&error);
                enc.eos(&mut out);
                conn.send(&out)?;
                return wire::drain_stream(&mut conn.reader, &inner.limits);
            }
            Ok(()) => {
                if let Some((batch, md)) = turn.output.take() {
                    let body = enc.batch_split(&mut out, &batch, &md, SPLIT_BODY_AT)?;
                    conn.meter.output(&batch);
                    if let Some(body) = body {
                        // A large body goes out from arrow's buffer: no second copy.
                        conn.send_unflushed(&out)?;
                        out.clear();
                        conn.send_unflushed(&body)?;
                    }
                }
                if turn.finished {
                    enc.eos(&mut out);
                    conn.send(&out)?;
                    return wire::drain_stream(&mut conn.reader, &inner.limits);
                }
                conn.send(&out)?;
                out.clear();
            }
        }
    }
}

/// Output batch bodies of at least this many bytes are written from arrow's encoded
/// buffer instead of being copied into the turn's output buffer first (one extra
/// `write` per batch, worth it only for large bodies).
const SPLIT_BODY_AT: usize = 256 << 10;

/// Removes the keys the protocol owns so application code sees only its own metadata.
fn strip_protocol_keys(md: &mut Metadata) {
    for key in [keys::CANCEL, keys::STREAM_STATE, "vgi_rpc.call_state#b64"] {
        md.remove(key);
    }
}

fn closed_is_protocol(e: Error) -> Error {
    match e {
        Error::Closed => Error::protocol("connection closed before the stream's input began"),
        other => other,
    }
}

//! `stream_open` and the nested loop that serves the stream's ops until its terminal
//! event: `done`, an error, `cancel` or `close` (CLIENT_DRIVER_PROTOCOL §4.4-4.9, §5).

use std::io::{BufRead, Write};

use base64::Engine as _;
use serde_json::{Map, Value};
use vgi_rpc::client::ClientStream;
use vgi_rpc::wire::Metadata;

use super::reply::{Reply, call_error, ok, refused, with_logs};
use super::{Channel, Flow, Session, ipc};

/// Opens the stream and, when it opened, serves it until it ends.
pub(crate) fn open<R: BufRead, W: Write>(
    session: &mut Session,
    request: &Map<String, Value>,
    channel: &mut Channel<R, W>,
) -> Flow {
    let Some(text) = request.get("request_b64").and_then(Value::as_str) else {
        channel.send(refused("stream_open: `request_b64` is required"));
        return Flow::Continue;
    };
    // The flag is authoritative and never inferred; the client needs no stream kind to
    // open a stream (ticks and exchanges are separate ops), so it is only checked here.
    if !request.get("is_exchange").is_some_and(Value::is_boolean) {
        channel.send(refused("stream_open: boolean `is_exchange` is required"));
        return Flow::Continue;
    }
    let has_header = request
        .get("has_header")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (params, metadata) = match ipc::decode_batch("request_b64", text) {
        Ok(decoded) => decoded,
        Err(e) => {
            channel.send(refused(e));
            return Flow::Continue;
        }
    };
    let (method, target, options) = match session.route(&metadata) {
        Ok(route) => route,
        Err(e) => {
            channel.send(refused(e));
            return Flow::Continue;
        }
    };
    let logs = std::sync::Arc::clone(&session.logs);
    let drain = move || match logs.lock() {
        Ok(mut logs) => std::mem::take(&mut *logs),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    let opened = if has_header {
        session
            .client
            .open_stream_with_header(&target, &method, &params, &options)
    } else {
        session
            .client
            .open_stream(&target, &method, &params, &options)
    };
    let stream = match opened {
        Ok(stream) => stream,
        Err(e) => {
            let mut reply = ok();
            reply.insert("header_b64".into(), Value::Null);
            reply.insert("error".into(), call_error(&e));
            channel.send(with_logs(reply, drain()));
            return Flow::Continue;
        }
    };
    let header = match stream.header() {
        Some(batch) => match ipc::encode_batch(batch, &Metadata::new()) {
            Ok(b64) => Value::String(b64),
            Err(e) => {
                channel.send(refused(e));
                return Flow::Continue;
            }
        },
        None => Value::Null,
    };
    let mut reply = ok();
    reply.insert("header_b64".into(), header);
    reply.insert("error".into(), Value::Null);
    channel.send(with_logs(reply, drain()));
    serve(stream, channel, drain)
}

/// What one stream op did to the stream.
enum Step {
    /// The stream is still open.
    Open(Reply),
    /// The op was terminal.
    Ended(Reply),
}

/// The nested loop: stream ops until a terminal event, `shutdown` or EOF.
fn serve<R: BufRead, W: Write>(
    mut stream: ClientStream<'_>,
    channel: &mut Channel<R, W>,
    drain: impl Fn() -> Vec<vgi_rpc::LogRecord>,
) -> Flow {
    loop {
        let Some(request) = channel.next_request() else {
            return Flow::Eof;
        };
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let step = match op {
            "shutdown" => return Flow::Shutdown,
            "tick" | "next_with_token" => tick(&mut stream, &request, op == "next_with_token"),
            "exchange" => exchange(&mut stream, &request),
            // Both consume the stream and end this loop.
            "cancel" | "close" => {
                let outcome = if op == "cancel" {
                    stream.cancel()
                } else {
                    stream.close()
                };
                let mut reply = ok();
                if let Err(e) = outcome {
                    reply.insert("error".into(), call_error(&e));
                }
                let reply = if op == "cancel" {
                    with_logs(reply, drain())
                } else {
                    reply
                };
                channel.send(reply);
                return Flow::Continue;
            }
            "" => Step::Open(refused("the request has no string `op`")),
            other => Step::Open(refused(format!(
                "`{other}` while a stream is open: only tick, next_with_token, exchange, cancel, close and shutdown"
            ))),
        };
        match step {
            Step::Open(reply) => channel.send(with_logs(reply, drain())),
            Step::Ended(reply) => {
                channel.send(with_logs(reply, drain()));
                return Flow::Continue;
            }
        }
    }
}

/// `tick` / `next_with_token`: the next producer batch.
fn tick(stream: &mut ClientStream<'_>, request: &Map<String, Value>, with_token: bool) -> Step {
    let metadata = match request.get("input_b64").and_then(Value::as_str) {
        // Only the per-tick metadata is sent upstream; the carrier batch is ignored.
        Some(text) => match ipc::decode_batch("input_b64", text) {
            Ok((_, metadata)) => metadata,
            Err(e) => return Step::Open(refused(e)),
        },
        None => Metadata::new(),
    };
    let outcome = stream.tick_with_metadata(metadata);
    let mut reply = ok();
    if with_token {
        // Byte-stream transports carry no resumable stream state (null); over HTTP the
        // token is the opaque resume blob, base64.
        let token = stream.resume_token().map_or(Value::Null, |blob| {
            Value::String(base64::engine::general_purpose::STANDARD.encode(blob))
        });
        reply.insert("token".into(), token);
    }
    match outcome {
        Ok(Some((batch, metadata))) => match ipc::encode_batch(&batch, &metadata) {
            Ok(b64) => {
                reply.insert("done".into(), Value::Bool(false));
                reply.insert("batch_b64".into(), Value::String(b64));
                reply.insert("error".into(), Value::Null);
                Step::Open(reply)
            }
            Err(e) => Step::Ended(refused(e)),
        },
        Ok(None) => {
            reply.insert("done".into(), Value::Bool(true));
            reply.insert("batch_b64".into(), Value::Null);
            reply.insert("error".into(), Value::Null);
            Step::Ended(reply)
        }
        Err(e) => Step::Ended(ended_with(reply, &e)),
    }
}

/// `exchange`: one input batch (with its metadata) in, one batch out.
fn exchange(stream: &mut ClientStream<'_>, request: &Map<String, Value>) -> Step {
    let Some(text) = request.get("input_b64").and_then(Value::as_str) else {
        return Step::Open(refused("exchange: `input_b64` is required"));
    };
    let (input, metadata) = match ipc::decode_batch("input_b64", text) {
        Ok(decoded) => decoded,
        Err(e) => return Step::Open(refused(e)),
    };
    let mut reply = ok();
    match stream.exchange_with_metadata(&input, metadata) {
        Ok((batch, metadata)) => match ipc::encode_batch(&batch, &metadata) {
            Ok(b64) => {
                reply.insert("done".into(), Value::Bool(false));
                reply.insert("batch_b64".into(), Value::String(b64));
                reply.insert("error".into(), Value::Null);
                Step::Open(reply)
            }
            Err(e) => Step::Ended(refused(e)),
        },
        Err(e) => Step::Ended(ended_with(reply, &e)),
    }
}

/// A turn that failed: the stream is over, the error is the call's.
fn ended_with(mut reply: Reply, error: &vgi_rpc::Error) -> Reply {
    reply.insert("done".into(), Value::Bool(true));
    reply.insert("batch_b64".into(), Value::Null);
    reply.insert("error".into(), call_error(error));
    reply
}

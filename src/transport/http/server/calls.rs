//! Answering one RPC POST: runs where blocking is allowed (`conn::offload`), from the
//! decoded body to the answer's bytes.
//!
//! Checks run in the reference's order — response budget, routing, content type, method
//! kind, body, routing keys, version and parameters — so that a request with several
//! faults gets the same status and error as from the reference. Request faults are 4xx
//! with an Arrow error stream on the empty schema; anything the method itself reports is
//! a 200 whose stream carries the EXCEPTION (flagged with `X-VGI-RPC-Error`).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::App;
use super::continuation::{CallNote, Suspender};
use super::storage;
use super::{MAX_RESPONSE_LIMIT, MIN_RESPONSE_LIMIT};
use crate::server::exception::framework;
use crate::server::oneshot::{OneShot, OneShotRecord, TraceHeaders, read_body};
use crate::server::registry::Binding;
use crate::server::route::{Call, Request, Routed, error_schema, route};
use crate::server::streams::{Flow, Next, State, StreamRun};
use crate::server::{CallContext, MethodKind, Peer, Response};
use crate::wire::{Metadata, keys};
use crate::{ErrorCode, RpcError};

/// The content type of every Arrow body, both ways.
pub(crate) const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Which RPC route a POST addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    Init,
    Exchange,
    /// `__upload_url__/init` (`storage.rs`).
    UploadUrls,
}

/// One RPC POST, its body already decoded.
pub(crate) struct Post {
    pub protocol: String,
    pub method: String,
    pub kind: Kind,
    pub content_type: Option<String>,
    pub budget: Option<String>,
    pub body: Vec<u8>,
    pub peer: Peer,
    pub request_id: String,
    /// The body's size as received (before decoding), for the access log.
    pub received: u64,
    /// The `traceparent` / `tracestate` headers (request metadata wins over them).
    pub trace: Option<TraceHeaders>,
}

/// An Arrow answer.
pub(crate) struct Answer {
    pub status: u16,
    /// The body in parts (`BodySink`), sent without joining them.
    pub body: Vec<crate::server::oneshot::BodyPart>,
    /// The body carries an EXCEPTION from the method (a 200).
    pub failed: bool,
}

/// Answers one RPC POST.
pub(crate) fn answer(app: &App, mut post: Post) -> Answer {
    // Uploads of this request's answer count against the external cap, if one is set.
    let capped = app
        .options
        .storage
        .max_externalized_response_bytes
        .zip(app.server.inner.external.as_deref())
        .map(|(cap, external)| storage::Capped::new(external, cap, &post.method));
    // Moved to the engine, which keeps them for the call (nothing below reads them here).
    let kind = post.peer.kind;
    let peer = std::mem::replace(&mut post.peer, Peer::new(kind, None));
    let mut shot = OneShot::new(&app.server, peer, std::mem::take(&mut post.request_id));
    if let Some(capped) = &capped {
        shot.external = Some(capped);
    }
    let span = shot.call_span(&post.method);
    let _call = span.enter();
    shot.trace.clone_from(&post.trace);
    let status = match serve(app, &post, &mut shot) {
        Ok(status) => status,
        Err(Refusal { status, error }) => {
            // Request faults go out on the empty schema; an engine failure here (which
            // writes to memory) cannot happen, and would leave the body empty.
            let _ = shot.reject(&error, &post.protocol, &post.method);
            if status == 500 {
                // The server's own failures (an input it could not fetch, say) go out
                // as 200 + X-VGI-RPC-Error, as the reference translates its 500s.
                shot.meter.failed = true;
                200
            } else {
                status
            }
        }
    };
    Answer {
        status,
        failed: status == 200 && shot.meter.failed,
        body: shot.body.take_parts(),
    }
}

/// A request refused with a 4xx (or 500): its status and the error its body reports.
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) error: Box<RpcError>,
}

pub(super) fn refusal(status: u16, error: RpcError) -> Refusal {
    Refusal {
        status,
        error: Box::new(error),
    }
}

fn serve(app: &App, post: &Post, shot: &mut OneShot<'_>) -> Result<u16, Refusal> {
    let limit = response_limit(app, post.budget.as_deref())?;
    let (binding, index) = resolve(app, &post.protocol, &post.method)?;
    if post.content_type.as_deref() != Some(ARROW_STREAM) {
        return Err(refusal(
            415,
            content_type_error(post.content_type.as_deref()),
        ));
    }
    let spec = &binding.spec.methods[index];
    let stream = spec.kind != MethodKind::Unary;
    match (post.kind, stream) {
        (Kind::Unary, true) => {
            return Err(refusal(
                400,
                type_error(format!(
                    "Stream method '{}' requires /init and /exchange endpoints",
                    spec.name
                )),
            ));
        }
        (Kind::Init, false) => {
            return Err(refusal(
                400,
                type_error(format!("Method '{}' is not a stream", spec.name)),
            ));
        }
        (Kind::Exchange, false) => {
            return Err(refusal(
                400,
                type_error(format!("Method '{}' does not support /exchange", spec.name)),
            ));
        }
        _ => {}
    }
    let limits = shot.limits();
    let (mut batch, metadata) = read_body(&post.body, &limits)
        .map_err(|e| refusal(400, RpcError::new("ArrowInvalid", e.to_string())))?;
    if post.kind != Kind::Exchange && storage::is_pointer(&batch, &metadata) {
        // The parameters arrived through storage; routing stays the outer batch's.
        batch = storage::resolve(app, &batch, &metadata, &limits)
            .map_err(|e| refusal(500, e.to_rpc()))?
            .0;
    }
    if post.kind == Kind::Exchange {
        return continue_stream(app, post, shot, (binding, index), batch, metadata, limit);
    }
    let request = checked_request(post, batch, metadata)?;
    if let Some(trace) = TraceHeaders::from_metadata(&request.metadata) {
        shot.trace = Some(trace);
    }
    let schema = request.batch.schema();
    let rows = request.batch.num_rows();
    let call = match route(shot.inner, &request) {
        Ok(Routed::Call(call)) => call,
        Ok(Routed::TransportOptions) => {
            return Err(refusal(404, reserved_error(keys::TRANSPORT_OPTIONS_METHOD)));
        }
        Err(rejection) => return Err(refusal(400, rejection.error)),
    };
    let record = |shot: &mut OneShot<'_>, stream_id: Option<&str>| {
        shot.record(&OneShotRecord {
            binding: Some((binding, index)),
            protocol: &post.protocol,
            method: &post.method,
            request_schema: &schema,
            request_rows: rows,
            stream_id,
            http_status: 200,
            request_bytes: post.received,
        });
    };
    // A stream's first turn reads the request's metadata again; a unary call never does.
    let tick = if stream {
        request.metadata.clone()
    } else {
        Metadata::new()
    };
    let next = shot.run(call, request);
    match next {
        Ok(Next::Stream(run)) => {
            let stream_id = crate::server::ids::random_hex(32);
            start_stream(app, shot, *run, call, &stream_id, tick, limit);
            record(shot, Some(&stream_id));
        }
        Ok(Next::Done | Next::DrainInput) => {
            if post.kind == Kind::Unary {
                let _ = cap(shot, limit, &error_schema(spec), &spec.name);
            }
            let stream_id = stream.then(|| crate::server::ids::random_hex(32));
            record(shot, stream_id.as_deref());
        }
        Err(e) => return Err(refusal(500, e.to_rpc())),
    }
    Ok(200)
}

/// Starts a stream: for a producer (or a zero-column exchange, which the reference
/// drives the same way) one turn on the request's tick; for an exchange, just the
/// continuation.
fn start_stream(
    app: &App,
    shot: &mut OneShot<'_>,
    mut run: StreamRun<'_>,
    call: Call<'_>,
    stream_id: &str,
    tick: Metadata,
    limit: u64,
) {
    let protocol = call.binding.spec.name.as_str();
    let spec = &call.binding.spec.methods[call.index];
    let note = CallNote::new(stream_id, &spec.name, limit);
    let call_token = app.continuations.call_token(protocol, &note);
    let mut suspender = Suspender {
        continuations: &app.continuations,
        protocol,
        call_id: &note.id,
        call_token: Some(&call_token),
        turn: 1,
        held: false,
        state_bytes: 0,
    };
    let mut out = shot.out();
    let flow = run.begin_output(&mut out).and_then(|()| {
        if run.takes_input() {
            run.suspend_idle(&mut out, &mut suspender)
        } else {
            let tick_batch = RecordBatch::new_empty(crate::server::answer::empty());
            run.turn(tick_batch, tick, &mut out, Some(&mut suspender))
        }
    });
    finish_turn(
        app, shot, run, flow, &suspender, &note.id, limit, &spec.name,
    );
}

/// After a stream turn: holds a state that could not be saved, and enforces the
/// response limit (an oversized answer becomes the error, and the stream ends).
#[allow(clippy::too_many_arguments)]
fn finish_turn(
    app: &App,
    shot: &mut OneShot<'_>,
    run: StreamRun<'_>,
    flow: crate::Result<Flow>,
    suspender: &Suspender<'_>,
    call_id: &str,
    limit: u64,
    method: &str,
) {
    // Producers report failures on the empty schema, exchanges on their output schema.
    let schema = if run.takes_input() {
        run.output_schema()
    } else {
        crate::server::answer::empty()
    };
    if cap(shot, limit, &schema, method) {
        return;
    }
    if let Ok(Flow::Suspended) = flow
        && suspender.held
        && let Err(e) = app
            .continuations
            .hold(call_id, suspender.turn, run.into_state())
    {
        let error = RpcError::runtime_error(e.0).with_code(ErrorCode::ResourceExhausted);
        let _ = shot.answer_error(&schema, &error, "", method);
    }
}

/// Replaces an answer over `limit` bytes (0: none) with the reference's
/// `ResponseTooLargeError`; returns whether it did.
pub(super) fn cap(shot: &mut OneShot<'_>, limit: u64, schema: &SchemaRef, method: &str) -> bool {
    let size = shot.body.len() as u64;
    if limit == 0 || size <= limit {
        return false;
    }
    let error = RpcError::new(
        "ResponseTooLargeError",
        format!("HTTP body exceeds max_response_bytes ({size} > {limit}) for method '{method}'"),
    )
    .with_code(ErrorCode::ResourceExhausted);
    let _ = shot.answer_error(schema, &error, "", method);
    true
}

/// One turn of a stream continued from its tokens.
#[allow(clippy::too_many_arguments)]
fn continue_stream(
    app: &App,
    post: &Post,
    shot: &mut OneShot<'_>,
    (binding, index): (&Binding, usize),
    batch: RecordBatch,
    metadata: Metadata,
    limit: u64,
) -> Result<u16, Refusal> {
    let protocol = binding.spec.name.as_str();
    let spec = &binding.spec.methods[index];
    let (cursor, note) = app
        .continuations
        .open(protocol, &metadata)
        .map_err(|e| refusal(400, RpcError::runtime_error(e.0)))?;
    // An input through storage: the tokens were the pointer's, the turn gets the stored
    // batch with its own metadata (resolved before a held state is taken).
    let (batch, metadata) = if storage::is_pointer(&batch, &metadata) {
        storage::resolve(app, &batch, &metadata, &shot.limits())
            .map_err(|e| refusal(500, e.to_rpc()))?
    } else {
        (batch, metadata)
    };
    let state = if cursor.held {
        app.continuations
            .take(&cursor.id, cursor.turn)
            .map_err(|e| refusal(400, RpcError::runtime_error(e.0)))?
    } else {
        match binding.service.resume(index, &cursor.state) {
            Ok(Response::Producer(state, _)) => State::Producer(state),
            Ok(Response::Exchange(state, _)) => State::Exchange(state),
            Ok(Response::Unary(_) | Response::Published(_)) => {
                return Err(refusal(
                    400,
                    type_error(format!("Method '{}' is not a stream", spec.name)),
                ));
            }
            Err(e) => {
                return Err(refusal(
                    400,
                    RpcError::runtime_error(format!("Failed to deserialize state: {e}")),
                ));
            }
        }
    };
    let limit = match (note.limit, limit) {
        (0, l) | (l, 0) => l,
        (a, b) => a.min(b),
    };
    let schema = batch.schema();
    let rows = batch.num_rows();
    let inner = shot.inner;
    let peer = std::sync::Arc::clone(&shot.peer);
    let origin = crate::server::context::CallOrigin {
        protocol,
        method: &spec.name,
        request_id: &shot.request_id,
        server_id: &inner.server_id,
        peer: &peer,
    };
    let ctx = CallContext::new(&origin, metadata.clone(), Default::default());
    let mut run = StreamRun::resume(inner, ctx, spec, state);
    let mut suspender = Suspender {
        continuations: &app.continuations,
        protocol,
        call_id: &note.id,
        call_token: None,
        turn: cursor.turn + 1,
        held: false,
        state_bytes: 0,
    };
    let mut out = shot.out();
    let flow = run
        .begin_output(&mut out)
        .and_then(|()| run.turn(batch, metadata, &mut out, Some(&mut suspender)));
    if let Err(e) = &flow {
        return Err(refusal(500, e.to_rpc()));
    }
    finish_turn(
        app, shot, run, flow, &suspender, &note.id, limit, &spec.name,
    );
    shot.record(&OneShotRecord {
        binding: Some((binding, index)),
        protocol,
        method: &spec.name,
        request_schema: &schema,
        request_rows: rows,
        stream_id: Some(&note.stream_id),
        http_status: 200,
        request_bytes: post.received,
    });
    Ok(200)
}

/// The request with its routing keys checked against the path (a missing protocol key
/// is filled in from the path, as the reference accepts it over HTTP).
fn checked_request(
    post: &Post,
    batch: RecordBatch,
    mut metadata: Metadata,
) -> Result<Request, Refusal> {
    if let Some(method) = metadata.get(keys::METHOD)
        && method != post.method
    {
        return Err(refusal(
            400,
            type_error(format!(
                "Method name mismatch: URL path has '{}' but Arrow IPC custom_metadata 'vgi_rpc.method' has '{method}'. These must match.",
                post.method
            )),
        ));
    }
    match metadata.get(keys::PROTOCOL) {
        Some(protocol) if protocol != post.protocol => {
            return Err(refusal(400, RpcError::new(
                "ProtocolNotSupportedError",
                format!(
                    "Protocol mismatch: the request path resolved to '{}' but the Arrow IPC custom_metadata 'vgi_rpc.protocol' says '{protocol}'. These must agree.",
                    post.protocol
                ),
            )
            .with_code(ErrorCode::Unimplemented)
            .with_kind("protocol_not_supported")));
        }
        Some(_) => {}
        None => metadata.insert(keys::PROTOCOL, post.protocol.clone()),
    }
    Ok(Request::new(batch, metadata))
}

/// The hosted method a path names (404 otherwise).
fn resolve<'a>(
    app: &'a App,
    protocol: &str,
    method: &str,
) -> Result<(&'a Binding, usize), Refusal> {
    let inner = &app.server.inner;
    if !is_protocol_name(protocol) {
        let error = RpcError::new(
            "ProtocolNotSupportedError",
            format!(
                "Not a protocol name: Protocol name '{protocol}' is not an identifier, optionally dot-qualified. Expected something like 'vgi_rpc.Identity.v2'."
            ),
        )
        .with_code(ErrorCode::Unimplemented)
        .with_kind("protocol_not_supported");
        return Err(refusal(404, error));
    }
    inner
        .find_method(protocol, method)
        .map_err(|e| refusal(404, e.into_error()))
}

/// The error for a reserved (`__x__`) name this server does not serve over HTTP.
pub(crate) fn reserved_error(name: &str) -> RpcError {
    framework::method_not_implemented(format!(
        "This server does not implement the reserved method '{name}'."
    ))
}

/// A Python identifier, optionally dot-qualified (`vgi_rpc.Identity.v2`).
pub(crate) fn is_protocol_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        })
}

/// The effective response limit: the server's, lowered by the client's
/// `VGI-Accept-Max-Response-Bytes` (0: none).
pub(super) fn response_limit(app: &App, header: Option<&str>) -> Result<u64, Refusal> {
    let client = match header {
        None => None,
        Some(raw) => Some(parse_budget(raw).map_err(|m| refusal(400, RpcError::value_error(m)))?),
    };
    Ok(match (app.options.max_response_bytes, client) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    })
}

/// Parses `VGI-Accept-Max-Response-Bytes`: one canonical decimal integer in range.
pub(crate) fn parse_budget(raw: &str) -> Result<u64, String> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && !(raw.len() > 1 && raw.starts_with('0'));
    let value = canonical
        .then(|| raw.parse::<u64>().ok())
        .flatten()
        .filter(|v| *v > 0);
    let Some(value) = value else {
        // Digits beyond u64 are still canonical: they exceed the maximum.
        if canonical && raw != "0" {
            return Err(format!(
                "VGI-Accept-Max-Response-Bytes exceeds {MAX_RESPONSE_LIMIT}"
            ));
        }
        return Err(
            "VGI-Accept-Max-Response-Bytes must be one canonical positive decimal integer"
                .to_owned(),
        );
    };
    if value < MIN_RESPONSE_LIMIT {
        return Err(format!(
            "VGI-Accept-Max-Response-Bytes must be at least {MIN_RESPONSE_LIMIT}"
        ));
    }
    if value > MAX_RESPONSE_LIMIT {
        return Err(format!(
            "VGI-Accept-Max-Response-Bytes exceeds {MAX_RESPONSE_LIMIT}"
        ));
    }
    Ok(value)
}

pub(super) fn content_type_error(got: Option<&str>) -> RpcError {
    type_error(format!(
        "Expected Content-Type: '{ARROW_STREAM}', got '{}'. All vgi-rpc HTTP requests must use Content-Type: {ARROW_STREAM}",
        got.unwrap_or_default()
    ))
}

fn type_error(message: String) -> RpcError {
    RpcError::type_error(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_like_the_reference_vectors() {
        for ok in ["65536", "268435456", "9007199254740991"] {
            assert!(parse_budget(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "0",
            "1",
            "65535",
            "01",
            "+1",
            "-1",
            "1.0",
            "1, 2",
            "9007199254740992",
            "\u{661}",
        ] {
            assert!(parse_budget(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_budget("65535").unwrap_err(),
            "VGI-Accept-Max-Response-Bytes must be at least 65536"
        );
    }

    #[test]
    fn protocol_names_are_dotted_identifiers() {
        assert!(is_protocol_name("vgi_rpc.Identity.v2"));
        assert!(is_protocol_name("ConformanceService"));
        for bad in ["9bad", "", "a..b", "a.", "a-b", "a%53"] {
            assert!(!is_protocol_name(bad), "{bad}");
        }
    }
}

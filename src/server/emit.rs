//! Turning a finished call into a [`CallRecord`] and handing it to the hooks.
//!
//! The call engine only tracks *what* was called (a [`Target`]) and counts I/O in its
//! [`super::stats::Meter`]; everything else is assembled here, once, after the last
//! response byte — and not at all when the server has no hooks.
//!
//! A request that names no method, or whose bytes could not be read as a request, is not
//! attributable to any call and yields no record; every other request does, including
//! those refused before dispatch (unknown method, bad version, bad parameters).

use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use super::hook::{CallRecord, MethodType, RequestShape};
use super::peer::Peer;
use super::registry::{Binding, ServerInner};
use super::stats::Meter;
use super::{ids, service::MethodKind};
use crate::RpcError;
use arrow_schema::SchemaRef;

/// What a call addressed, as far as routing got.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub protocol: &'a str,
    pub protocol_hash: &'a str,
    pub method: Cow<'a, str>,
    pub method_type: MethodType,
}

impl<'a> Target<'a> {
    /// A method of a hosted protocol.
    pub(crate) fn method(binding: &'a Binding, index: usize) -> Self {
        let spec = &binding.spec.methods[index];
        Target {
            protocol: &binding.spec.name,
            protocol_hash: &binding.hash,
            method: Cow::Borrowed(&spec.name),
            method_type: method_type(spec.kind),
        }
    }

    /// A request attributed to `protocol` if hosted, else to the primary protocol.
    pub(crate) fn named(
        inner: &'a ServerInner,
        protocol: &str,
        method: &str,
        stream: bool,
    ) -> Option<Self> {
        let binding = inner.binding(protocol).or_else(|| inner.bindings.first())?;
        // The schema requires a method name; a request without one is not a call.
        (!method.is_empty()).then_some(Target {
            protocol: &binding.spec.name,
            protocol_hash: &binding.hash,
            method: Cow::Owned(method.to_owned()),
            method_type: if stream {
                MethodType::Stream
            } else {
                MethodType::Unary
            },
        })
    }
}

fn method_type(kind: MethodKind) -> MethodType {
    match kind {
        MethodKind::Unary => MethodType::Unary,
        _ => MethodType::Stream,
    }
}

/// The parts of a call the engine knows independently of its outcome.
pub(crate) struct Finished<'a> {
    pub inner: &'a ServerInner,
    pub peer: &'a Peer,
    pub target: Target<'a>,
    pub request_id: &'a str,
    pub request_schema: &'a SchemaRef,
    pub request_rows: usize,
    pub started: Instant,
    /// The stream's correlation id when the transport keeps one across requests (HTTP);
    /// `None` mints one for a stream.
    pub stream_id: Option<&'a str>,
    /// The HTTP status the request was answered with.
    pub http_status: Option<u16>,
}

/// Builds the record and calls every hook. `result` is the call's transport outcome: a
/// failure there (a peer that vanished mid-stream) is the call's error when no error
/// batch had been sent.
pub(crate) fn emit(done: &Finished<'_>, meter: &Meter, result: &crate::Result<()>) {
    let stream_id = match (done.target.method_type, done.stream_id) {
        (MethodType::Stream, Some(id)) => Some(id.to_owned()),
        (MethodType::Stream, None) => Some(ids::random_hex(32)),
        (MethodType::Unary, _) => None,
    };
    let transport_error: Option<RpcError> = match (&meter.error, result) {
        (None, Err(e)) => Some(e.to_rpc()),
        _ => None,
    };
    let record = CallRecord {
        server_id: &done.inner.server_id,
        protocol: done.target.protocol,
        protocol_hash: done.target.protocol_hash,
        method: &done.target.method,
        method_type: done.target.method_type,
        request_id: done.request_id,
        stream_id: stream_id.as_deref(),
        peer: done.peer,
        request: Some(RequestShape {
            schema: done.request_schema,
            rows: done.request_rows,
        }),
        stats: meter.stats,
        duration: done.started.elapsed(),
        finished_at: SystemTime::now(),
        error: meter.error.as_ref().or(transport_error.as_ref()),
        cancelled: meter.cancelled,
        http_status: done.http_status,
    };
    for hook in &done.inner.hooks {
        hook.on_call(&record);
    }
}

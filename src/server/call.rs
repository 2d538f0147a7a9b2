//! The call engine: one request in, its answer out through a [`Sink`] — or, for a stream,
//! a [`StreamRun`] the transport feeds input batches to.
//!
//! Nothing here reads from a connection. A byte-stream transport reads the request and
//! then the stream's input from its socket (`conn.rs`); a request/response transport
//! (HTTP) takes them from request bodies. Routing, interceptors, dispatch, error answers
//! and the built-in endpoints are the same on every transport.

use std::sync::Arc;

use arrow_array::RecordBatch;

use super::answer::{Answer, Out, Sink, answer_error, empty, externalize, site};
use super::context::{CallContext, CallOrigin};
use super::emit::Target;
use super::interceptor::{CallInfo, Extensions};
use super::peer::Peer;
use super::registry::ServerInner;
use super::route::{Call, Rejection, Request, Routed, error_schema, route};
use super::service::{MethodKind, Response};
use super::streams::{Next, State, StreamRun};
use crate::Result;
use crate::wire::{Metadata, keys};

/// One call's identity as the engine passes it around.
pub(crate) struct Caller<'a> {
    pub peer: &'a Arc<Peer>,
    pub request_id: &'a str,
    /// Whether the connection can attach a client's shared-memory segment.
    pub shm: bool,
}

/// Routes, intercepts and runs one request, writing its answer (or, for a stream, its
/// header) to `out`. Returns what was called (for the call's record) and what comes next.
pub(crate) fn dispatch<'a, S: Sink + ?Sized>(
    inner: &'a ServerInner,
    caller: &Caller<'_>,
    request: Request,
    out: &mut Out<'_, S>,
) -> (Option<Target<'a>>, Result<Next<'a>>) {
    match route(inner, &request) {
        Ok(Routed::TransportOptions) => {
            let target = Target::named(inner, "", keys::TRANSPORT_OPTIONS_METHOD, false);
            let answer = transport_options(inner, caller.shm, out);
            (target, answer.map(|()| Next::Done))
        }
        Ok(Routed::Call(call)) => (
            Some(Target::method(call.binding, call.index)),
            run(inner, caller, call, request, out),
        ),
        Err(rejection) => {
            let target = Target::named(
                inner,
                &rejection.protocol,
                &rejection.method,
                rejection.stream,
            );
            (target, reject(inner, caller.request_id, &rejection, out))
        }
    }
}

/// Answers a request refused before dispatch.
fn reject<'a, S: Sink + ?Sized>(
    inner: &ServerInner,
    request_id: &str,
    rejection: &Rejection,
    out: &mut Out<'_, S>,
) -> Result<Next<'a>> {
    let site = site(inner, &rejection.protocol, &rejection.method, request_id);
    answer_error(inner, out, &rejection.schema, &rejection.error, &site, &[])?;
    // Our clients (and the reference's) send an input stream after a stream request.
    Ok(if rejection.stream {
        Next::DrainInput
    } else {
        Next::Done
    })
}

/// Runs a routed call: interceptors, then the handler, then the answer.
pub(crate) fn run<'a, S: Sink + ?Sized>(
    inner: &'a ServerInner,
    caller: &Caller<'_>,
    call: Call<'a>,
    request: Request,
    out: &mut Out<'_, S>,
) -> Result<Next<'a>> {
    let Call { binding, index } = call;
    let spec = &binding.spec.methods[index];
    let (protocol, method) = (binding.spec.name.as_str(), spec.name.as_str());
    let failed = if spec.kind == MethodKind::Unary {
        Next::Done
    } else {
        Next::DrainInput
    };
    let site = site(inner, protocol, method, caller.request_id);
    let mut extensions = Extensions::default();
    for interceptor in &inner.interceptors {
        let mut info = CallInfo {
            protocol,
            method,
            metadata: &request.metadata,
            peer: caller.peer,
            extensions: &mut extensions,
        };
        if let Err(refusal) = interceptor.intercept(&mut info) {
            answer_error(
                inner,
                out,
                &error_schema(spec),
                &refusal.to_rpc(),
                &site,
                &[],
            )?;
            return Ok(failed);
        }
    }
    let origin = CallOrigin {
        protocol,
        method,
        request_id: caller.request_id,
        server_id: &inner.server_id,
        peer: caller.peer,
    };
    let Request {
        batch: params,
        metadata,
        ..
    } = request;
    let ctx = CallContext::new(&origin, metadata, extensions);
    let response = binding.service.call(index, &params, &ctx);
    // The reader frees: a request that arrived through shared memory is released before
    // the answer ends (unless the handler kept it).
    drop(params);
    match response {
        Ok(Response::Unary(batch)) => {
            let schema = spec.result.clone().unwrap_or_else(empty);
            let logs = ctx.take_logs();
            let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
            let none = Metadata::new();
            // The result alone goes to storage; its logs stay inline, as the reference
            // writes them.
            let pointer =
                match externalize(out, &schema, &[], (&inner.server_id, None), &batch, &none) {
                    Some(Err(e)) => {
                        answer_error(inner, out, &schema, &e.to_rpc(), &site, &logs)?;
                        return Ok(Next::Done);
                    }
                    Some(Ok(pointer)) => Some(pointer),
                    None => None,
                };
            let mut answer = Answer::begin(out, &schema);
            answer.logs(out, &logs, &inner.server_id, Some(caller.request_id))?;
            match pointer {
                Some(pointer) => answer.pointer(out, &batch, &pointer)?,
                None => answer.batch(out, &batch, &none)?,
            }
            answer.end(out)?;
            Ok(Next::Done)
        }
        Ok(Response::Published(pointer)) => {
            let schema = spec.result.clone().unwrap_or_else(empty);
            let mut answer = Answer::begin(out, &schema);
            answer.logs(
                out,
                &ctx.take_logs(),
                &inner.server_id,
                Some(caller.request_id),
            )?;
            answer.pointer(out, &RecordBatch::new_empty(schema.clone()), &pointer)?;
            answer.end(out)?;
            Ok(Next::Done)
        }
        Ok(Response::Producer(state, header)) => {
            StreamRun::open(inner, ctx, spec, State::Producer(state), header, out)
        }
        Ok(Response::Exchange(state, header)) => {
            StreamRun::open(inner, ctx, spec, State::Exchange(state), header, out)
        }
        Err(e) => {
            let logs = ctx.take_logs();
            answer_error(inner, out, &error_schema(spec), &e.to_rpc(), &site, &logs)?;
            Ok(failed)
        }
    }
}

/// The `__transport_options__` answer: what this server's transport supports.
fn transport_options<S: Sink + ?Sized>(
    inner: &ServerInner,
    shm: bool,
    out: &mut Out<'_, S>,
) -> Result<()> {
    let schema = empty();
    let md = Metadata::new()
        .with(keys::TRANSPORT_SHM, if shm { "true" } else { "false" })
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
        .with(keys::SERVER_ID, inner.server_id.clone());
    let mut answer = Answer::begin(out, &schema);
    answer.batch(out, &RecordBatch::new_empty(schema.clone()), &md)?;
    answer.end(out)
}

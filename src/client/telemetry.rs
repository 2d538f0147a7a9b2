//! The client's observation seam: one [`ObservedCall`] per call or stream, which may add
//! trace context to the request's metadata and learns how the call ended.
//!
//! Tracing back ends (OpenTelemetry with the `otel` feature, or an application's own)
//! need the same three facts on every transport: when a call starts, what to put into
//! its request so the server's span joins the caller's trace, and how it ended. The
//! engine reports them here and knows nothing of any tracing API; with no observer set
//! ([`ConnectOptions::observer`](super::ConnectOptions::observer)) a call costs one
//! `Option` check.
//!
//! Every call also gets a `tracing` span (target `vgi_rpc::call`, INFO) with the same
//! attribute names, so a `tracing-subscriber` or `tracing-opentelemetry` user sees calls
//! without any observer.

use std::fmt;

use crate::Error;
use crate::wire::{Metadata, keys};

/// Starts an [`ObservedCall`] for each call a client makes. Shared by every call of a
/// client (and by clients sharing [`ConnectOptions`](super::ConnectOptions)), hence
/// `Send + Sync`.
pub trait CallObserver: fmt::Debug + Send + Sync {
    /// A call is starting; `None` observes nothing of it.
    fn start(&self, call: &ClientCall<'_>) -> Option<Box<dyn ObservedCall>>;
}

/// What a starting call addresses.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ClientCall<'a> {
    /// The protocol's wire name (empty when the call names none).
    pub protocol: &'a str,
    /// The method name.
    pub method: &'a str,
    /// A producer or exchange stream (else unary).
    pub stream: bool,
    /// The endpoint's address string.
    pub endpoint: &'a str,
}

/// One call or stream being observed, from its start until [`ObservedCall::end`].
pub trait ObservedCall: Send {
    /// Adds entries (e.g. `traceparent` / `tracestate`) to the request batch's metadata.
    fn inject(&self, metadata: &mut Metadata);
    /// The call failed with `error` (a stream: the error that ended it).
    fn failed(&mut self, error: &Error);
    /// The client cancelled the stream.
    fn cancelled(&mut self);
    /// The call is over (a stream: closed, cancelled or dropped).
    fn end(self: Box<Self>);
}

/// Sets `metadata` to the entries an observer adds to one call's request (its trace
/// context): empty without an observer.
pub(crate) fn observed_metadata(metadata: &mut Metadata, observed: Option<&dyn ObservedCall>) {
    metadata.clear();
    if let Some(observed) = observed {
        observed.inject(metadata);
    }
}

/// The trace context entries of a request's metadata (those an observer injected, else
/// the call's own), as headers for a request/response transport (empty when the call
/// carries none).
pub(crate) fn trace_headers(extra: &Metadata, injected: &Metadata) -> Vec<(&'static str, String)> {
    let from = if injected.contains(keys::TRACEPARENT) {
        injected
    } else {
        extra
    };
    [keys::TRACEPARENT, keys::TRACESTATE]
        .into_iter()
        .filter_map(|key| from.get(key).map(|v| (key, v.to_owned())))
        .collect()
}

/// The `tracing` target of call spans, client and server.
pub(crate) const CALL_TARGET: &str = "vgi_rpc::call";

/// The `tracing` span of one client call (INFO, target `vgi_rpc::call`), with the
/// OpenTelemetry attribute names; the error fields are filled in on failure.
pub(crate) fn client_span(protocol: &str, method: &str, stream: bool) -> tracing::Span {
    tracing::info_span!(
        target: CALL_TARGET,
        "vgi_rpc.client_call",
        otel.name = %format_args!("vgi_rpc/{method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "vgi_rpc",
        rpc.service = %protocol,
        rpc.method = %method,
        rpc.vgi_rpc.method_type = if stream { "stream" } else { "unary" },
        rpc.vgi_rpc.error_type = tracing::field::Empty,
        rpc.vgi_rpc.error_code = tracing::field::Empty,
    )
}

/// Records a failure on a [`client_span`].
pub(crate) fn record_failure(span: &tracing::Span, error: &Error) {
    if span.is_disabled() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    // A remote error as sent; a local failure as the reference client would name it.
    let rpc = error.to_rpc();
    span.record("rpc.vgi_rpc.error_type", rpc.error_type.as_str());
    span.record("rpc.vgi_rpc.error_code", rpc.code.as_str());
}

//! The dispatch hook: one callback per completed call, carrying its statistics.
//!
//! Observability (the access log, metrics, tracing exporters) needs the same facts about
//! every call on every transport. Rather than each feature instrumenting the call engine,
//! the engine fills in one [`CallRecord`] when a call ends and hands it to every attached
//! [`CallHook`]. The record borrows from the engine, so building it allocates nothing, and
//! none of it is built when no hook is attached.
//!
//! A record never holds request or response *values*: only the request's shape (field
//! names and Arrow types, row count) and sizes. That is what lets a hook write records to
//! a log without becoming a credential leak.

use std::time::{Duration, SystemTime};

use arrow_schema::Schema;

use super::peer::Peer;
use super::stats::CallStats;
use super::validate::pyarrow_type_name;
use crate::RpcError;

/// Receives a [`CallRecord`] for every completed call.
///
/// Called on the connection's thread after the call's last response byte was written, so
/// a slow hook delays the next call on that connection (and only that one). Hooks are
/// shared by every connection of a server, hence `Send + Sync`.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vgi_rpc::server::{CallHook, CallRecord};
///
/// /// Counts failed calls, e.g. for a metrics endpoint.
/// #[derive(Default)]
/// struct Failures(AtomicU64);
///
/// impl CallHook for Failures {
///     fn on_call(&self, record: &CallRecord<'_>) {
///         if record.error.is_some() {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// let failures = Arc::new(Failures::default());
/// let server = vgi_rpc::Server::builder().hook(failures.clone()).build()?;
/// # let _ = server;
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub trait CallHook: Send + Sync {
    /// Observes one completed call.
    fn on_call(&self, record: &CallRecord<'_>);

    /// Observes a request the transport's authentication refused before any dispatch
    /// (an HTTP 401). No call record follows it. The default ignores it.
    fn on_auth_failure(&self, failure: &AuthFailure<'_>) {
        let _ = failure;
    }
}

/// A request refused by the transport's authentication (see
/// [`CallHook::on_auth_failure`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthFailure<'a> {
    /// The server's primary protocol (no method was routed yet).
    pub protocol: &'a str,
    /// The caller's address, when the transport knows it.
    pub remote_addr: Option<&'a str>,
    /// The failure as the reference names it: `PermissionError` for an identified caller
    /// without the scope, `ValueError` for any other refusal.
    pub error_type: &'a str,
    /// The reason sent to the client (`VGI-Auth-Reason`, e.g. `invalid_credential`).
    pub reason: &'a str,
}

/// Whether a method answers once or streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodType {
    /// One request, one response.
    Unary,
    /// A producer or exchange stream.
    Stream,
}

impl MethodType {
    /// The access log's spelling: `unary` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodType::Unary => "unary",
            MethodType::Stream => "stream",
        }
    }
}

/// The shape of a request batch — never its values.
#[derive(Debug, Clone, Copy)]
pub struct RequestShape<'a> {
    /// The request batch's schema (one field per parameter, in order).
    pub schema: &'a Schema,
    /// The request batch's row count: 1, or 0 for a method without parameters.
    pub rows: usize,
}

impl<'a> RequestShape<'a> {
    /// `(name, Arrow type as text)` per parameter, in schema order; types are spelled as
    /// pyarrow prints them (`string`, `int64`, `double`, ...), as the reference logs them.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, String)> + 'a {
        self.schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), pyarrow_type_name(f.data_type())))
    }
}

/// The W3C trace context a request carried: from its metadata (`traceparent` /
/// `tracestate`, on every transport) or, when the metadata has none, from the HTTP
/// request's headers of the same names. Passed through unparsed: the tracing exporter
/// that reads it validates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext<'a> {
    /// The `traceparent` value (`00-<trace id>-<parent span id>-<flags>`).
    pub traceparent: &'a str,
    /// The `tracestate` value, when sent.
    pub tracestate: Option<&'a str>,
}

/// Everything known about one completed call.
///
/// On byte-stream transports (pipe, Unix, TCP) a stream call yields one record covering
/// the whole stream; `request` is `None` only for records of stream continuations on
/// transports that split a stream into several requests.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallRecord<'a> {
    /// The server's identity.
    pub server_id: &'a str,
    /// The wire name of the protocol owning the method (the server's primary protocol for
    /// framework endpoints and requests naming no hosted protocol).
    pub protocol: &'a str,
    /// That protocol's hash (64 lowercase hex digits).
    pub protocol_hash: &'a str,
    /// The method name as requested (framework built-ins keep their `__` prefix).
    pub method: &'a str,
    /// Unary or stream.
    pub method_type: MethodType,
    /// The id the server minted for the call (also sent on its log and error batches).
    pub request_id: &'a str,
    /// Stream correlation id (32 lowercase hex digits); `Some` exactly for streams.
    pub stream_id: Option<&'a str>,
    /// Who made the call.
    pub peer: &'a Peer,
    /// The request's shape, when this record covers the request batch.
    pub request: Option<RequestShape<'a>>,
    /// I/O counters.
    pub stats: CallStats,
    /// Wall-clock time from the request's arrival to the last response byte.
    pub duration: Duration,
    /// When the call completed.
    pub finished_at: SystemTime,
    /// The error the client received, if the call failed.
    pub error: Option<&'a RpcError>,
    /// The client cancelled the stream.
    pub cancelled: bool,
    /// The HTTP status the request was answered with (HTTP only).
    pub http_status: Option<u16>,
    /// The caller's trace context, when the request carried one.
    pub trace: Option<TraceContext<'a>>,
}

impl CallRecord<'_> {
    /// `"ok"` or `"error"`. A cancelled stream whose cancel was honoured is `"ok"`, as in
    /// the reference (the `cancelled` flag tells it apart).
    pub fn status(&self) -> &'static str {
        if self.error.is_some() { "error" } else { "ok" }
    }
}

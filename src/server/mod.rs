//! The server: hosts protocols, validates and dispatches requests, drives streams.
//!
//! [`Server`] holds the hosted protocols (reflection always included); a transport hands
//! each connection to the shared connection loop, so every transport gets the same
//! validation, error reporting and stream handling.
//!
//! Observability hangs off one seam: every completed call yields a [`CallRecord`]
//! (statistics, error, peer, request shape — never values) handed to each [`CallHook`]
//! attached with [`ServerBuilder::hook`]. [`AccessLog`] is the built-in hook writing the
//! vgi-rpc access log; transports say who is calling through a [`Peer`] passed to
//! [`serve_connection_from`].
//!
//! Large batches may travel through shared memory instead of the byte stream: a
//! transport whose peers share this host passes a [`SideChannelHost`] in the
//! [`ConnectionInfo`] of [`serve_connection_with`], and the engine attaches the segment a
//! client names, resolves its pointer inputs and sends large outputs as pointers (the
//! segment itself is `vgi_rpc::transport::shm`'s).

mod access_log;
pub(crate) mod answer;
mod auth;
pub(crate) mod call;
mod conn;
pub(crate) mod context;
pub(crate) mod emit;
pub(crate) mod exception;
mod hash;
mod hook;
pub(crate) mod ids;
pub(crate) mod inputs;
mod interceptor;
pub(crate) mod oneshot;
mod peer;
pub(crate) mod pyjson;
pub(crate) mod reflection;
mod refuse;
pub(crate) mod registry;
pub(crate) mod route;
mod service;
mod side;
pub(crate) mod stats;
pub mod sticky;
pub(crate) mod streams;
mod validate;

pub use access_log::{AccessLog, AccessLogLevel};
pub use auth::AuthContext;
pub(crate) use conn::serve_connection_lending;
pub use conn::{
    ConnectionInfo, ReadPhases, serve_connection, serve_connection_from, serve_connection_with,
};
pub use context::CallContext;
pub use hash::{protocol_hash, protocol_hash_preimage};
pub use hook::{AuthFailure, CallHook, CallRecord, MethodType, RequestShape, TraceContext};
pub use interceptor::{CallInfo, Extensions, Interceptor};
pub use peer::{Peer, PeerCredentials, TransportKind};
pub(crate) use refuse::connection_limit_error;
pub use refuse::refuse_connection;
pub use registry::{DEFAULT_MEMORY_BUDGET, Server, ServerBuilder};
pub use service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};
pub use side::SideChannelHost;
pub use stats::CallStats;

//! The server: hosts protocols, validates and dispatches requests, drives streams.
//!
//! [`Server`] holds the hosted protocols (reflection always included); a transport hands
//! each connection to the shared connection loop, so every transport gets the same
//! validation, error reporting and stream handling.

mod access_log;
mod conn;
mod context;
mod emit;
mod exception;
mod hash;
mod hook;
mod ids;
mod peer;
pub(crate) mod pyjson;
mod reflection;
mod registry;
mod service;
mod stats;
mod stdio;
mod streams;
mod validate;

pub use access_log::{AccessLog, AccessLogLevel};
pub use conn::{serve_connection, serve_connection_from};
pub use context::CallContext;
pub use hash::{protocol_hash, protocol_hash_preimage};
pub use hook::{CallHook, CallRecord, MethodType, RequestShape};
pub use peer::{Peer, TransportKind};
pub use registry::{Server, ServerBuilder};
pub use service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};
pub use stats::CallStats;
pub use stdio::serve_stdio;

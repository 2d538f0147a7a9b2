//! The server: hosts protocols, validates and dispatches requests, drives streams.
//!
//! [`Server`] holds the hosted protocols (reflection always included); a transport hands
//! each connection to the shared connection loop, so every transport gets the same
//! validation, error reporting and stream handling.

mod conn;
mod context;
mod exception;
mod hash;
mod ids;
pub(crate) mod pyjson;
mod reflection;
mod refuse;
mod registry;
mod service;
mod stdio;
mod streams;
mod validate;

pub use conn::serve_connection;
pub use context::CallContext;
pub use hash::{protocol_hash, protocol_hash_preimage};
pub(crate) use refuse::connection_limit_error;
pub use refuse::refuse_connection;
pub use registry::{Server, ServerBuilder};
pub use service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};
pub use stdio::serve_stdio;

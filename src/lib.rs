//! # vgi-rpc: RPC over Apache Arrow IPC
//!
//! Services are Rust traits. `#[vgi_rpc::service]` turns each method's signature into Arrow
//! schemas and a server dispatcher; calls are unary, producer streams or exchange streams,
//! and the bytes on the wire are those of the vgi-rpc protocol (pinned to the Python
//! reference, vgi-rpc 0.52.2), so Python and Rust clients and workers interoperate.
//!
//! Modules, from the bottom up:
//! - [`wire`]: sans-IO Arrow IPC framing with per-batch custom metadata.
//! - [`schema`]: Rust type <-> Arrow type mapping, schema validation, protocol hashes.
//! - [`stream`]: producer / exchange stream states.
//! - [`server`]: protocol registry, dispatch, reflection, and the serve loops.
//! - [`client`]: the call engine used by clients and tests.
//! - [`transport`]: Unix-domain and TCP socket servers.

extern crate self as vgi_rpc;

pub mod client;
mod error;
pub mod log;
pub mod schema;
pub mod server;
pub mod stream;
pub mod transport;
pub mod wire;

#[doc(hidden)]
pub mod private;

pub use error::{Error, ErrorCode, Result, RpcError};
pub use log::{LogLevel, LogRecord};
pub use schema::{ArrowEnum, ArrowRecord, ArrowValue};
pub use server::{CallContext, Server, serve_stdio};
pub use stream::{Exchange, ExchangeState, Producer, ProducerState, Turn};
pub use vgi_rpc_macros::{ArrowEnum, ArrowRecord, service};

/// The names most services need.
pub mod prelude {
    pub use crate::{
        ArrowEnum, ArrowRecord, ArrowValue, CallContext, Error, Exchange, ExchangeState, LogLevel,
        Producer, ProducerState, Result, RpcError, Server, Turn, service,
    };
}

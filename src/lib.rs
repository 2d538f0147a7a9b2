//! # vgi-rpc: RPC over Apache Arrow IPC
//!
//! Services are Rust traits. `#[vgi_rpc::service]` turns each method's signature into Arrow
//! schemas, a server dispatcher (`{Trait}Server`) and a typed client (`{Trait}Client`);
//! calls are unary, producer streams or exchange streams, and the bytes on the wire are
//! those of the vgi-rpc protocol (pinned to the Python reference, vgi-rpc 0.52.2), so
//! Python and Rust clients and workers interoperate.
//!
//! ```
//! use vgi_rpc::prelude::*;
//!
//! #[vgi_rpc::service(protocol = "Greeter")]
//! pub trait Greeter: Send + Sync + 'static {
//!     /// Greet `name`.
//!     fn greet(&self, name: String, #[vgi(default = "Hello")] greeting: String)
//!         -> Result<String>;
//! }
//!
//! struct English;
//!
//! impl Greeter for English {
//!     fn greet(&self, name: String, greeting: String) -> Result<String> {
//!         Ok(format!("{greeting}, {name}!"))
//!     }
//! }
//!
//! # fn main() -> Result<()> {
//! // A worker on a Unix socket (any transport serves the same `Server`).
//! let path = std::env::temp_dir().join(format!("greeter-{}.sock", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! let listener = std::os::unix::net::UnixListener::bind(&path)?;
//! let server = vgi_rpc::Server::builder().service(GreeterServer::new(English)).build()?;
//! std::thread::spawn(move || -> Result<()> {
//!     let (stream, _) = listener.accept()?;
//!     vgi_rpc::server::serve_connection(&server, stream.try_clone()?, stream)
//! });
//!
//! // The typed client: the trait's methods, the trait's Rust types.
//! let mut greeter = GreeterClient::connect(&format!("unix:{}", path.display()))?;
//! assert_eq!(greeter.greet("Ada".into(), "Hi".into())?, "Hi, Ada!");
//! assert_eq!(greeter.greet_with_defaults("Bob".into())?, "Hello, Bob!");
//! # let _ = std::fs::remove_file(&path);
//! # Ok(())
//! # }
//! ```
//!
//! Modules, from the bottom up:
//! - [`wire`]: sans-IO Arrow IPC framing with per-batch custom metadata.
//! - [`schema`]: Rust type <-> Arrow type mapping, schema validation, protocol hashes.
//! - [`stream`]: producer / exchange stream states.
//! - [`server`]: protocol registry, dispatch, reflection, and the serve loops.
//! - [`client`]: the client engine: calls, stream sessions, typed stream handles used by
//!   generated `{Trait}Client`s, over any [`client::Link`].
//! - [`transport`]: where bytes meet the engines: stdio/`exec:`, Unix and TCP, each with
//!   its server and client end, shared memory beside pipes and Unix sockets
//!   (`transport::shm`, feature `shm`), the accept loop, shutdown and the address parser.

extern crate self as vgi_rpc;

pub mod client;
pub mod error;
#[cfg(feature = "external")]
pub mod external;
mod hex;
pub mod identity;
pub mod log;
#[cfg(feature = "otel")]
pub mod otel;
pub mod schema;
pub mod server;
pub mod stream;
pub mod transport;
pub mod wire;

#[doc(hidden)]
pub mod private;

pub use error::{Error, ErrorCode, ExternalFailure, Result, RpcError};
pub use log::{LogLevel, LogRecord};
pub use schema::{ArrowEnum, ArrowRecord, ArrowValue, RecordRows};
pub use server::{CallContext, Server};
pub use stream::{Exchange, ExchangeState, Producer, ProducerState, Turn};
pub use transport::serve_stdio;
pub use vgi_rpc_macros::{ArrowEnum, ArrowRecord, service};

/// The names most services need.
pub mod prelude {
    pub use crate::{
        ArrowEnum, ArrowRecord, ArrowValue, CallContext, Error, Exchange, ExchangeState, LogLevel,
        Producer, ProducerState, RecordRows, Result, RpcError, Server, Turn, service,
    };
}

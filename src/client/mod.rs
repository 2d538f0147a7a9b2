//! The client engine: [`Client`], the dynamic (schema-first) client that typed
//! `{Trait}Client`s and the CLI build on. Under it a connection writes request streams,
//! reads response streams and drives stream sessions (ticks, exchanges, cancel, close)
//! over a [`Link`], the one seam to the transports: `vgi_rpc::transport` opens links for
//! the addresses it knows (and provides `Client::connect`), and any other byte stream
//! becomes a client through [`Client::from_link`].
//!
//! ```no_run
//! use arrow_array::RecordBatch;
//! use vgi_rpc::client::{CallOptions, Client, Target};
//! # fn main() -> vgi_rpc::Result<()> {
//! let mut client = Client::connect("exec:my-worker --pipe")?;
//! let target = Target::new("MyService", None);
//! let params = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
//! let answer = client.call(&target, "noop", &params, &CallOptions::default())?;
//! assert!(answer.batch.is_none());
//! # Ok(()) }
//! ```

mod connection;
mod decode_error;
mod describe;
mod dynamic;
mod failure;
mod link;
mod options;
pub(crate) mod request;
mod request_session;
mod session;
mod side;
pub mod sticky;
mod stream;
mod telemetry;
mod typed;

pub use decode_error::rpc_error_from_metadata;
pub use describe::{MethodDescription, MethodKind, ProtocolDescription, ServerDescription};
pub use dynamic::Client;
pub use link::{
    BoxRead, BoxWrite, Connect, Deadline, Link, LinkControl, RoundTrip, Route, RouteStep,
};
pub use options::{
    CallOptions, CancelHandle, ClientIdentity, ConnectOptions, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_IDLE_TIMEOUT, HttpConnectOptions, HttpRetry, StderrMode,
};
pub use sticky::{EndedSession, StickySessions};
pub use stream::ClientStream;
pub use telemetry::{CallObserver, ClientCall, ObservedCall};
pub use typed::{ExchangeStream, ProducerStream, Rows};

use arrow_array::RecordBatch;

use crate::log::LogRecord;
use crate::wire::Metadata;

/// Where a call goes: protocol name and (optional) protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Protocol wire name.
    pub protocol: String,
    /// Protocol version sent as `vgi_rpc.protocol_version`, when the protocol has one.
    pub version: Option<String>,
}

impl Target {
    /// A target protocol with an optional version.
    pub fn new(protocol: impl Into<String>, version: Option<&str>) -> Self {
        Target {
            protocol: protocol.into(),
            version: version.map(str::to_owned),
        }
    }
}

/// A unary call's answer: the result batch (`None` for void), its custom metadata and the
/// server's logs.
#[derive(Debug)]
pub struct UnaryResult {
    /// The one-row result batch, or `None` for a void method.
    pub batch: Option<RecordBatch>,
    /// The custom metadata of the result batch as received (empty for void).
    pub metadata: Metadata,
    /// Log messages the server sent before the result.
    pub logs: Vec<LogRecord>,
}

/// A callback that sees each server log message as it arrives.
pub type LogHandler = Box<dyn FnMut(&LogRecord) + Send>;

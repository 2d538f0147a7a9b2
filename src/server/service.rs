//! What a hosted protocol looks like to the server: a [`ProtocolSpec`] describing its
//! methods, and a [`Service`] that runs a call. `#[vgi_rpc::service]` generates both from a
//! trait; they can also be written by hand.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::CallContext;
use crate::Result;
use crate::stream::{ExchangeState, ProducerState};
use crate::wire::Metadata;

/// Whether a method is a single request/response or a stream, and which kind of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// The server pushes batches, one per client tick.
    Producer,
    /// Lockstep: one output batch per input batch.
    Exchange,
}

impl MethodKind {
    /// `"unary"` or `"stream"`, as in descriptions and the protocol hash.
    pub fn method_type(self) -> &'static str {
        match self {
            MethodKind::Unary => "unary",
            MethodKind::Producer | MethodKind::Exchange => "stream",
        }
    }

    /// `""`, `"producer"` or `"exchange"`.
    pub fn stream_kind(self) -> &'static str {
        match self {
            MethodKind::Unary => "",
            MethodKind::Producer => "producer",
            MethodKind::Exchange => "exchange",
        }
    }
}

/// One method's wire surface.
#[derive(Debug, Clone)]
pub struct MethodSpec {
    /// Method name on the wire.
    pub name: String,
    /// Documentation (the method's doc comment).
    pub doc: String,
    /// Unary or which kind of stream.
    pub kind: MethodKind,
    /// Request schema: one field per parameter, in declaration order.
    pub params: SchemaRef,
    /// Client-side defaults, one per parameter (`None` when required), as Rust source text
    /// of the default expression (literals render like JSON).
    pub defaults: Vec<Option<String>>,
    /// Unary result schema (`result: T`); `None` for void methods and streams.
    pub result: Option<SchemaRef>,
    /// Stream header schema, if the stream declares a header.
    pub header: Option<SchemaRef>,
}

/// A protocol's name, version and methods.
#[derive(Debug, Clone)]
pub struct ProtocolSpec {
    /// Wire name, e.g. `ConformanceService`.
    pub name: String,
    /// Version, checked against requests' `vgi_rpc.protocol_version` (MAJOR.MINOR).
    pub version: Option<String>,
    /// Documentation (the trait's doc comment).
    pub doc: String,
    /// Methods, in declaration order.
    pub methods: Vec<MethodSpec>,
}

impl ProtocolSpec {
    /// Index of the method called `name`.
    pub fn method_index(&self, name: &str) -> Option<usize> {
        self.methods.iter().position(|m| m.name == name)
    }
}

/// What a method call turns into on the server.
pub enum Response {
    /// A unary result: a one-row batch on the result schema, or `None` for void.
    Unary(Option<RecordBatch>),
    /// A unary result published in external storage beforehand: the metadata of the
    /// pointer batch that answers the call (`wire::external::pointer_metadata`). It is
    /// sent as it is, whatever the server's own storage and threshold; the client
    /// resolves it like any pointer.
    Published(Metadata),
    /// A producer stream with an optional header batch.
    Producer(Box<dyn ProducerState>, Option<RecordBatch>),
    /// An exchange stream with an optional header batch.
    Exchange(Box<dyn ExchangeState>, Option<RecordBatch>),
}

/// A hosted protocol: its description and its dispatcher.
pub trait Service: Send + Sync + 'static {
    /// The protocol's description (built once; cheap to call).
    fn spec(&self) -> &Arc<ProtocolSpec>;

    /// Runs method `method` (an index into [`ProtocolSpec::methods`]) with `args`, a
    /// request batch already validated against the method's parameter schema.
    ///
    /// # Errors
    /// Any error becomes an EXCEPTION batch for the caller.
    fn call(&self, method: usize, args: &RecordBatch, ctx: &CallContext) -> Result<Response>;

    /// Rebuilds the state of stream method `method` from the bytes its state's
    /// [`ProducerState::save`] / [`ExchangeState::save`] returned, as a stream response
    /// without a header (a continuation on a worker that did not start the stream).
    ///
    /// # Errors
    /// The default refuses: the protocol's streams are not resumable.
    fn resume(&self, method: usize, saved: &[u8]) -> Result<Response> {
        let _ = saved;
        Err(crate::Error::protocol(format!(
            "method #{method} of {} cannot resume a saved stream state",
            self.spec().name
        )))
    }
}

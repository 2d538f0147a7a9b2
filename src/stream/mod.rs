//! Streaming calls: producer streams (the server pushes batches, one per client tick) and
//! exchange streams (lockstep: one output batch per input batch).
//!
//! A method returns [`Producer`] or [`Exchange`] wrapping a state object the application
//! writes; the server drives that state one [`Turn`] at a time. An optional header record is
//! sent once, before the first output batch.

mod coerce;
mod header;
mod resume;
mod turn;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

pub use coerce::coerce_batch;
pub use header::StreamHeader;
pub use resume::Resumable;
pub use turn::Turn;

use crate::Result;

/// The state behind a producer stream.
///
/// Each client tick calls [`ProducerState::produce`], which emits at most one batch and/or
/// calls [`Turn::finish`] to end the stream.
pub trait ProducerState: Send + 'static {
    /// The schema of every output batch; fixed for the whole call (chosen at init).
    fn output_schema(&self) -> SchemaRef;

    /// Produces the next batch.
    ///
    /// # Errors
    /// An error ends the stream with an EXCEPTION batch on the output schema.
    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()>;

    /// Called exactly once when the client cancels. Errors are ignored.
    ///
    /// # Errors
    /// Any error is swallowed by the server.
    fn on_cancel(&mut self) -> Result<()> {
        Ok(())
    }

    /// The state as bytes for a continuation token, so that any worker can continue the
    /// stream (HTTP). `None`, the default, keeps the state in the memory of the worker
    /// that started the stream.
    ///
    /// `#[vgi_rpc::service]` provides this for [`Resumable`] states; override it only in
    /// a hand-written [`Service`](crate::server::Service), together with
    /// [`Service::resume`](crate::server::Service::resume).
    fn save(&self) -> Option<Result<Vec<u8>>> {
        None
    }
}

/// The state behind an exchange stream.
pub trait ExchangeState: Send + 'static {
    /// The schema input batches are coerced to before [`ExchangeState::exchange`] sees them.
    fn input_schema(&self) -> SchemaRef;

    /// The schema of every output batch; fixed for the whole call.
    fn output_schema(&self) -> SchemaRef;

    /// Answers one input batch with exactly one output batch (emitted on `turn`).
    ///
    /// # Errors
    /// An error ends the stream with an EXCEPTION batch on the output schema.
    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()>;

    /// Called exactly once when the client cancels. Errors are ignored.
    ///
    /// # Errors
    /// Any error is swallowed by the server.
    fn on_cancel(&mut self) -> Result<()> {
        Ok(())
    }

    /// The state as bytes for a continuation token, so that any worker can continue the
    /// stream (HTTP). `None`, the default, keeps the state in the memory of the worker
    /// that started the stream.
    ///
    /// `#[vgi_rpc::service]` provides this for [`Resumable`] states; override it only in
    /// a hand-written [`Service`](crate::server::Service), together with
    /// [`Service::resume`](crate::server::Service::resume).
    fn save(&self) -> Option<Result<Vec<u8>>> {
        None
    }
}

/// Return type of a producer-stream method: the state, plus a header record of type `H`
/// (`()` for none).
pub struct Producer<S, H = ()> {
    pub(crate) state: S,
    pub(crate) header: H,
}

impl<S: ProducerState> Producer<S> {
    /// A producer stream without a header.
    pub fn new(state: S) -> Self {
        Producer { state, header: () }
    }
}

impl<S: ProducerState, H: StreamHeader> Producer<S, H> {
    /// A producer stream that sends `header` before its first batch.
    pub fn with_header(state: S, header: H) -> Self {
        Producer { state, header }
    }
}

/// Return type of an exchange-stream method: the state, plus a header record of type `H`
/// (`()` for none).
pub struct Exchange<S, H = ()> {
    pub(crate) state: S,
    pub(crate) header: H,
}

impl<S: ExchangeState> Exchange<S> {
    /// An exchange stream without a header.
    pub fn new(state: S) -> Self {
        Exchange { state, header: () }
    }
}

impl<S: ExchangeState, H: StreamHeader> Exchange<S, H> {
    /// An exchange stream that sends `header` before its first output.
    pub fn with_header(state: S, header: H) -> Self {
        Exchange { state, header }
    }
}

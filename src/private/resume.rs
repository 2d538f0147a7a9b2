//! How a generated server makes a stream resumable when, and only when, its state type is
//! [`Resumable`], without the user writing anything else.
//!
//! The generated code calls `(&&Resume::<S>::new()).producer(out)`. Method lookup tries
//! `&self` methods of `&Resume<S>` first, where [`SavingStream`] is implemented for
//! resumable states; for any other state it falls through to those of `Resume<S>`, where
//! [`HeldStream`] keeps the state in memory. (The "autoref specialization" idiom: it works because the
//! macro names the concrete state type.)

use std::marker::PhantomData;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::server::Response;
use crate::stream::{
    Exchange, ExchangeState, Producer, ProducerState, Resumable, StreamHeader, Turn,
};
use crate::{Error, Result};

/// Selects the stream wrapping for state type `S`.
pub struct Resume<S>(PhantomData<fn() -> S>);

impl<S> Resume<S> {
    /// The selector for `S`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Resume(PhantomData)
    }
}

/// Streams whose state is [`Resumable`]: saved into tokens, restorable anywhere.
pub trait SavingStream<S> {
    /// The response for a producer method's result.
    ///
    /// # Errors
    /// The handler's error, or the header's encoding error.
    fn producer<H: StreamHeader>(&self, out: Result<Producer<S, H>>) -> Result<Response>
    where
        S: ProducerState;

    /// The response for an exchange method's result.
    ///
    /// # Errors
    /// As [`SavingStream::producer`].
    fn exchange<H: StreamHeader>(&self, out: Result<Exchange<S, H>>) -> Result<Response>
    where
        S: ExchangeState;

    /// A producer state restored from a token.
    ///
    /// # Errors
    /// Fails when `saved` is not a saved `S`.
    fn restore_producer(&self, saved: &[u8]) -> Result<Response>
    where
        S: ProducerState;

    /// An exchange state restored from a token.
    ///
    /// # Errors
    /// As [`SavingStream::restore_producer`].
    fn restore_exchange(&self, saved: &[u8]) -> Result<Response>
    where
        S: ExchangeState;
}

impl<S: Resumable + Send + 'static> SavingStream<S> for &Resume<S> {
    fn producer<H: StreamHeader>(&self, out: Result<Producer<S, H>>) -> Result<Response>
    where
        S: ProducerState,
    {
        let Producer { state, header } = out?;
        let header = header.into_header_batch()?;
        Ok(Response::Producer(Box::new(Saving(state)), header))
    }

    fn exchange<H: StreamHeader>(&self, out: Result<Exchange<S, H>>) -> Result<Response>
    where
        S: ExchangeState,
    {
        let Exchange { state, header } = out?;
        let header = header.into_header_batch()?;
        Ok(Response::Exchange(Box::new(Saving(state)), header))
    }

    fn restore_producer(&self, saved: &[u8]) -> Result<Response>
    where
        S: ProducerState,
    {
        Ok(Response::Producer(
            Box::new(Saving(S::restore(saved)?)),
            None,
        ))
    }

    fn restore_exchange(&self, saved: &[u8]) -> Result<Response>
    where
        S: ExchangeState,
    {
        Ok(Response::Exchange(
            Box::new(Saving(S::restore(saved)?)),
            None,
        ))
    }
}

/// Streams whose state is not resumable: held in the starting worker's memory.
pub trait HeldStream<S> {
    /// The response for a producer method's result.
    ///
    /// # Errors
    /// The handler's error, or the header's encoding error.
    fn producer<H: StreamHeader>(&self, out: Result<Producer<S, H>>) -> Result<Response>
    where
        S: ProducerState;

    /// The response for an exchange method's result.
    ///
    /// # Errors
    /// As [`HeldStream::producer`].
    fn exchange<H: StreamHeader>(&self, out: Result<Exchange<S, H>>) -> Result<Response>
    where
        S: ExchangeState;

    /// Always fails: the state was never saved.
    ///
    /// # Errors
    /// Always.
    fn restore_producer(&self, saved: &[u8]) -> Result<Response>;

    /// Always fails: the state was never saved.
    ///
    /// # Errors
    /// Always.
    fn restore_exchange(&self, saved: &[u8]) -> Result<Response>;
}

impl<S> HeldStream<S> for Resume<S> {
    fn producer<H: StreamHeader>(&self, out: Result<Producer<S, H>>) -> Result<Response>
    where
        S: ProducerState,
    {
        let Producer { state, header } = out?;
        Ok(Response::Producer(
            Box::new(state),
            header.into_header_batch()?,
        ))
    }

    fn exchange<H: StreamHeader>(&self, out: Result<Exchange<S, H>>) -> Result<Response>
    where
        S: ExchangeState,
    {
        let Exchange { state, header } = out?;
        Ok(Response::Exchange(
            Box::new(state),
            header.into_header_batch()?,
        ))
    }

    fn restore_producer(&self, _saved: &[u8]) -> Result<Response> {
        Err(not_resumable())
    }

    fn restore_exchange(&self, _saved: &[u8]) -> Result<Response> {
        Err(not_resumable())
    }
}

fn not_resumable() -> Error {
    Error::protocol("this stream's state is not resumable")
}

/// A resumable state, saving itself through [`Resumable`].
struct Saving<S>(S);

impl<S: ProducerState + Resumable> ProducerState for Saving<S> {
    fn output_schema(&self) -> SchemaRef {
        self.0.output_schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        self.0.produce(turn)
    }

    fn on_cancel(&mut self) -> Result<()> {
        ProducerState::on_cancel(&mut self.0)
    }

    fn save(&self) -> Option<Result<Vec<u8>>> {
        Some(Resumable::save(&self.0))
    }
}

impl<S: ExchangeState + Resumable> ExchangeState for Saving<S> {
    fn input_schema(&self) -> SchemaRef {
        self.0.input_schema()
    }

    fn output_schema(&self) -> SchemaRef {
        self.0.output_schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        self.0.exchange(input, turn)
    }

    fn on_cancel(&mut self) -> Result<()> {
        ExchangeState::on_cancel(&mut self.0)
    }

    fn save(&self) -> Option<Result<Vec<u8>>> {
        Some(Resumable::save(&self.0))
    }
}

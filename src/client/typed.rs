//! Typed stream handles returned by generated `{Trait}Client`s: the raw [`ClientStream`]
//! plus the stream's header decoded as the declared header record `H` (`()` for none).
//!
//! A [`ProducerStream`] is an [`Iterator`] of output batches (a remote error is the last
//! item); an [`ExchangeStream`] answers each input batch with one output batch. Both
//! borrow the client for as long as the stream is open, since one connection carries one
//! call at a time.

use arrow_array::RecordBatch;

use super::ClientStream;
use crate::Result;
use crate::log::LogRecord;
use crate::schema::{ArrowRecord, RecordRows};
use crate::stream::StreamHeader;

/// An open producer stream: iterate to receive batches, one per tick.
///
/// The iterator ends when the server finishes the stream; a remote error is yielded once
/// and ends it too. A method that fails while opening the stream reports it from the
/// method call when the stream has a header (it is read at open), otherwise as the first
/// item. Dropping the stream early closes it (best effort); [`cancel`] asks the
/// server to stop and run its cancel hook.
///
/// [`cancel`]: ProducerStream::cancel
pub struct ProducerStream<'c, H = ()> {
    inner: Option<ClientStream<'c>>,
    header: H,
}

impl<'c, H: StreamHeader> ProducerStream<'c, H> {
    /// Wraps an opened stream, decoding its header.
    ///
    /// # Errors
    /// Fails when the header batch does not decode as `H`.
    pub fn new(inner: ClientStream<'c>) -> Result<Self> {
        let header = H::from_header_batch(inner.header())?;
        Ok(ProducerStream {
            inner: Some(inner),
            header,
        })
    }
}

impl<'c, H> ProducerStream<'c, H> {
    /// The stream header, decoded (`&()` when the method declares none).
    pub fn header(&self) -> &H {
        &self.header
    }

    /// The raw header batch, if the method declares a header.
    pub fn header_batch(&self) -> Option<&RecordBatch> {
        self.inner.as_ref().and_then(ClientStream::header)
    }

    /// Takes the server's log messages received so far (those not already given to the
    /// client's log handler).
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        self.inner
            .as_mut()
            .map(ClientStream::take_logs)
            .unwrap_or_default()
    }

    /// Asks the server to stop producing (its cancel hook runs) and ends the stream.
    ///
    /// # Errors
    /// Transport errors.
    pub fn cancel(mut self) -> Result<()> {
        match self.inner.take() {
            Some(inner) => inner.cancel(),
            None => Ok(()),
        }
    }

    /// Ends the stream normally, draining whatever the server still sends.
    ///
    /// # Errors
    /// Transport errors.
    pub fn close(mut self) -> Result<()> {
        match self.inner.take() {
            Some(inner) => inner.close(),
            None => Ok(()),
        }
    }

    /// The stream as records of type `T`, row by row across batches. An error (remote,
    /// or a batch that does not decode as `T`) is the last item.
    pub fn into_rows<T: ArrowRecord>(self) -> Rows<'c, T, H> {
        Rows {
            stream: self,
            pending: Vec::new().into_iter(),
            failed: false,
        }
    }
}

/// A producer stream read as records: see [`ProducerStream::into_rows`].
pub struct Rows<'c, T, H = ()> {
    stream: ProducerStream<'c, H>,
    pending: std::vec::IntoIter<T>,
    failed: bool,
}

impl<T: ArrowRecord, H> Iterator for Rows<'_, T, H> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(row) = self.pending.next() {
                return Some(Ok(row));
            }
            if self.failed {
                return None;
            }
            let rows = self.stream.next()?.and_then(|batch| batch.rows::<T>());
            match rows {
                Ok(rows) => self.pending = rows.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<H> Iterator for ProducerStream<'_, H> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        match inner.tick() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.inner = None;
                None
            }
            Err(e) => {
                self.inner = None;
                Some(Err(e))
            }
        }
    }
}

impl<H> std::iter::FusedIterator for ProducerStream<'_, H> {}

/// An open exchange stream: each [`exchange`](ExchangeStream::exchange) sends one input
/// batch and returns the server's output batch.
///
/// Dropping the stream closes it (best effort); call [`close`](ExchangeStream::close) to
/// see errors.
pub struct ExchangeStream<'c, H = ()> {
    inner: ClientStream<'c>,
    header: H,
}

impl<'c, H: StreamHeader> ExchangeStream<'c, H> {
    /// Wraps an opened stream, decoding its header.
    ///
    /// # Errors
    /// Fails when the header batch does not decode as `H`.
    pub fn new(inner: ClientStream<'c>) -> Result<Self> {
        let header = H::from_header_batch(inner.header())?;
        Ok(ExchangeStream { inner, header })
    }
}

impl<H> ExchangeStream<'_, H> {
    /// The stream header, decoded (`&()` when the method declares none).
    pub fn header(&self) -> &H {
        &self.header
    }

    /// The raw header batch, if the method declares a header.
    pub fn header_batch(&self) -> Option<&RecordBatch> {
        self.inner.header()
    }

    /// Sends `input` and returns the output batch.
    ///
    /// # Errors
    /// [`crate::Error::Rpc`] when the server fails this exchange (the stream is over);
    /// transport errors.
    pub fn exchange(&mut self, input: &RecordBatch) -> Result<RecordBatch> {
        self.inner.exchange(input)
    }

    /// Takes the server's log messages received so far (those not already given to the
    /// client's log handler).
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        self.inner.take_logs()
    }

    /// Cancels the stream: the server stops and runs its cancel hook.
    ///
    /// # Errors
    /// Transport errors.
    pub fn cancel(self) -> Result<()> {
        self.inner.cancel()
    }

    /// Ends the stream normally.
    ///
    /// # Errors
    /// Transport errors.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

//! [`ClientStream`]: a producer or exchange stream opened by a [`Client`](super::Client),
//! with the call's deadline and cancel handle applied to every turn.

use std::sync::Arc;

use arrow_array::RecordBatch;

pub(crate) use super::session::StreamOpen;

use super::connection::Active;
use super::failure::explain_failure;
use super::link::{Deadline, LinkControl, Route};
use super::request::Request;
use super::request_session::RequestSession;
use super::session::StreamSession;
use super::telemetry::{ObservedCall, record_failure};
use super::{CallOptions, CancelHandle};
use crate::log::LogRecord;
use crate::wire::Metadata;
use crate::{Error, Result};

/// Arms a call's deadline and lets its cancel handle interrupt the transport, for as long
/// as the guard lives.
pub(crate) struct CallGuard<'a> {
    deadline: &'a Deadline,
    cancel: Option<CancelHandle>,
    disarm: bool,
}

impl<'a> CallGuard<'a> {
    /// A whole unary call: arms the deadline (disarmed on drop) and attaches `cancel`.
    ///
    /// # Errors
    /// `CANCELLED` when the handle was cancelled before the call started.
    pub(crate) fn call(
        deadline: &'a Deadline,
        control: &Arc<dyn LinkControl>,
        options: &CallOptions,
    ) -> Result<Self> {
        let mut guard = Self::turn(deadline, control, options.cancel.as_ref())?;
        deadline.arm(options.timeout);
        guard.disarm = true;
        Ok(guard)
    }

    /// One blocking step of a stream: attaches `cancel` only (the stream owns the
    /// deadline).
    ///
    /// # Errors
    /// `CANCELLED` when the handle is already cancelled.
    pub(crate) fn turn(
        deadline: &'a Deadline,
        control: &Arc<dyn LinkControl>,
        cancel: Option<&CancelHandle>,
    ) -> Result<Self> {
        if let Some(cancel) = cancel
            && !cancel.attach(control)
        {
            return Err(Error::Cancelled);
        }
        Ok(CallGuard {
            deadline,
            cancel: cancel.cloned(),
            disarm: false,
        })
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if let Some(cancel) = &self.cancel {
            cancel.detach();
        }
        if self.disarm {
            self.deadline.disarm();
        }
    }
}

/// A stream session on either kind of link: one long stream each way on a byte stream,
/// one request per turn on a request/response transport.
// One per open stream, on the stack: boxing the byte-stream session would add an
// allocation per stream on the path that matters most for latency.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Session<'c> {
    Bytes(StreamSession<'c>),
    Requests(RequestSession<'c>),
}

impl<'c> Session<'c> {
    fn header(&self) -> Option<&RecordBatch> {
        match self {
            Session::Bytes(s) => s.header(),
            Session::Requests(s) => s.header(),
        }
    }

    fn take_logs(&mut self) -> Vec<LogRecord> {
        match self {
            Session::Bytes(s) => s.take_logs(),
            Session::Requests(s) => s.take_logs(),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Session::Bytes(s) => s.is_finished(),
            Session::Requests(s) => s.is_finished(),
        }
    }

    fn tick(&mut self) -> Result<Option<RecordBatch>> {
        Ok(self
            .tick_with_metadata(Metadata::new())?
            .map(|(batch, _)| batch))
    }

    fn tick_with_metadata(
        &mut self,
        metadata: Metadata,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        match self {
            Session::Bytes(s) => s.tick_with_metadata(metadata),
            Session::Requests(s) => s.tick_with_metadata(metadata),
        }
    }

    fn exchange(&mut self, input: &RecordBatch) -> Result<RecordBatch> {
        self.exchange_with_metadata(input, Metadata::new())
            .map(|(batch, _)| batch)
    }

    fn exchange_with_metadata(
        &mut self,
        input: &RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        match self {
            Session::Bytes(s) => s.exchange_with_metadata(input, metadata),
            Session::Requests(s) => s.exchange_with_metadata(input, metadata),
        }
    }

    fn cancel(self) -> Result<()> {
        match self {
            Session::Bytes(s) => s.cancel(),
            Session::Requests(s) => s.cancel(),
        }
    }

    fn close(self) -> Result<()> {
        match self {
            Session::Bytes(s) => s.close(),
            Session::Requests(s) => s.close(),
        }
    }

    fn abandon(&mut self) {
        match self {
            Session::Bytes(s) => s.abandon(),
            Session::Requests(s) => s.abandon(),
        }
    }

    fn resume_token(&self) -> Option<Vec<u8>> {
        match self {
            Session::Bytes(_) => None,
            Session::Requests(s) => s.resume_token(),
        }
    }
}

/// What starts a stream: the encoded request, where it goes (request/response
/// transports) and whether a header comes first.
pub(crate) struct StreamStart<'a> {
    pub(crate) request: Request<'a>,
    pub(crate) route: Route<'a>,
    pub(crate) open: StreamOpen,
}

/// An open producer or exchange stream on a [`Client`](super::Client).
///
/// The call's timeout bounds the whole stream. A cancel requested while the stream is idle
/// is sent in-band at the next turn (the turn then fails with `CANCELLED` and the
/// connection stays usable); one that lands while a turn waits interrupts the transport.
/// Dropping an open stream closes it; call [`ClientStream::close`] to see errors.
pub struct ClientStream<'c> {
    session: Option<Session<'c>>,
    deadline: &'c Deadline,
    control: &'c Arc<dyn LinkControl>,
    broken: &'c mut bool,
    options: CallOptions,
    /// The call's span, re-entered for every turn.
    span: tracing::Span,
    /// The stream's observer and its `tracing` call span.
    observation: Observation,
}

/// How a stream is observed: its [`ObservedCall`] (ended when the stream is) and its
/// `tracing` call span (outcome fields recorded on failure).
pub(crate) struct Observation {
    pub(crate) observed: Option<Box<dyn ObservedCall>>,
    pub(crate) span: tracing::Span,
}

impl<'c> ClientStream<'c> {
    pub(crate) fn open(
        active: &'c mut Active,
        deadline: &'c Deadline,
        broken: &'c mut bool,
        start: StreamStart<'_>,
        options: &CallOptions,
        span: tracing::span::EnteredSpan,
        observation: Observation,
    ) -> Result<Self> {
        let StreamStart {
            request,
            route,
            open,
        } = start;
        let Active {
            conn,
            round_trip,
            control,
        } = active;
        let guard = CallGuard::turn(deadline, control, options.cancel.as_ref())?;
        deadline.arm(options.timeout);
        let opened = match round_trip {
            Some(round_trip) => RequestSession::open(
                conn,
                round_trip,
                deadline,
                route,
                &request.contiguous(),
                open,
            )
            .map(Session::Requests),
            None => match conn.send_request(&request) {
                Ok(()) => StreamSession::open(conn, open).map(Session::Bytes),
                Err(e) => Err(e),
            },
        };
        drop(guard);
        let mut stream = ClientStream {
            session: None,
            deadline,
            control,
            broken,
            options: options.clone(),
            span: span.exit(),
            observation,
        };
        match opened {
            Ok(session) => {
                stream.session = Some(session);
                Ok(stream)
            }
            Err(e) => Err(stream.fail(e)),
        }
    }

    /// The stream's header batch, if the method declares one.
    pub fn header(&self) -> Option<&RecordBatch> {
        self.session.as_ref().and_then(Session::header)
    }

    /// Takes the log messages received so far (each was also given to the log handler).
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        self.session
            .as_mut()
            .map(Session::take_logs)
            .unwrap_or_default()
    }

    /// Whether the stream has ended.
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(Session::is_finished)
    }

    /// Over a request/response transport (HTTP): the opaque position after the last batch
    /// returned (cursor and call token), from which a new session could resume; `None`
    /// on byte streams, which carry no resumable state, and once the stream has ended.
    pub fn resume_token(&self) -> Option<Vec<u8>> {
        self.session.as_ref().and_then(Session::resume_token)
    }

    /// Producer: the next batch, `Ok(None)` once the producer has finished.
    ///
    /// # Errors
    /// A remote error ends the stream; `DEADLINE_EXCEEDED`, `CANCELLED`, transport errors.
    pub fn tick(&mut self) -> Result<Option<RecordBatch>> {
        self.turn(|s| s.tick())
    }

    /// Producer: a tick carrying application metadata; returns the next batch with the
    /// custom metadata the server attached to it.
    ///
    /// # Errors
    /// As [`ClientStream::tick`].
    pub fn tick_with_metadata(
        &mut self,
        metadata: Metadata,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        self.turn(|s| s.tick_with_metadata(metadata))
    }

    /// Exchange: sends one input batch, returns the output batch.
    ///
    /// # Errors
    /// As [`ClientStream::tick`]; a stream the server already ended is a protocol error.
    pub fn exchange(&mut self, input: &RecordBatch) -> Result<RecordBatch> {
        self.turn(|s| s.exchange(input))
    }

    /// Exchange with input metadata; returns the output batch and its metadata.
    ///
    /// # Errors
    /// As [`ClientStream::exchange`].
    pub fn exchange_with_metadata(
        &mut self,
        input: &RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        self.turn(|s| s.exchange_with_metadata(input, metadata))
    }

    /// Cancels the stream in-band: the server stops and runs its cancel hook.
    ///
    /// # Errors
    /// Transport errors.
    pub fn cancel(mut self) -> Result<()> {
        if let Some(observed) = &mut self.observation.observed {
            observed.cancelled();
        }
        self.finish(Session::cancel)
    }

    /// Ends the stream normally, draining what the server still sends.
    ///
    /// # Errors
    /// Transport errors.
    pub fn close(mut self) -> Result<()> {
        self.finish(Session::close)
    }

    fn turn<T>(&mut self, op: impl FnOnce(&mut Session<'c>) -> Result<T>) -> Result<T> {
        let span = self.span.clone();
        let _entered = span.enter();
        if self.is_finished() {
            return match self.session.as_mut() {
                Some(session) => op(session),
                None => Err(Error::protocol("the stream has already ended")),
            };
        }
        let guard = match CallGuard::turn(self.deadline, self.control, self.options.cancel.as_ref())
        {
            Ok(guard) => guard,
            Err(cancelled) => {
                // Cancelled while idle: tell the server in-band; the connection stays usable.
                self.finish(Session::cancel)?;
                return Err(cancelled);
            }
        };
        let outcome = match self.session.as_mut() {
            Some(session) => op(session),
            None => Err(Error::protocol("the stream has already ended")),
        };
        drop(guard);
        outcome.map_err(|e| self.fail(e))
    }

    fn finish(&mut self, op: impl FnOnce(Session<'c>) -> Result<()>) -> Result<()> {
        let span = self.span.clone();
        let _entered = span.enter();
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let cancel = self
            .options
            .cancel
            .as_ref()
            .filter(|c| c.attach(self.control));
        let outcome = op(session);
        if let Some(cancel) = cancel {
            cancel.detach();
        }
        outcome.map_err(|e| self.fail(e))
    }

    /// Remote errors and external-storage failures pass through (the connection is in
    /// step); anything else drops the connection: the client reopens it on its next call.
    fn fail(&mut self, error: Error) -> Error {
        record_failure(&self.observation.span, &error);
        if let Some(observed) = &mut self.observation.observed {
            observed.failed(&error);
        }
        if error.keeps_connection() {
            return error;
        }
        if let Some(session) = &mut self.session {
            session.abandon();
        }
        *self.broken = true;
        let error = explain_failure(self.deadline, self.control.as_ref(), error, &self.options);
        // The link is borrowed until the stream drops, so end it here: shut the socket
        // down, or kill and reap the worker.
        self.control.abort();
        error
    }
}

impl Drop for ClientStream<'_> {
    fn drop(&mut self) {
        if !*self.broken {
            let _ = self.finish(Session::close);
        }
        self.deadline.disarm();
        if let Some(observed) = self.observation.observed.take() {
            observed.end();
        }
    }
}

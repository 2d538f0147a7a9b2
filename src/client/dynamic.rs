//! [`Client`]: a connection to one worker, calling methods by name with Arrow batches.
//! Typed clients and the CLI are thin layers over it.
//!
//! # After a failure
//! A remote error (an EXCEPTION batch) leaves the connection as it was. A timeout, a
//! cancel that interrupted the transport, or a transport or framing error leaves the byte
//! stream at an unknown position, so the client drops the connection at once (an `exec:`
//! worker is killed and reaped) and opens a fresh one at the start of the next call
//! ([`ConnectOptions::reconnect`], default on). Draining instead would make a caller
//! whose deadline passed wait for the very answer it gave up on, and would hang on a
//! stuck worker. A reconnected `exec:` worker is a new process: state held by the old
//! one is gone. Nothing is ever retried: the failed call reports its error.

use std::sync::Arc;

use arrow_array::RecordBatch;

use super::connection::{Active, SideState};
use super::failure::explain_failure;
use super::link::{CheckedReader, Connect, Deadline, Link, Route, RouteStep};
use super::request::{Request, RequestEncoder};
use super::stream::{CallGuard, ClientStream, Observation, StreamOpen, StreamStart};
use super::telemetry::{
    ClientCall, ObservedCall, client_span, observed_metadata, record_failure, trace_headers,
};
use super::{CallOptions, ConnectOptions, LogHandler, Target, UnaryResult};
use crate::log::LogRecord;
use crate::wire::{Metadata, SideChannel};
use crate::{Error, Result};

/// A connection to one worker: an `exec:` subprocess, a Unix or TCP socket, or any
/// [`Link`].
///
/// `Client::connect` (provided by the `vgi_rpc::transport` module) opens one
/// from an address string. A client owns its connection and, for `exec:`, the worker
/// process, which is reaped when the client drops.
///
/// After a remote error the connection is as it was. After a timeout, a cancel that
/// interrupted the transport, or a transport or framing error, the byte stream is at an
/// unknown position, so the client drops the connection at once (an `exec:` worker is
/// killed and reaped) and opens a fresh one at the start of the next call
/// ([`ConnectOptions::reconnect`]). Nothing is ever retried.
pub struct Client {
    connector: Option<Arc<dyn Connect>>,
    endpoint: String,
    options: ConnectOptions,
    deadline: Arc<Deadline>,
    link: Option<Active>,
    broken: bool,
    log_handler: Option<LogHandler>,
    encoder: RequestEncoder,
    /// The observer's entries for the current call (kept for its buffers).
    trace: Metadata,
}

impl Client {
    /// A client that opens its connections with `connector` (and reopens them after a
    /// failed call).
    ///
    /// # Errors
    /// As [`Connect::connect`].
    pub fn from_connector(connector: Arc<dyn Connect>, options: ConnectOptions) -> Result<Client> {
        let deadline = Deadline::new();
        let link = connector.connect(&deadline)?;
        Ok(Client {
            endpoint: connector.endpoint(),
            link: Some(Active::new(link, &options)),
            connector: Some(connector),
            options,
            deadline,
            broken: false,
            log_handler: None,
            encoder: RequestEncoder::default(),
            trace: Metadata::new(),
        })
    }

    /// A client over an already open link (any reader/writer pair: see [`Link::new`]).
    /// It cannot reconnect: after a failed call every later call fails.
    pub fn from_link(link: Link, options: ConnectOptions) -> Client {
        let deadline = Deadline::new();
        let reader = Box::new(CheckedReader {
            inner: link.reader,
            deadline: Arc::clone(&deadline),
        });
        let link = Link { reader, ..link };
        Client {
            connector: None,
            endpoint: "link".to_owned(),
            link: Some(Active::new(link, &options)),
            options,
            deadline,
            broken: false,
            log_handler: None,
            encoder: RequestEncoder::default(),
            trace: Metadata::new(),
        }
    }

    /// A client over any reader/writer pair with default options: shorthand for
    /// [`Client::from_link`] with [`Link::new`].
    pub fn from_io(
        reader: impl std::io::Read + Send + 'static,
        writer: impl std::io::Write + Send + 'static,
    ) -> Client {
        Client::from_link(Link::new(reader, writer), ConnectOptions::default())
    }

    /// The endpoint this client talks to, as an address string.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The options the client was opened with.
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.options
    }

    /// The `exec:` worker's process id (`None` for sockets or while disconnected).
    pub fn worker_pid(&self) -> Option<u32> {
        self.link.as_ref()?.control.process_id()
    }

    /// Whether the connection was dropped by a failed call and not yet reopened.
    pub fn is_broken(&self) -> bool {
        self.broken || self.link.is_none()
    }

    /// Drops the current connection (killing an `exec:` worker) and opens a new one.
    ///
    /// # Errors
    /// [`Error::Disconnected`] for a client made with [`Client::from_link`], which has
    /// nothing to reconnect with; otherwise as [`Connect::connect`].
    pub fn reconnect(&mut self) -> Result<()> {
        let Some(connector) = self.connector.clone() else {
            return Err(Error::disconnected(
                "the connection was dropped after a failed call, and a client made from a link cannot reconnect",
            ));
        };
        let handler = self.take_handler();
        if let Some(old) = self.link.take() {
            old.control.abort();
        }
        self.log_handler = handler;
        self.broken = true;
        let mut active = Active::new(connector.connect(&self.deadline)?, &self.options);
        active.conn.log_handler = self.log_handler.take();
        // A new connection may bring a new side channel: its requests name that one.
        self.encoder = RequestEncoder::default();
        self.link = Some(active);
        self.broken = false;
        Ok(())
    }

    /// Sets the callback that sees each server log message as it arrives. Logs are still
    /// returned in [`UnaryResult::logs`] and by [`ClientStream::take_logs`].
    pub fn set_log_handler(&mut self, handler: impl FnMut(&LogRecord) + Send + 'static) {
        let handler: LogHandler = Box::new(handler);
        match &mut self.link {
            Some(active) => active.conn.log_handler = Some(handler),
            None => self.log_handler = Some(handler),
        }
    }

    /// Calls a unary method. `params` is the one-row parameters batch (an empty-schema
    /// batch for a method without parameters).
    ///
    /// # Errors
    /// [`Error::Rpc`] for an error the server sent (the connection stays usable);
    /// [`Error::Timeout`], [`Error::Cancelled`], [`Error::Disconnected`] (with an `exec:`
    /// worker's exit status and stderr tail) and [`Error::Protocol`] for failures met
    /// locally, after which the connection is dropped.
    pub fn call(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
    ) -> Result<UnaryResult> {
        let span = client_span(&target.protocol, method, false);
        let _entered = span.enter();
        let observed = self.observe(target, method, false);
        let result = self.call_observed(target, method, params, options, observed.as_deref());
        finish_call(&span, observed, &result);
        result
    }

    /// Starts observing a call, when an observer is set.
    fn observe(
        &self,
        target: &Target,
        method: &str,
        stream: bool,
    ) -> Option<Box<dyn ObservedCall>> {
        self.options.observer.as_ref()?.start(&ClientCall {
            protocol: &target.protocol,
            method,
            stream,
            endpoint: &self.endpoint,
        })
    }

    fn call_observed(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
        observed: Option<&dyn ObservedCall>,
    ) -> Result<UnaryResult> {
        if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Error::Cancelled);
        }
        self.ready()?;
        self.negotiate(options)?;
        let Client {
            link,
            encoder,
            deadline,
            trace,
            ..
        } = self;
        let active = link.as_mut().ok_or(Error::Closed)?;
        let _span = call_span(target, method);
        let request = encode_request(
            encoder,
            trace,
            active,
            (target, method, params),
            options,
            observed,
        )?;
        let guard = CallGuard::call(deadline, &active.control, options)?;
        let mut logs = Vec::new();
        let outcome = match active.round_trip.as_mut() {
            Some(round_trip) => {
                let route = Route {
                    protocol: &target.protocol,
                    method,
                    step: RouteStep::Unary,
                };
                round_trip
                    .round_trip(route, &request.contiguous(), deadline)
                    .and_then(|body| active.conn.read_unary_body(&body, &mut logs))
            }
            None => active
                .conn
                .send_request(&request)
                .and_then(|()| active.conn.read_single_result(&mut logs)),
        };
        drop(guard);
        match outcome {
            Ok((batch, metadata)) => Ok(UnaryResult {
                batch,
                metadata,
                logs,
            }),
            Err(e) if e.keeps_connection() => Err(e),
            Err(e) => Err(self.fail(e, options)),
        }
    }

    /// Opens a producer or exchange stream of a method that declares no header. The
    /// call's timeout bounds the whole stream, from open to close.
    ///
    /// # Errors
    /// As [`Client::call`]; a remote error when the stream failed at init.
    pub fn open_stream(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
    ) -> Result<ClientStream<'_>> {
        self.open(target, method, params, StreamOpen::Plain, options)
    }

    /// Opens a producer or exchange stream of a method that declares a header; the header
    /// is read before this returns ([`ClientStream::header`]).
    ///
    /// # Errors
    /// As [`Client::open_stream`].
    pub fn open_stream_with_header(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
    ) -> Result<ClientStream<'_>> {
        self.open(target, method, params, StreamOpen::WithHeader, options)
    }

    fn open(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        open: StreamOpen,
        options: &CallOptions,
    ) -> Result<ClientStream<'_>> {
        let span = client_span(&target.protocol, method, true);
        let mut observed = self.observe(target, method, true);
        let entered = span.clone().entered();
        let result =
            self.open_observed(target, method, params, open, options, &mut observed, &span);
        drop(entered);
        // Not yet handed to a stream: the open failed before there was one.
        finish_call(&span, observed, &result);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn open_observed(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        open: StreamOpen,
        options: &CallOptions,
        observed: &mut Option<Box<dyn ObservedCall>>,
        call: &tracing::Span,
    ) -> Result<ClientStream<'_>> {
        if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Error::Cancelled);
        }
        self.ready()?;
        self.negotiate(options)?;
        let Client {
            link,
            broken,
            encoder,
            deadline,
            trace,
            ..
        } = self;
        let active = link.as_mut().ok_or(Error::Closed)?;
        let span = call_span(target, method);
        let request = encode_request(
            encoder,
            trace,
            active,
            (target, method, params),
            options,
            observed.as_deref(),
        )?;
        let route = Route {
            protocol: &target.protocol,
            method,
            step: RouteStep::StreamInit,
        };
        let start = StreamStart {
            request,
            route,
            open,
        };
        let observation = Observation {
            observed: observed.take(),
            span: call.clone(),
        };
        ClientStream::open(active, deadline, broken, start, options, span, observation)
    }

    /// The live connection, reopening it first if a failed call dropped it.
    fn ready(&mut self) -> Result<()> {
        if self.is_broken() {
            if !self.options.reconnect {
                return Err(Error::disconnected(
                    "the connection was dropped after a failed call; call Client::reconnect",
                ));
            }
            self.reconnect()?;
        }
        Ok(())
    }

    /// Offers a fresh connection's side channel (shared memory) to the worker, once,
    /// within `options`' deadline.
    fn negotiate(&mut self, options: &CallOptions) -> Result<()> {
        let Some(active) = self.link.as_mut() else {
            return Ok(());
        };
        if !matches!(active.conn.side, SideState::Offered(_)) {
            return Ok(());
        }
        let guard = CallGuard::call(&self.deadline, &active.control, options)?;
        let outcome = active.conn.negotiate_side();
        drop(guard);
        outcome.map_err(|e| self.fail(e, options))
    }

    /// The side channel (shared-memory segment) this connection uses: `None` until the
    /// first call has offered it, and when the worker declined it or none was configured
    /// ([`ConnectOptions::shm`]). `vgi_rpc::transport::shm::segment_of` gives its segment.
    pub fn side_channel(&self) -> Option<&Arc<dyn SideChannel>> {
        self.link.as_ref()?.conn.side()
    }

    fn take_handler(&mut self) -> Option<LogHandler> {
        match &mut self.link {
            Some(active) => active.conn.log_handler.take(),
            None => self.log_handler.take(),
        }
    }

    /// Turns a transport-level failure into the error the caller sees, and drops the
    /// connection.
    fn fail(&mut self, error: Error, options: &CallOptions) -> Error {
        let handler = self.take_handler();
        self.log_handler = handler;
        self.broken = true;
        let Some(active) = self.link.take() else {
            return error;
        };
        let error = explain_failure(&self.deadline, active.control.as_ref(), error, options);
        active.control.abort();
        error
    }
}

/// The span a call's wire events belong to (entered for as long as it is held).
fn call_span(target: &Target, method: &str) -> tracing::span::EnteredSpan {
    tracing::debug_span!(
        target: crate::wire::trace::TARGET,
        "call",
        protocol = %target.protocol,
        method = %method,
    )
    .entered()
}

impl Drop for Client {
    fn drop(&mut self) {
        // The connection closes first, then the control reaps an `exec:` worker.
        drop(self.link.take());
    }
}

/// Encodes a call's request: the observer's trace context (kept in `trace`) rides on the
/// encoder's cached metadata, and a request/response link gets it as headers too.
fn encode_request<'e>(
    encoder: &'e mut RequestEncoder,
    trace: &mut Metadata,
    active: &mut Active,
    (target, method, params): (&Target, &str, &RecordBatch),
    options: &CallOptions,
    observed: Option<&dyn ObservedCall>,
) -> Result<Request<'e>> {
    observed_metadata(trace, observed);
    if let Some(round_trip) = active.round_trip.as_mut() {
        round_trip.set_trace_context(&trace_headers(&options.metadata, trace));
    }
    let side = active.conn.side().cloned();
    encoder.encode_with(
        target,
        method,
        params,
        &options.metadata,
        trace,
        side.as_deref(),
    )
}

/// Ends a call's observation (and records its failure on `span` and the observer).
fn finish_call<T>(
    span: &tracing::Span,
    observed: Option<Box<dyn ObservedCall>>,
    result: &Result<T>,
) {
    if let Err(e) = result {
        record_failure(span, e);
    }
    if let Some(mut observed) = observed {
        if let Err(e) = result {
            observed.failed(e);
        }
        observed.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{CancelHandle, ClientStream};

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn clients_move_between_threads_and_cancel_handles_are_shared() {
        send::<Client>();
        send::<ClientStream<'static>>();
        send_sync::<CancelHandle>();
        send_sync::<CallOptions>();
    }
}

//! [`Client`]: a connection to a worker named by an [`Address`], calling methods by name
//! with Arrow batches. Typed clients and the CLI are thin layers over it.
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

use std::io::{Read, Write};
use std::time::Duration;

use arrow_array::RecordBatch;

use super::io::DeadlineCell;
use super::request::RequestEncoder;
use super::stream::{CallGuard, ClientStream};
use super::transport::{Transport, Worker};
use super::{Address, CallOptions, ConnectOptions, LogHandler, Target, UnaryResult};
use crate::log::LogRecord;
use crate::{Error, ErrorCode, Result, RpcError};

/// The reading half of a client connection.
pub type BoxRead = Box<dyn Read + Send>;
/// The writing half of a client connection.
pub type BoxWrite = Box<dyn Write + Send>;

/// How long a failed call waits for an `exec:` worker's exit status and stderr.
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(200);

/// A connection to one worker: `exec:` subprocess, Unix socket or TCP.
///
/// Owns the connection and, for `exec:`, the worker process, which is reaped when the
/// client drops (after [`ConnectOptions::exit_grace`], killed if it has not exited).
/// See the [module docs](self) for what happens after a failed call.
pub struct Client {
    address: Address,
    options: ConnectOptions,
    transport: Option<Transport>,
    broken: bool,
    log_handler: Option<LogHandler>,
    encoder: RequestEncoder,
}

impl Client {
    /// Connects to `address` (see [`Address`] for the syntax) with default options.
    ///
    /// # Errors
    /// An invalid address, a worker that cannot be started, or a refused connection.
    pub fn connect(address: &str) -> Result<Client> {
        Self::connect_with(&address.parse()?, ConnectOptions::default())
    }

    /// Connects to `address` with `options`.
    ///
    /// # Errors
    /// A worker that cannot be started, or a refused connection.
    pub fn connect_with(address: &Address, options: ConnectOptions) -> Result<Client> {
        let transport = Transport::open(address, &options)?;
        Ok(Client {
            address: address.clone(),
            options,
            transport: Some(transport),
            broken: false,
            log_handler: None,
            encoder: RequestEncoder::default(),
        })
    }

    /// The address this client connects to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The `exec:` worker's process id (`None` for sockets or while disconnected).
    pub fn worker_pid(&self) -> Option<u32> {
        self.transport.as_ref()?.worker.as_ref()?.id()
    }

    /// Whether the connection was dropped by a failed call and not yet reopened.
    pub fn is_broken(&self) -> bool {
        self.broken || self.transport.is_none()
    }

    /// Drops the current connection (killing an `exec:` worker) and opens a new one.
    ///
    /// # Errors
    /// As [`Client::connect_with`].
    pub fn reconnect(&mut self) -> Result<()> {
        let handler = self.take_handler();
        if let Some(old) = self.transport.take() {
            old.kill();
        }
        self.broken = true;
        let mut transport = Transport::open(&self.address, &self.options)?;
        transport.conn.log_handler = handler;
        self.transport = Some(transport);
        self.broken = false;
        Ok(())
    }

    /// Sets the callback that sees each server log message as it arrives. Logs are still
    /// returned in [`UnaryResult::logs`] and by [`ClientStream::take_logs`].
    pub fn set_log_handler(&mut self, handler: impl FnMut(&LogRecord) + Send + 'static) {
        let handler: LogHandler = Box::new(handler);
        match &mut self.transport {
            Some(t) => t.conn.log_handler = Some(handler),
            None => self.log_handler = Some(handler),
        }
    }

    /// Calls a unary method. `params` is the one-row parameters batch (an empty-schema
    /// batch for a method without parameters).
    ///
    /// # Errors
    /// [`Error::Rpc`] for a remote error (connection intact) and for a timeout
    /// (`DEADLINE_EXCEEDED`), a cancel (`CANCELLED`) or a worker or peer that went away
    /// (`UNAVAILABLE`, with the worker's exit status and stderr tail); encoding and other
    /// transport errors otherwise.
    pub fn call(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
    ) -> Result<UnaryResult> {
        if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(cancelled_error());
        }
        self.ready()?;
        let Client {
            transport, encoder, ..
        } = self;
        let transport = transport.as_mut().ok_or(Error::Closed)?;
        let request = encoder.encode(target, method, params, &options.metadata)?;
        let guard = CallGuard::call(&transport.deadline, &transport.interrupter, options)?;
        let mut logs = Vec::new();
        let outcome = transport
            .conn
            .send(request)
            .and_then(|()| transport.conn.read_single_result(&mut logs));
        drop(guard);
        match outcome {
            Ok(result) => {
                let (batch, metadata) = result.unzip();
                Ok(UnaryResult {
                    batch,
                    metadata: metadata.unwrap_or_default(),
                    logs,
                })
            }
            Err(e @ Error::Rpc(_)) => Err(e),
            Err(e) => Err(self.fail(e, options)),
        }
    }

    /// Opens a producer or exchange stream. `has_header` must match the method's
    /// declaration. The call's timeout bounds the whole stream, from open to close.
    ///
    /// # Errors
    /// As [`Client::call`]; a remote error when the stream failed at init.
    pub fn open_stream(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        has_header: bool,
        options: &CallOptions,
    ) -> Result<ClientStream<'_>> {
        if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(cancelled_error());
        }
        self.ready()?;
        let Client {
            transport,
            broken,
            encoder,
            ..
        } = self;
        let transport = transport.as_mut().ok_or(Error::Closed)?;
        let request = encoder.encode(target, method, params, &options.metadata)?;
        ClientStream::open(transport, broken, request, has_header, options)
    }

    /// The live transport, reopening it first if a failed call dropped it.
    fn ready(&mut self) -> Result<&mut Transport> {
        if self.is_broken() {
            if !self.options.reconnect {
                return Err(Error::from(
                    RpcError::new(
                        "ConnectionError",
                        "the connection was dropped after a failed call; call Client::reconnect",
                    )
                    .with_code(ErrorCode::Unavailable),
                ));
            }
            self.reconnect()?;
        }
        self.transport.as_mut().ok_or(Error::Closed)
    }

    fn take_handler(&mut self) -> Option<LogHandler> {
        match &mut self.transport {
            Some(t) => t.conn.log_handler.take(),
            None => self.log_handler.take(),
        }
    }

    /// Turns a transport-level failure into the error the caller sees, and drops the
    /// connection.
    fn fail(&mut self, error: Error, options: &CallOptions) -> Error {
        let handler = self.take_handler();
        self.log_handler = handler;
        self.broken = true;
        let Some(transport) = self.transport.take() else {
            return error;
        };
        let error = explain_failure(
            &transport.deadline,
            transport.worker.as_ref(),
            error,
            options,
        );
        transport.kill();
        error
    }
}

/// The error a caller sees when the transport failed mid-call.
pub(crate) fn explain_failure(
    deadline: &DeadlineCell,
    worker: Option<&Worker>,
    error: Error,
    options: &CallOptions,
) -> Error {
    if deadline.expired() {
        let timeout = options.timeout.unwrap_or_default();
        return RpcError::new(
            "DeadlineExceeded",
            format!("no answer within the call's {timeout:?} deadline"),
        )
        .with_code(ErrorCode::DeadlineExceeded)
        .into();
    }
    if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
        return cancelled_error();
    }
    match (&error, worker) {
        (Error::Io(_) | Error::Protocol(_) | Error::Closed, Some(worker)) => RpcError::new(
            "ConnectionError",
            format!("{error}; {}", worker.failure_report(EXIT_REPORT_WAIT)),
        )
        .with_code(ErrorCode::Unavailable)
        .into(),
        (Error::Closed, None) => {
            RpcError::new("ConnectionError", "the server closed the connection")
                .with_code(ErrorCode::Unavailable)
                .into()
        }
        (Error::Io(e), None) => RpcError::new("ConnectionError", e.to_string())
            .with_code(ErrorCode::Unavailable)
            .into(),
        _ => error,
    }
}

pub(crate) fn cancelled_error() -> Error {
    RpcError::new("Cancelled", "the call was cancelled")
        .with_code(ErrorCode::Cancelled)
        .into()
}

impl Drop for Client {
    fn drop(&mut self) {
        // Transport drop closes the connection, then reaps the worker.
        drop(self.transport.take());
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

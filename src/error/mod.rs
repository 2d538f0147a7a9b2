//! Errors: one local [`Error`] enum for everything that can go wrong in this process, and
//! [`RpcError`], the only error that crosses the wire.
//!
//! A handler returns `vgi_rpc::Result<T>`; whatever error it returns is turned into an
//! in-band EXCEPTION batch by the server (see [`Error::to_rpc`]), so the connection stays
//! usable. On the client side [`Error::Rpc`] is exactly what a server sent; failures the
//! client meets itself (a deadline, a cancel, a peer that went away, an address it cannot
//! use, bytes that break the protocol) have variants of their own, and the same failure
//! gives the same variant on every transport.

pub mod details;

use std::fmt;
use std::time::Duration;

/// Result alias used across the crate and by service implementations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail locally, plus remote errors carried back to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error a server sent (an EXCEPTION batch), or one a handler returns to be sent.
    /// Boxed: it is large and rare.
    #[error(transparent)]
    Rpc(Box<RpcError>),
    /// The call's deadline passed before its answer arrived. The connection was dropped.
    #[error("no answer within the call's {0:?} deadline")]
    Timeout(Duration),
    /// The call was cancelled through its [`CancelHandle`](crate::client::CancelHandle).
    #[error("the call was cancelled")]
    Cancelled,
    /// The connection ended or broke under a call: the peer closed it, reset it, or (for
    /// `exec:`) the worker died. The message says what is known (exit status, stderr).
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// A connection could not be opened: a worker that would not start, a refused or
    /// unreachable socket.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The address that was dialled.
        endpoint: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// An address string that does not parse, or names a transport this build lacks.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The peer broke the framing or the call protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// One IPC message could not be decoded, but its length was readable and it was
    /// skipped whole, so the connection is still in step with the peer.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A value or schema does not have the declared type.
    #[error("type error: {0}")]
    Type(String),
    /// Arrow could not encode or decode a value.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Local I/O failed (a file, a socket option) outside of a call's connection.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A configuration that cannot work (a malformed key, a missing allowlist), reported
    /// when the server or client is built rather than on first use.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A message body did not fit the reader's memory budget
    /// ([`MemoryBudget`](crate::wire::MemoryBudget)): it was read and thrown away whole,
    /// so the stream is still in step with the peer. A server answers the call
    /// `RESOURCE_EXHAUSTED` with a retry hint.
    #[error(
        "a message body of {claimed} bytes does not fit the memory budget of {capacity} \
         bytes now; retry later"
    )]
    OverBudget {
        /// The body's length.
        claimed: u64,
        /// The budget's size.
        capacity: u64,
    },
    /// The peer closed the connection cleanly at a stream boundary: how a server learns
    /// that its client left. A client reports a close under a call as
    /// [`Error::Disconnected`].
    #[error("connection closed")]
    Closed,
    /// A batch that travels through external storage could not be stored or resolved:
    /// the message names the URL with its secrets (query, userinfo, fragment) redacted.
    /// The connection stays in step with the peer (the pointer was read whole).
    #[error("external storage ({kind}): {message}")]
    External {
        /// Which check or step failed.
        kind: ExternalFailure,
        /// What happened, URL redacted.
        message: String,
    },
}

/// Why an externalized batch could not be stored or resolved ([`Error::External`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExternalFailure {
    /// A pointer arrived, but this end has no external storage configured.
    NotEnabled,
    /// The URL (or a redirect) is not allowed by the reader's URL policy.
    UrlRejected,
    /// The object could not be fetched (status, connection, redirects, timeout).
    Fetch,
    /// The object is larger than the reader's encoded or decoded cap.
    TooLarge,
    /// The object's SHA-256 differs from the pointer's, or it could not be decompressed.
    Integrity,
    /// The object is not one IPC stream holding exactly one data batch, or it holds a
    /// pointer itself.
    Invalid,
    /// The object's data batch does not have the pointer's schema.
    SchemaMismatch,
    /// The storage refused or could not take an upload.
    Upload,
}

impl fmt::Display for ExternalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExternalFailure::NotEnabled => "not enabled",
            ExternalFailure::UrlRejected => "url rejected",
            ExternalFailure::Fetch => "fetch",
            ExternalFailure::TooLarge => "too large",
            ExternalFailure::Integrity => "integrity",
            ExternalFailure::Invalid => "invalid object",
            ExternalFailure::SchemaMismatch => "schema mismatch",
            ExternalFailure::Upload => "upload",
        })
    }
}

impl Error {
    /// A [`Error::External`] of `kind`.
    pub fn external(kind: ExternalFailure, message: impl fmt::Display) -> Self {
        Error::External {
            kind,
            message: message.to_string(),
        }
    }

    /// Whether the connection is still in step with the peer after this error: the
    /// server's own errors, and external-storage failures (the pointer was read whole).
    pub fn keeps_connection(&self) -> bool {
        matches!(self, Error::Rpc(_) | Error::External { .. })
    }

    /// A [`Error::Protocol`] from anything printable.
    pub fn protocol(msg: impl fmt::Display) -> Self {
        Error::Protocol(msg.to_string())
    }

    /// A [`Error::Type`] from anything printable.
    pub fn type_error(msg: impl fmt::Display) -> Self {
        Error::Type(msg.to_string())
    }

    /// A [`Error::Disconnected`] from anything printable.
    pub fn disconnected(msg: impl fmt::Display) -> Self {
        Error::Disconnected(msg.to_string())
    }

    /// The remote error, when this is one.
    pub fn as_rpc(&self) -> Option<&RpcError> {
        match self {
            Error::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the failure happened in this process rather than being sent by a server.
    pub fn is_local(&self) -> bool {
        !matches!(self, Error::Rpc(_))
    }

    /// The wire form of this error, as the server reports it to the caller.
    pub fn to_rpc(&self) -> RpcError {
        match self {
            Error::Rpc(e) => (**e).clone(),
            Error::Type(m) => RpcError::new("TypeError", m.clone()),
            Error::Arrow(e) => RpcError::new("ArrowInvalid", e.to_string()),
            Error::Protocol(m) | Error::InvalidMessage(m) => {
                RpcError::new("ProtocolError", m.clone())
            }
            Error::Io(e) => RpcError::new(io_error_type(e), e.to_string()).with_code(io_code(e)),
            Error::Timeout(_) => RpcError::new("DeadlineExceeded", self.to_string())
                .with_code(ErrorCode::DeadlineExceeded),
            Error::Cancelled => {
                RpcError::new("Cancelled", self.to_string()).with_code(ErrorCode::Cancelled)
            }
            Error::Disconnected(_) | Error::Closed | Error::Connect { .. } => {
                RpcError::new("ConnectionError", self.to_string()).with_code(ErrorCode::Unavailable)
            }
            Error::External { kind, message } => match kind {
                ExternalFailure::UrlRejected | ExternalFailure::SchemaMismatch => {
                    RpcError::new("ValueError", message.clone())
                }
                _ => RpcError::new("RuntimeError", message.clone()),
            },
            Error::OverBudget { .. } => RpcError::new("MemoryBudgetError", self.to_string())
                .with_code(ErrorCode::ResourceExhausted)
                .with_kind("memory_budget")
                .with_retry_after(OVER_BUDGET_RETRY_AFTER),
            Error::InvalidAddress { .. } | Error::Config(_) => {
                RpcError::new("ValueError", self.to_string()).with_code(ErrorCode::InvalidArgument)
            }
        }
    }
}

/// The retry hint sent with an [`Error::OverBudget`]: budgets free up as calls finish.
const OVER_BUDGET_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The Python exception class a reference client would see for an I/O error.
fn io_error_type(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "FileNotFoundError",
        K::PermissionDenied => "PermissionError",
        K::AlreadyExists => "FileExistsError",
        K::TimedOut => "TimeoutError",
        K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            "ConnectionError"
        }
        _ => "OSError",
    }
}

/// The status code of an I/O error a handler returned: only a failed connection to
/// something else is retryable; a missing file is not.
fn io_code(e: &std::io::Error) -> ErrorCode {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => ErrorCode::NotFound,
        K::PermissionDenied => ErrorCode::PermissionDenied,
        K::AlreadyExists => ErrorCode::AlreadyExists,
        K::TimedOut => ErrorCode::DeadlineExceeded,
        K::InvalidInput | K::InvalidData => ErrorCode::InvalidArgument,
        K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            ErrorCode::Unavailable
        }
        _ => ErrorCode::Unknown,
    }
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        Error::Rpc(Box::new(e))
    }
}

/// The canonical status codes of the protocol (gRPC's set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum ErrorCode {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl ErrorCode {
    /// Every code, in the protocol's order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::Cancelled,
        ErrorCode::Unknown,
        ErrorCode::InvalidArgument,
        ErrorCode::DeadlineExceeded,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::PermissionDenied,
        ErrorCode::ResourceExhausted,
        ErrorCode::FailedPrecondition,
        ErrorCode::Aborted,
        ErrorCode::OutOfRange,
        ErrorCode::Unimplemented,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::DataLoss,
        ErrorCode::Unauthenticated,
    ];

    /// The wire spelling, e.g. `INVALID_ARGUMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Aborted => "ABORTED",
            ErrorCode::OutOfRange => "OUT_OF_RANGE",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::DataLoss => "DATA_LOSS",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Parses the wire spelling; `None` for anything non-canonical.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it travels on the wire: the exception type name, message, status code,
/// optional machine-readable kind and structured details (`{"@type": ...}` objects).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RpcError {
    /// Exception class name, e.g. `ValueError` (the reference's `error_type`).
    pub error_type: String,
    /// Human-readable message.
    pub message: String,
    /// Canonical status code.
    pub code: ErrorCode,
    /// Open-set machine-readable reason, e.g. `protocol_not_supported`.
    pub kind: Option<String>,
    /// Structured details, each a JSON object with an `@type` key.
    pub details: Vec<serde_json::Value>,
    /// Remote traceback text ("" when the server sent none).
    pub traceback: String,
    /// Request id the server assigned to the failed call, when known.
    pub request_id: Option<String>,
}

impl RpcError {
    /// A new error with code `UNKNOWN` and no kind or details.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        RpcError {
            error_type: error_type.into(),
            message: message.into(),
            code: ErrorCode::Unknown,
            kind: None,
            details: Vec::new(),
            traceback: String::new(),
            request_id: None,
        }
    }

    /// `ValueError: message`.
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("ValueError", message)
    }

    /// `RuntimeError: message`.
    pub fn runtime_error(message: impl Into<String>) -> Self {
        Self::new("RuntimeError", message)
    }

    /// `TypeError: message`.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// Sets the status code.
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    /// Sets the machine-readable kind.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Appends one structured detail object (see [`details`] for typed constructors).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.details.push(detail);
        self
    }

    /// Appends a `vgi_rpc.RetryInfo` detail: with `RESOURCE_EXHAUSTED` it makes the error
    /// retryable after `delay`.
    pub fn with_retry_after(self, delay: Duration) -> Self {
        self.with_detail(details::retry_info(delay))
    }

    /// The delay a `vgi_rpc.RetryInfo` detail asks for, if the error carries a valid one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.details.iter().find_map(details::parse_retry_info)
    }

    /// Whether a caller may retry (WIRE_PROTOCOL.md §8): `UNAVAILABLE` always;
    /// `RESOURCE_EXHAUSTED` only with a well-formed `vgi_rpc.RetryInfo` detail (its
    /// `retry_delay_seconds` a non-negative number; a malformed detail counts as absent,
    /// as in the reference). Everything else, `ABORTED` included, is final. This is a
    /// classification: clients never retry on their own.
    pub fn is_retryable(&self) -> bool {
        match self.code {
            ErrorCode::Unavailable => true,
            ErrorCode::ResourceExhausted => self.retry_after().is_some(),
            _ => false,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.error_type, self.message, self.code)?;
        if let Some(kind) = &self.kind {
            write!(f, " ({kind})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn retryable_follows_the_reference_rule() {
        let err = |code| RpcError::new("E", "m").with_code(code);
        assert!(err(ErrorCode::Unavailable).is_retryable());
        assert!(!err(ErrorCode::Aborted).is_retryable());
        assert!(!err(ErrorCode::DeadlineExceeded).is_retryable());
        assert!(!err(ErrorCode::ResourceExhausted).is_retryable());
        let with = |detail| err(ErrorCode::ResourceExhausted).with_detail(detail);
        assert!(
            with(json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": 0})).is_retryable()
        );
        assert!(
            with(json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": 1.5})).is_retryable()
        );
        for malformed in [
            json!({"@type": "vgi_rpc.RetryInfo"}),
            json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": -1}),
            json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": true}),
            json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": "3"}),
            json!({"@type": "vgi_rpc.ErrorInfo", "retry_delay_seconds": 3}),
        ] {
            assert!(!with(malformed.clone()).is_retryable(), "{malformed}");
        }
    }
}

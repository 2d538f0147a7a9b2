//! Errors: one local [`Error`] enum for everything that can go wrong in this process, and
//! [`RpcError`], the only error that crosses the wire.
//!
//! A handler returns `vgi_rpc::Result<T>`; whatever error it returns is turned into an
//! in-band EXCEPTION batch by the server (see [`Error::to_rpc`]), so the connection stays
//! usable. On the client side a remote failure arrives as [`Error::Rpc`].

use std::fmt;

/// Result alias used across the crate and by service implementations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail locally: I/O, malformed frames, schema mismatches, and remote
/// errors carried back to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote (or handler-raised) RPC error (boxed: it is large and rare).
    #[error(transparent)]
    Rpc(Box<RpcError>),
    /// Reading or writing the transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Arrow could not encode or decode a value.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The peer broke the framing or the call protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A value or schema does not have the declared type.
    #[error("type error: {0}")]
    Type(String),
    /// One IPC message could not be decoded, but its length was readable and it was
    /// skipped whole, so the connection is still in step with the peer.
    #[error("protocol error: {0}")]
    InvalidMessage(String),
    /// The peer closed the connection.
    #[error("connection closed")]
    Closed,
}

impl Error {
    /// A [`Error::Protocol`] from anything printable.
    pub fn protocol(msg: impl fmt::Display) -> Self {
        Error::Protocol(msg.to_string())
    }

    /// A [`Error::Type`] from anything printable.
    pub fn type_error(msg: impl fmt::Display) -> Self {
        Error::Type(msg.to_string())
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
            Error::Io(e) => {
                RpcError::new("IOError", e.to_string()).with_code(ErrorCode::Unavailable)
            }
            Error::Closed => RpcError::new("ConnectionError", "connection closed")
                .with_code(ErrorCode::Unavailable),
        }
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

    /// Appends one structured detail object.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.details.push(detail);
        self
    }

    /// Whether a caller may retry (WIRE_PROTOCOL.md §8): `UNAVAILABLE` always;
    /// `RESOURCE_EXHAUSTED` only with a well-formed `vgi_rpc.RetryInfo` detail (its
    /// `retry_delay_seconds` a non-negative number; a malformed detail counts as absent,
    /// as in the reference). Everything else, `ABORTED` included, is final. This is a
    /// classification: clients never retry on their own.
    pub fn is_retryable(&self) -> bool {
        match self.code {
            ErrorCode::Unavailable => true,
            ErrorCode::ResourceExhausted => self.details.iter().any(is_valid_retry_info),
            _ => false,
        }
    }
}

fn is_valid_retry_info(detail: &serde_json::Value) -> bool {
    detail.get("@type").and_then(serde_json::Value::as_str) == Some("vgi_rpc.RetryInfo")
        && detail
            .get("retry_delay_seconds")
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|delay| delay >= 0.0)
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

//! Why a request produced no answer, and that failure as the engine's error.

use std::io;

use crate::{Error, RpcError};

/// Why a request produced no answer.
pub(super) enum Failure {
    Deadline,
    Interrupted,
    Request(reqwest::Error),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl From<RpcError> for Failure {
    fn from(e: RpcError) -> Self {
        Failure::Error(e.into())
    }
}

impl Failure {
    pub(super) fn into_error(self, base: &str) -> Error {
        match self {
            Failure::Deadline => Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the HTTP request timed out",
            )),
            Failure::Interrupted => Error::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                "the HTTP request was interrupted",
            )),
            Failure::Request(e) => request_error(base, &e),
            Failure::Error(e) => e,
        }
    }
}

/// A reqwest failure as the engine's error: refused or unreachable → `Connect`, a
/// connection that broke mid-request → `Disconnected`.
pub(super) fn request_error(base: &str, e: &reqwest::Error) -> Error {
    let mut chain = e.to_string();
    let mut kind = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<io::Error>() {
            kind.get_or_insert(io.kind());
        }
        source = s.source();
    }
    if e.is_connect() {
        let kind = kind.unwrap_or(if e.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::ConnectionRefused
        });
        return Error::Connect {
            endpoint: base.to_owned(),
            source: io::Error::new(kind, chain),
        };
    }
    Error::Disconnected(format!("the HTTP request failed: {chain}"))
}

/// A header value of ours (a trace context, a session header) that HTTP must accept.
pub(super) fn header_value(
    value: &str,
) -> std::result::Result<reqwest::header::HeaderValue, Failure> {
    reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        Error::protocol(format!("{value:?} cannot be sent as an HTTP header value")).into()
    })
}

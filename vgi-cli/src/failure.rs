//! How a run fails, and the exit status each failure maps to.
//!
//! Scripts need to tell "I called it wrong" from "I could not reach it" from "it answered
//! with an error", so each has its own exit status, and a remote error prints its type and
//! status code on stderr.

use std::fmt;
use std::process::ExitCode;

use vgi_rpc::{Error, RpcError};

/// Exit status of a remote error (the server answered with an EXCEPTION).
pub(crate) const EXIT_REMOTE: u8 = 1;
/// Exit status of a usage error (bad arguments, unknown method), as clap uses.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status of a transport failure (cannot connect, worker died, timeout, framing).
pub(crate) const EXIT_TRANSPORT: u8 = 3;
/// Exit status of a local failure (an input or output file).
pub(crate) const EXIT_LOCAL: u8 = 4;

/// A failed run.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line asks for something impossible.
    Usage(String),
    /// The worker could not be reached or the connection broke.
    Transport(String),
    /// The server answered with an error.
    Remote(Box<RpcError>),
    /// Reading an input or writing an output failed.
    Local(String),
    /// Standard output was closed by its reader: stop quietly, as a filter should.
    OutputClosed,
}

impl Failure {
    pub(crate) fn usage(msg: impl fmt::Display) -> Self {
        Failure::Usage(msg.to_string())
    }

    pub(crate) fn local(msg: impl fmt::Display) -> Self {
        Failure::Local(msg.to_string())
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Transport(_) => EXIT_TRANSPORT,
            Failure::Remote(_) => EXIT_REMOTE,
            Failure::Local(_) => EXIT_LOCAL,
            Failure::OutputClosed => 0,
        })
    }

    /// Writes the failure to stderr; `verbose` adds a remote traceback.
    pub(crate) fn report(&self, verbose: bool) {
        match self {
            Failure::Usage(m) => eprintln!("error: {m}\n(see `vgi-rpc --help`)"),
            Failure::Transport(m) => eprintln!("error: transport failure: {m}"),
            Failure::Local(m) => eprintln!("error: {m}"),
            Failure::OutputClosed => {}
            Failure::Remote(e) => {
                eprintln!(
                    "error: remote {} [{}]: {}",
                    e.error_type,
                    e.code.as_str(),
                    e.message
                );
                if let Some(kind) = &e.kind {
                    eprintln!("  kind: {kind}");
                }
                if let Some(id) = &e.request_id {
                    eprintln!("  request_id: {id}");
                }
                if verbose && !e.traceback.is_empty() {
                    eprintln!("  remote traceback:\n{}", e.traceback);
                }
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Rpc(rpc) => Failure::Remote(rpc),
            e @ (Error::InvalidAddress { .. } | Error::Config(_)) => Failure::Usage(e.to_string()),
            other => Failure::Transport(other.to_string()),
        }
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;
    use vgi_rpc::ErrorCode;

    #[test]
    fn failures_map_by_variant() {
        let remote = RpcError::value_error("x").with_code(ErrorCode::InvalidArgument);
        let failure = Failure::from(Error::from(remote));
        assert!(matches!(failure, Failure::Remote(_)));
        assert_eq!(failure.exit_code(), ExitCode::from(EXIT_REMOTE));
        // A server may send any error type, even one named like a local failure.
        let lookalike = RpcError::new("ConnectionError", "gone").with_code(ErrorCode::Unavailable);
        assert!(matches!(
            Failure::from(Error::from(lookalike)),
            Failure::Remote(_)
        ));
        for local in [
            Error::Timeout(std::time::Duration::from_secs(1)),
            Error::Cancelled,
            Error::disconnected("gone"),
            Error::protocol("bad bytes"),
            Error::Closed,
        ] {
            let failure = Failure::from(local);
            assert_eq!(failure.exit_code(), ExitCode::from(EXIT_TRANSPORT));
        }
        let bad = "ftp://x"
            .parse::<vgi_rpc::transport::Address>()
            .unwrap_err();
        assert_eq!(Failure::from(bad).exit_code(), ExitCode::from(EXIT_USAGE));
    }
}

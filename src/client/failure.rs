//! What a caller sees when a call fails locally: the deadline or cancel that caused it,
//! or a disconnect with what the link knows about why (an `exec:` worker's exit status and
//! stderr), so the same failure gives the same [`Error`] variant on every transport.

use std::time::Duration;

use super::CallOptions;
use super::link::{Deadline, LinkControl};
use crate::Error;

/// How long a failed call waits for an `exec:` worker's exit status and stderr.
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(200);

/// The error a caller sees when the transport failed mid-call: the deadline or cancel
/// that caused it, or a disconnect (with what the link knows about why), or the error.
pub(crate) fn explain_failure(
    deadline: &Deadline,
    control: &dyn LinkControl,
    error: Error,
    options: &CallOptions,
) -> Error {
    if deadline.expired() {
        return Error::Timeout(options.timeout.unwrap_or_default());
    }
    if options.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
        return Error::Cancelled;
    }
    let detail = match &error {
        Error::Disconnected(m) => m.clone(),
        Error::Closed => "the server closed the connection".to_owned(),
        Error::Io(e) if is_disconnect(e) => format!("the connection broke: {e}"),
        _ => return error,
    };
    match control.failure_report(EXIT_REPORT_WAIT) {
        Some(report) => Error::Disconnected(format!("{detail}; {report}")),
        None => Error::Disconnected(detail),
    }
}

/// I/O errors that mean the peer is gone (as opposed to a local failure).
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::UnexpectedEof
            | K::BrokenPipe
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
    )
}

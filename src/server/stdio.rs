//! The stdio transport: requests on stdin, responses on stdout, until stdin closes.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use super::{Server, serve_connection};
use crate::Result;

/// Serves `server` on this process's stdin/stdout until stdin reaches EOF.
///
/// Diagnostics must go to stderr: stdout carries only IPC streams. The pipes are used
/// through duplicated raw descriptors, bypassing std's line-buffered stdout, so each
/// response is one `write(2)`.
///
/// # Errors
/// Transport errors, or a client that broke the IPC framing.
pub fn serve_stdio(server: impl Into<Server>) -> Result<()> {
    let server = server.into();
    let stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    serve_connection(&server, stdin, stdout)
}

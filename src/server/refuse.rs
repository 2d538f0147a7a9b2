//! Turning a client away in-band, when a socket server is at its connection limit.
//!
//! Closing the socket unanswered would leave the client guessing (and on TCP a close with
//! unread request bytes sends a reset that can destroy the answer). Instead the refused
//! connection reads the client's first request and answers it with a normal error
//! stream — `RESOURCE_EXHAUSTED`, with a retry hint — so every client sees a typed error
//! it can retry, then the connection is closed.

use std::io::{Read, Write};

use super::Server;
use super::conn::{Conn, refuse_with};
use crate::{ErrorCode, Result, RpcError};

/// The error a refused client receives.
pub(crate) fn connection_limit_error(limit: usize) -> RpcError {
    RpcError::new(
        "ConnectionLimitError",
        format!("server is at its limit of {limit} concurrent connections; retry later"),
    )
    .with_code(ErrorCode::ResourceExhausted)
    .with_kind("max_connections")
    .with_retry_after(std::time::Duration::from_secs(1))
}

/// Reads one request from the connection and answers it with `error`.
///
/// # Errors
/// Transport errors, or a request that is not a valid IPC stream.
pub fn refuse_connection<R: Read, W: Write>(
    server: &Server,
    reader: R,
    writer: W,
    error: &RpcError,
) -> Result<()> {
    let mut conn = Conn::new(
        reader,
        writer,
        false,
        server.inner.limits.clone().on_channel(false),
    );
    refuse_with(&server.inner, &mut conn, error)
}

//! The HTTP server end (in progress).

use crate::Server;

/// How an HTTP server behaves beyond the wire contract's defaults.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HttpOptions {}

/// The routes serving `server`.
pub fn router(server: &Server, options: &HttpOptions) -> axum::Router {
    let _ = (server, options);
    axum::Router::new()
}

/// Serves `server` on `listener` until the process ends.
///
/// # Errors
/// Fails when the listener cannot accept.
pub fn serve(
    server: &Server,
    options: &HttpOptions,
    listener: std::net::TcpListener,
) -> crate::Result<()> {
    let _ = (server, options, listener);
    Ok(())
}

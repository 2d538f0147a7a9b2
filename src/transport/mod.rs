//! Socket transports: Unix-domain and TCP servers over the shared connection loop.
//!
//! A transport only moves bytes; validation, dispatch, streams and error reporting are
//! the server's, so a call behaves identically on stdio, Unix and TCP. Both socket kinds
//! implement [`Listener`] and share [`serve_listener`]'s accept loop, thread-per-connection
//! model, connection limit and graceful [`Shutdown`].
//!
//! ```no_run
//! # fn demo(server: vgi_rpc::Server) -> vgi_rpc::Result<()> {
//! use vgi_rpc::transport::{ServeOptions, Shutdown, UnixSocketListener, serve_listener};
//!
//! let listener = UnixSocketListener::bind("/tmp/calc.sock")?;
//! let options = ServeOptions::default().threaded(true).max_connections(64);
//! serve_listener(&server, &listener, &options, &Shutdown::on_signals()?)?;
//! # Ok(()) }
//! ```

mod listener;
mod serve;
#[cfg(feature = "shm")]
pub mod shm;
mod shutdown;

pub use listener::{Listener, SocketStream, TcpSocketListener, UnixSocketListener};
pub use serve::{ServeOptions, serve_listener};
pub use shutdown::Shutdown;

use std::net::ToSocketAddrs;
use std::path::Path;

use crate::{Result, Server};

/// Serves `server` on a Unix socket at `path` until SIGTERM/SIGINT, then removes the
/// socket file.
///
/// # Errors
/// Bind, signal-registration and accept failures.
pub fn serve_unix(server: &Server, path: impl AsRef<Path>, options: &ServeOptions) -> Result<()> {
    let listener = UnixSocketListener::bind(path)?;
    serve_listener(server, &listener, options, &Shutdown::on_signals()?)
}

/// Serves `server` over TCP on `addr` (use a loopback address unless the network is
/// trusted: the protocol has no authentication of its own) until SIGTERM/SIGINT.
///
/// # Errors
/// Bind, signal-registration and accept failures.
pub fn serve_tcp(server: &Server, addr: impl ToSocketAddrs, options: &ServeOptions) -> Result<()> {
    let listener = TcpSocketListener::bind(addr)?;
    serve_listener(server, &listener, options, &Shutdown::on_signals()?)
}

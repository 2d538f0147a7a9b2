//! Where bytes meet the engines: one module per transport, each holding both its server
//! end and its client end, plus the accept loop, graceful shutdown and the one address
//! parser.
//!
//! | module | server end | client end |
//! |---|---|---|
//! | `stdio` | [`serve_stdio`]: stdin/stdout | `exec:<command line>`: a worker process's pipes |
//! | `unix` | [`UnixSocketListener`] | `unix:<path>` |
//! | `tcp` | [`TcpSocketListener`] | `tcp://host:port` |
//! | [`shm`] | [`shm::ShmHost`], installed by `stdio` and `unix` | [`shm::ShmChannel`], with `ConnectOptions::with_shm` on `exec:`/`unix:` |
//! | [`http`] | [`http::router`] / [`http::serve`] (axum on tokio) | `http://host:port[/prefix]`, `https://…` (reqwest) |
//!
//! Shared memory rides beside a pipe or Unix socket rather than replacing it: the
//! engines see it only as a [`SideChannel`](crate::wire::SideChannel) (the client's from
//! its [`Link`](crate::client::Link), the worker's from a
//! [`SideChannelHost`] in the connection's
//! [`ConnectionInfo`](crate::server::ConnectionInfo)), and the pointer format and region
//! layout are sans-IO in [`crate::wire`].
//!
//! The engines know none of this. The server engine serves any `Read`/`Write` pair
//! ([`crate::server::serve_connection_from`]) and says who is calling through a
//! [`Peer`](crate::server::Peer); the client engine runs over a
//! [`Link`](crate::client::Link) opened by a [`Connect`](crate::client::Connect). That is
//! the whole seam: this module imports the engines, never the other way round
//! (`Client::connect` is defined here, in [`connect`](AddressConnector)).
//!
//! Adding a transport touches one new module here (both ends), one arm of
//! [`Address::parse`] and [`AddressConnector`], one row of the transport table that the
//! benches and the test matrix share (`conformance/src/matrix.rs`), and one lane of the
//! conformance scripts.
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

mod address;
mod connect;
mod direct;
mod fd;
#[cfg(feature = "http")]
pub mod http;
mod lend;
mod listener;
mod serve;
#[cfg(feature = "shm")]
pub mod shm;
mod shutdown;
mod stdio;
mod tcp;
mod unix;

pub use address::{Address, split_command_line};
pub use connect::AddressConnector;
pub use lend::{LENDING_SOCKET_BUFFER, lent_bytes};
pub use listener::{Listener, SocketStream};
pub use serve::{
    DEFAULT_CONNECTION_IDLE_TIMEOUT, DEFAULT_READ_TIMEOUT, ServeOptions, serve_listener,
};
pub use shutdown::Shutdown;
pub use stdio::{STDIO_PIPE_BUFFER, serve_stdio};
pub use tcp::TcpSocketListener;
pub use unix::UnixSocketListener;

use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;

use crate::server::SideChannelHost;
use crate::{Result, Server};

/// The worker's shared-memory host for connections whose peers share this host (pipes,
/// Unix sockets); `None` without the `shm` feature.
fn shm_host() -> Option<Arc<dyn SideChannelHost>> {
    #[cfg(feature = "shm")]
    {
        Some(Arc::new(shm::ShmHost))
    }
    #[cfg(not(feature = "shm"))]
    {
        None
    }
}

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

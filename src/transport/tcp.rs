//! TCP sockets: the server end ([`TcpSocketListener`]) and the client end
//! (`tcp://host:port` addresses). Both ends set `TCP_NODELAY`: every message goes out in
//! one complete write, so Nagle would only add latency.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::fd::socket_link;
use super::listener::Listener;
use crate::client::{ConnectOptions, Deadline, Link};
use crate::server::Peer;
use crate::{Error, Result};

/// A TCP listening socket. Accepted streams get `TCP_NODELAY`: every response is one
/// complete write, so Nagle would only add latency.
#[derive(Debug)]
pub struct TcpSocketListener {
    listener: TcpListener,
    local: SocketAddr,
}

impl TcpSocketListener {
    /// Binds `addr` (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    /// When the address does not resolve or cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs) -> Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        Ok(TcpSocketListener { listener, local })
    }

    /// The bound address, with the real port when 0 was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl AsFd for TcpSocketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Listener for TcpSocketListener {
    type Stream = TcpStream;

    fn accept(&self) -> io::Result<(TcpStream, Peer)> {
        let (stream, peer) = self.listener.accept()?;
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        Ok((stream, Peer::tcp(peer.to_string())))
    }

    fn discovery_line(&self) -> String {
        format!("TCP:{}:{}", self.local.ip(), self.local.port())
    }
}

/// Opens a client link to `host:port`, trying each resolved address within `timeout`.
pub(crate) fn connect(
    host: &str,
    port: u16,
    options: &ConnectOptions,
    deadline: &Arc<Deadline>,
) -> Result<Link> {
    let timeout = options.connect_timeout;
    let fail = |source: io::Error| Error::Connect {
        endpoint: format!("tcp://{host}:{port}"),
        source,
    };
    let stream = match timeout {
        None => TcpStream::connect((host, port)).map_err(fail)?,
        Some(timeout) => {
            let mut last = None;
            let mut connected = None;
            for addr in (host, port).to_socket_addrs().map_err(fail)? {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(s) => {
                        connected = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            connected.ok_or_else(|| {
                fail(last.unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no address resolved")
                }))
            })?
        }
    };
    stream.set_nodelay(true)?;
    stream.set_read_timeout(options.read_idle_timeout)?;
    socket_link(stream, deadline)
}

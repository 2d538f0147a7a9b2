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

/// The receive buffer a client socket asks for before it connects, where the kernel
/// grants it whole: room for a few MB batch answers in flight.
///
/// Left to itself, loopback TCP's receive-buffer autotuning settles each connection into
/// a fast or a slow state for bulk answers (about 7.4 against 3.5 GB/s for 1 MiB
/// transfers on one core here, decided per connection); a buffer of this size set before
/// `connect` kept every probed connection fast. Where `net.core.rmem_max` is smaller
/// the kernel would cut the request down and turn autotuning off, so the socket is then
/// left alone.
const BULK_RECEIVE_BUFFER: usize = 4 << 20;

/// Whether the kernel grants [`BULK_RECEIVE_BUFFER`] whole (read once).
fn receive_buffer_fits() -> bool {
    static FITS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FITS.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|max| max.trim().parse::<usize>().ok())
            .is_some_and(|max| max >= BULK_RECEIVE_BUFFER)
    })
}

/// A socket connected to `addr` (within `timeout`), its receive buffer sized first
/// ([`BULK_RECEIVE_BUFFER`]).
fn open(addr: &SocketAddr, timeout: Option<std::time::Duration>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if receive_buffer_fits() {
        socket.set_recv_buffer_size(BULK_RECEIVE_BUFFER)?;
    }
    let target = socket2::SockAddr::from(*addr);
    match timeout {
        Some(timeout) => socket.connect_timeout(&target, timeout)?,
        None => socket.connect(&target)?,
    }
    Ok(socket.into())
}

/// Opens a client link to `host:port`, trying each resolved address (each within
/// `timeout`).
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
    let mut last = None;
    let mut connected = None;
    for addr in (host, port).to_socket_addrs().map_err(fail)? {
        match open(&addr, timeout) {
            Ok(s) => {
                connected = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = connected.ok_or_else(|| {
        fail(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address resolved")))
    })?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(options.read_idle_timeout)?;
    socket_link(stream, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_socket_gets_the_bulk_receive_buffer_where_the_kernel_grants_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has an address");
        for timeout in [None, Some(std::time::Duration::from_secs(5))] {
            let stream = open(&addr, timeout).expect("connects");
            let (_accepted, peer) = listener.accept().expect("accepts");
            assert_eq!(peer, stream.local_addr().expect("has an address"));
            let granted = socket2::SockRef::from(&stream)
                .recv_buffer_size()
                .expect("reads SO_RCVBUF");
            // Linux reports twice what was asked for (its bookkeeping overhead).
            assert_eq!(
                granted >= BULK_RECEIVE_BUFFER,
                receive_buffer_fits(),
                "granted {granted} bytes"
            );
        }
    }

    #[test]
    fn a_refused_connection_is_a_connect_error() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
            listener.local_addr().expect("has an address")
        };
        assert!(open(&addr, None).is_err());
        assert!(open(&addr, Some(std::time::Duration::from_secs(5))).is_err());
    }
}

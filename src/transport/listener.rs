//! Listening sockets behind one small trait, so Unix and TCP share a single accept loop.
//!
//! A listener is non-blocking: the accept loop only calls `accept` after `poll(2)` said a
//! client is waiting, and treats `WouldBlock` as "someone else got it". Accepted streams
//! are switched back to blocking mode, since each connection is served by plain blocking
//! reads and writes on its own thread.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown as HowShutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::server::Peer;
use crate::{Error, Result};

/// A connected byte stream the accept loop can hand to a connection thread.
pub trait SocketStream: Read + Write + Send + AsFd + Sized + 'static {
    /// Another handle on the same socket (`dup(2)`).
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated.
    fn duplicate(&self) -> io::Result<Self>;
    /// Ends the read side, so a thread blocked reading the next request sees EOF. Used
    /// to end idle connections at shutdown while letting in-flight writes finish.
    fn shutdown_read(&self);
    /// Sets (or clears) the timeout of every blocking read.
    ///
    /// # Errors
    /// When the socket rejects the option.
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()>;
}

impl SocketStream for UnixStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_read(&self) {
        let _ = self.shutdown(HowShutdown::Read);
    }
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

impl SocketStream for TcpStream {
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_read(&self) {
        let _ = self.shutdown(HowShutdown::Read);
    }
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// A bound, listening socket.
pub trait Listener: AsFd {
    /// The accepted connection type.
    type Stream: SocketStream;

    /// Accepts one waiting client, in blocking mode, with who it is (for hooks and the
    /// access log).
    ///
    /// # Errors
    /// `WouldBlock` when no client is waiting; other accept errors.
    fn accept(&self) -> io::Result<(Self::Stream, Peer)>;

    /// The discovery line a worker prints once bound: `UNIX:<path>` or `TCP:<host>:<port>`.
    fn discovery_line(&self) -> String;
}

/// A Unix-domain listening socket; the socket file is removed when this is dropped.
#[derive(Debug)]
pub struct UnixSocketListener {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the file we bound, so we never delete someone else's socket.
    identity: (u64, u64),
}

impl UnixSocketListener {
    /// Binds `path`. A stale socket file left by a dead process is replaced; a path where
    /// another process is still listening is refused. The socket is made owner-only.
    ///
    /// # Errors
    /// When the path is in use by a live server, is not a socket, or cannot be bound.
    pub fn bind(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                )));
            }
            if UnixStream::connect(&path).is_ok() {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another server is listening on {}", path.display()),
                )));
            }
            fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        let meta = fs::symlink_metadata(&path)?;
        listener.set_nonblocking(true)?;
        Ok(UnixSocketListener {
            listener,
            path,
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocketListener {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl AsFd for UnixSocketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Listener for UnixSocketListener {
    type Stream = UnixStream;

    fn accept(&self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = self.listener.accept()?;
        stream.set_nonblocking(false)?;
        Ok((stream, Peer::unix()))
    }

    fn discovery_line(&self) -> String {
        format!("UNIX:{}", self.path.display())
    }
}

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

//! Listening sockets behind one small trait, so Unix and TCP share a single accept loop.
//!
//! A listener is non-blocking: the accept loop only calls `accept` after `poll(2)` said a
//! client is waiting, and treats `WouldBlock` as "someone else got it". Accepted streams
//! are switched back to blocking mode, since each connection is served by plain blocking
//! reads and writes on its own thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use crate::server::{Peer, SideChannelHost};

/// A connected byte stream the accept loop can hand to a connection thread.
pub trait SocketStream: Read + Write + Send + Sync + AsFd + Sized + 'static {
    /// Another handle on the same socket (`dup(2)`).
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated.
    fn duplicate(&self) -> io::Result<Self>;
    /// Ends the read side, so a thread blocked reading the next request sees EOF. Used
    /// to end idle connections at shutdown while letting in-flight writes finish.
    fn shutdown_read(&self);
    /// Ends both directions, so a thread blocked reading or writing returns at once.
    fn shutdown_all(&self);
    /// Sets (or clears) the timeout of every blocking read.
    ///
    /// # Errors
    /// When the socket rejects the option.
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()>;
}

/// The standard library's sockets are [`SocketStream`]s.
macro_rules! socket_stream {
    ($($socket:ty),*) => {$(
        impl SocketStream for $socket {
            fn duplicate(&self) -> io::Result<Self> {
                self.try_clone()
            }
            fn shutdown_read(&self) {
                let _ = self.shutdown(Shutdown::Read);
            }
            fn shutdown_all(&self) {
                let _ = self.shutdown(Shutdown::Both);
            }
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$socket>::set_read_timeout(self, timeout)
            }
        }
    )*};
}

socket_stream!(UnixStream, TcpStream);

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

    /// What attaches the shared-memory segments clients name, for listeners whose
    /// clients run on this host; `None` (the default) keeps every batch inline.
    fn side_channels(&self) -> Option<Arc<dyn SideChannelHost>> {
        None
    }
}

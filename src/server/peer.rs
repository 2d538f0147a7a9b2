//! Who is on the other end of a connection.
//!
//! Transports know how a connection arrived (a pipe, a Unix socket, a TCP accept); the call
//! engine does not. A [`Peer`] carries that knowledge into every [`super::CallRecord`], so
//! hooks such as the access log can report `remote_addr` without knowing the transport.

use std::fmt;

use super::AuthContext;

/// The kind of transport a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// stdin/stdout or a subprocess pipe pair.
    Pipe,
    /// A Unix domain socket.
    Unix,
    /// A TCP socket.
    Tcp,
    /// HTTP.
    Http,
    /// Shared memory (control channel over a pipe or socket).
    Shm,
}

impl TransportKind {
    /// A short lowercase name: `pipe`, `unix`, `tcp`, `http`, `shm`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Pipe => "pipe",
            TransportKind::Unix => "unix",
            TransportKind::Tcp => "tcp",
            TransportKind::Http => "http",
            TransportKind::Shm => "shm",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The remote end of one connection, as the transport that accepted it saw it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Peer {
    /// How the connection arrived.
    pub kind: TransportKind,
    /// The peer's network address (`ip:port` for TCP); `None` where there is none (pipes,
    /// Unix sockets).
    pub remote_addr: Option<String>,
    /// Who the caller authenticated as ([`AuthContext::anonymous`] unless the transport
    /// authenticates: HTTP with authenticators, Unix sockets with peer credentials).
    pub auth: AuthContext,
    /// The peer process's credentials, where the OS reports them (`SO_PEERCRED` on a
    /// Linux Unix socket): transport identity a local service can authorize by.
    pub credentials: Option<PeerCredentials>,
    /// The client's `User-Agent` (HTTP), as sent.
    pub user_agent: Option<String>,
}

/// Who the process on the other end of a local socket runs as, as the kernel reports it
/// at connect time (it cannot be forged by the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCredentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

impl PeerCredentials {
    /// Credentials as reported by the OS.
    pub fn new(uid: u32, gid: u32, pid: i32) -> Self {
        PeerCredentials { uid, gid, pid }
    }
}

impl Peer {
    /// A peer with the given transport kind and address.
    pub fn new(kind: TransportKind, remote_addr: Option<String>) -> Self {
        Peer {
            kind,
            remote_addr,
            auth: AuthContext::anonymous(),
            credentials: None,
            user_agent: None,
        }
    }

    /// This peer, with the `User-Agent` its request sent.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: Option<String>) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// This peer, with the OS-reported credentials of its process.
    #[must_use]
    pub fn with_credentials(mut self, credentials: PeerCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// This peer, authenticated as `auth`.
    #[must_use]
    pub fn with_auth(mut self, auth: AuthContext) -> Self {
        self.auth = auth;
        self
    }

    /// The peer of a stdio or subprocess pipe connection.
    pub fn pipe() -> Self {
        Peer::new(TransportKind::Pipe, None)
    }

    /// The peer of a Unix-socket connection (which has no meaningful address).
    pub fn unix() -> Self {
        Peer::new(TransportKind::Unix, None)
    }

    /// The peer of a TCP connection, with its `ip:port`.
    pub fn tcp(remote_addr: impl fmt::Display) -> Self {
        Peer::new(TransportKind::Tcp, Some(remote_addr.to_string()))
    }

    /// The remote address, or `""` when there is none (the access log's convention).
    pub fn remote_addr_or_empty(&self) -> &str {
        self.remote_addr.as_deref().unwrap_or("")
    }
}

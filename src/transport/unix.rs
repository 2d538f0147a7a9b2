//! Unix-domain sockets: the server end ([`UnixSocketListener`]) and the client end
//! (`unix:<path>` addresses).

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::fd::socket_link;
use super::listener::Listener;
use crate::client::{Deadline, Link};
use crate::server::{Peer, SideChannelHost};
use crate::{Error, Result};

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

/// Adds the peer's `SO_PEERCRED` (Linux); elsewhere, or if the kernel will not say, the
/// peer has no credentials.
fn with_credentials(peer: Peer, stream: &UnixStream) -> Peer {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(cred) = rustix::net::sockopt::socket_peercred(stream) {
        return peer.with_credentials(crate::server::PeerCredentials::new(
            cred.uid.as_raw(),
            cred.gid.as_raw(),
            cred.pid.as_raw_nonzero().get(),
        ));
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
    peer
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
        let peer = with_credentials(Peer::unix(), &stream);
        Ok((stream, peer))
    }

    fn discovery_line(&self) -> String {
        format!("UNIX:{}", self.path.display())
    }

    fn side_channels(&self) -> Option<Arc<dyn SideChannelHost>> {
        super::shm_host()
    }
}

/// Opens a client link to the Unix socket at `path`.
pub(crate) fn connect(
    path: &Path,
    read_idle_timeout: Option<Duration>,
    deadline: &Arc<Deadline>,
) -> Result<Link> {
    let stream = UnixStream::connect(path).map_err(|source| Error::Connect {
        endpoint: format!("unix:{}", path.display()),
        source,
    })?;
    stream.set_read_timeout(read_idle_timeout)?;
    socket_link(stream, deadline)
}

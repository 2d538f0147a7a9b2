//! Pipes: the server end serves a `Server` on this process's stdin/stdout
//! ([`serve_stdio`]); the client end (`exec:<command line>` addresses) starts a worker
//! process and speaks over its pipes ([`exec`]).

mod exec;
mod stderr_tail;

pub(crate) use exec::spawn;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::direct::Direct;
use super::lend;
use crate::Result;
use crate::server::{ConnectionInfo, Peer, Server, serve_connection_lending};

/// Serves `server` on this process's stdin/stdout until stdin reaches EOF.
///
/// Clients may name a shared-memory segment (feature `shm`): large batches then travel
/// through it. Diagnostics must go to stderr: stdout carries only IPC streams. The pipes are used
/// through duplicated raw descriptors, bypassing std's line-buffered stdout, so each
/// response is one `write(2)`. When they are pipes, both are grown to
/// [`STDIO_PIPE_BUFFER`] (`F_SETPIPE_SZ`, best effort): with the default 64 KiB a large
/// batch crosses in many wake-ups of the reader. On Linux, when stdout is a pipe, the
/// column buffers of large answers (64 KiB and more) are lent to it with `vmsplice`
/// instead of copied into it: the client copies them once, straight from this
/// process's memory, and each lent buffer is kept alive until the client has read it.
///
/// # Errors
/// Transport errors, or a client that broke the IPC framing.
pub fn serve_stdio(server: impl Into<Server>) -> Result<()> {
    let server = server.into();
    server
        .inner
        .notify_serve_start(crate::server::TransportKind::Pipe)?;
    grow_pipe(io::stdin().as_fd());
    grow_pipe(io::stdout().as_fd());
    let stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    let mut info = ConnectionInfo::new(Peer::pipe());
    if let Some(host) = super::shm_host() {
        info = info.with_side_channels(host);
    }
    // Large answer bodies are lent to stdout when it is a pipe (`wire::Splice`).
    let lender = lend::lender(stdout.as_fd());
    serve_connection_lending(
        &server,
        info,
        Direct::file(stdin),
        Direct::file(stdout),
        lender,
    )
}

/// Pipe buffer size [`serve_stdio`] asks for: 1 MiB, Linux's default
/// `/proc/sys/fs/pipe-max-size` for unprivileged processes.
pub const STDIO_PIPE_BUFFER: usize = 1 << 20;

/// Grows a pipe's buffer; ignores failures (not a pipe, over the limit, not Linux).
fn grow_pipe(fd: BorrowedFd<'_>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = rustix::pipe::fcntl_setpipe_size(fd, STDIO_PIPE_BUFFER);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = fd;
}

//! Lending large body parts to the kernel instead of copying them into it: into a pipe
//! (`vmsplice`) and, through a private pipe, into a Unix stream socket (`vmsplice` then
//! `splice`).
//!
//! See [`crate::wire::Splice`] for why: the reader copies the bytes straight from the
//! writer's pages, and the writer's copy into the kernel disappears. What is lent must
//! stay unchanged until the reader has copied it, so each lender keeps a reference to
//! every lent buffer until it knows the reader is past it: [`pipe`] by stream position
//! (what was sent minus what the pipe still holds), [`socket`] all at once (when nothing
//! the connection sent is still queued for the peer).
//!
//! Which descriptors get a lender: the write end of a pipe, and a connected Unix stream
//! socket in a process that ignores `SIGPIPE` (a `splice` into a socket whose peer hung
//! up raises it, and unlike `send` it takes no flag to say not to; Rust binaries and
//! Python ignore it). TCP sockets write as before: their lent pages would stay pinned
//! until the peer's acknowledgement, and the measured gap was on Unix sockets.

mod pipe;
mod socket;

use std::io::Write as _;
use std::os::fd::BorrowedFd;

use super::direct::Direct;

use crate::wire::Splice;

pub use socket::LENDING_SOCKET_BUFFER;

/// Bytes lent to the kernel by this process (see [`lent_bytes`]).
pub(crate) static LENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes this process has lent to the kernel instead of copying them: large body parts
/// sent into a pipe or a Unix stream socket by reference (Linux), both ends' sending
/// counted, since the process started. For checking that a deployment takes the
/// zero-copy path; a count, not a measure of speed.
pub fn lent_bytes() -> u64 {
    LENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts `n` lent bytes.
fn count_lent(n: usize) {
    LENT.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// The lender for a connection writing to `fd` (see the module docs), or `None` where
/// the connection writes as usual.
pub(crate) fn lender(fd: BorrowedFd<'_>) -> Option<Box<dyn Splice>> {
    if let Some(pipe) = pipe::PipeLender::for_fd(fd) {
        return Some(Box::new(pipe));
    }
    socket::SocketLender::for_fd(fd).map(|s| Box::new(s) as Box<dyn Splice>)
}

/// One `vmsplice` of (a prefix of) `bytes` into the pipe `fd`: `Some(n)` for the `n`
/// bytes lent (at least one), `None` when the kernel refuses to lend (e.g. a seccomp
/// filter, or not Linux), so the caller writes them instead.
///
/// # Safety
/// `fd` is the write end of a pipe (on a read end the kernel would write into `bytes`),
/// and the caller keeps `bytes` unchanged until the pipe's reader has copied them.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
unsafe fn vmsplice_once(fd: BorrowedFd<'_>, bytes: &[u8]) -> std::io::Result<Option<usize>> {
    use rustix::io::Errno;
    use rustix::pipe::{IoSliceRaw, SpliceFlags, vmsplice};
    loop {
        let slice = [IoSliceRaw::from_slice(bytes)];
        // SAFETY: the caller's contract (a write end; `bytes` held unchanged).
        match unsafe { vmsplice(fd, &slice, SpliceFlags::empty()) } {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(Some(n)),
            Err(Errno::INTR) => {}
            Err(Errno::NOSYS | Errno::PERM | Errno::ACCESS | Errno::INVAL | Errno::OPNOTSUPP) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[allow(unsafe_code)]
unsafe fn vmsplice_once(_fd: BorrowedFd<'_>, _bytes: &[u8]) -> std::io::Result<Option<usize>> {
    Ok(None)
}

/// How far a lender got with one part (see [`send_part`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lent {
    /// All of it lent.
    Whole,
    /// The kernel refused partway: the rest is to be written, and later parts too.
    Refused,
}

/// Sends `part` whole to `fd`: through `lend` (which lends what it can of the bytes it
/// is given, advancing them) unless `refused`, the rest written. Sets `refused` when the
/// kernel refuses; returns whether any of the part was lent (it must then be held).
fn send_part(
    fd: BorrowedFd<'_>,
    socket: bool,
    part: &arrow_buffer::Buffer,
    refused: &mut bool,
    lend: impl FnOnce(&mut &[u8]) -> std::io::Result<Lent>,
) -> std::io::Result<bool> {
    let mut rest = part.as_slice();
    if !*refused && lend(&mut rest)? == Lent::Refused {
        tracing::debug!(socket, "the kernel refuses to lend here; writing instead");
        *refused = true;
    }
    let lent = part.len() - rest.len();
    let mut out = if socket {
        Direct::socket(fd)
    } else {
        Direct::file(fd)
    };
    out.write_all(rest)?;
    if lent > 0 {
        count_lent(lent);
    }
    Ok(lent > 0)
}

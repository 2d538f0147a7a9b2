//! Reads and writes that go straight to the kernel.
//!
//! std's `File` and socket I/O call libc's `read`, `write`, `send` and `writev`, and
//! those are POSIX cancellation points: each one brackets its system call with
//! `pthread_enable_asynccancel`/`pthread_disable_asynccancel`, about 1 % of a local
//! round trip (`perf`, pipe and unix noop, same core). Nothing here cancels threads, so
//! [`Direct`] issues the system calls through rustix instead: one `read`, `write`,
//! `writev` or `sendmsg` per call, as before, without the bracket.
//!
//! Socket writes pass `MSG_NOSIGNAL` (Linux): a peer that hung up is an `EPIPE` error, never a
//! `SIGPIPE`, whatever the host process does with that signal (std's own vectored
//! socket writes do not).

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::net::{SendAncillaryBuffer, SendFlags};

/// `MSG_NOSIGNAL` where the platform has it (elsewhere the process's `SIGPIPE`
/// disposition applies, as it does to std's socket writes there).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NO_SIGNAL: SendFlags = SendFlags::NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NO_SIGNAL: SendFlags = SendFlags::empty();

/// A descriptor read and written with direct system calls (see the module docs).
#[derive(Debug)]
pub(crate) struct Direct<T> {
    inner: T,
    socket: bool,
}

impl<T: AsFd> Direct<T> {
    /// A pipe or a file.
    pub(crate) fn file(inner: T) -> Self {
        Direct {
            inner,
            socket: false,
        }
    }

    /// A connected stream socket.
    pub(crate) fn socket(inner: T) -> Self {
        Direct {
            inner,
            socket: true,
        }
    }
}

impl<T: AsFd> AsFd for Direct<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<T: AsFd> Read for Direct<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.inner, buf)?)
    }
}

impl<T: AsFd> Write for Direct<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(if self.socket {
            rustix::net::send(&self.inner, buf, NO_SIGNAL)?
        } else {
            rustix::io::write(&self.inner, buf)?
        })
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(if self.socket {
            let mut control = SendAncillaryBuffer::default();
            rustix::net::sendmsg(&self.inner, bufs, &mut control, NO_SIGNAL)?
        } else {
            rustix::io::writev(&self.inner, bufs)?
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn bytes_cross_a_socket_and_a_pipe_whole_and_in_order() {
        let (a, b) = UnixStream::pair().expect("a socket pair");
        let (mut w, mut r) = (Direct::socket(a), Direct::socket(b));
        let parts = [
            IoSlice::new(b"head"),
            IoSlice::new(b""),
            IoSlice::new(b"body"),
        ];
        assert_eq!(w.write_vectored(&parts).expect("writes"), 8);
        w.write_all(b"!").expect("writes");
        let mut got = [0u8; 9];
        r.read_exact(&mut got).expect("reads");
        assert_eq!(&got, b"headbody!");

        let (pr, pw) = rustix::pipe::pipe().expect("a pipe");
        let (mut r, mut w) = (Direct::file(pr), Direct::file(pw));
        assert_eq!(w.write_vectored(&parts).expect("writes"), 8);
        let mut got = [0u8; 8];
        r.read_exact(&mut got).expect("reads");
        assert_eq!(&got, b"headbody");
        drop(w);
        assert_eq!(r.read(&mut got).expect("reads EOF"), 0);
    }

    /// (A Rust test binary ignores `SIGPIPE`, so this checks the error, not the flag.)
    #[test]
    fn a_write_to_a_closed_peer_is_an_error() {
        let (a, b) = UnixStream::pair().expect("a socket pair");
        drop(b);
        let mut w = Direct::socket(a);
        let err = w.write_all(b"x").expect_err("the peer is gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = w
            .write_vectored(&[IoSlice::new(b"x")])
            .expect_err("the peer is gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}

//! What every descriptor-backed client link shares (pipes and sockets): a reader that
//! honours the call's [`Deadline`] with `poll(2)`, and a control that shuts a socket down
//! to unblock a call from another thread.
//!
//! One mechanism gives one meaning: the deadline bounds the whole call, across however
//! many reads it needs, where `SO_RCVTIMEO` would bound each read separately (and costs a
//! `setsockopt` per read to keep in step with a shrinking budget). Without an armed
//! deadline no `poll` is made: the call path stays at one `read`.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::client::{Deadline, LinkControl};

/// A reader over a file descriptor that waits with `poll` while a deadline is armed.
pub(crate) struct DeadlineReader<T> {
    inner: T,
    deadline: Arc<Deadline>,
}

impl<T> DeadlineReader<T> {
    pub(crate) fn new(inner: T, deadline: &Arc<Deadline>) -> Self {
        DeadlineReader {
            inner,
            deadline: Arc::clone(deadline),
        }
    }
}

impl<T: Read + AsFd> Read for DeadlineReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(mut remaining) = self.deadline.remaining() {
            loop {
                if remaining.is_zero() {
                    return Err(self.deadline.expire());
                }
                let timeout = Timespec::try_from(remaining).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                });
                let mut fds = [PollFd::new(&self.inner, PollFlags::IN)];
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) => {}
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
                remaining = self.deadline.remaining().unwrap_or_default();
            }
        }
        self.inner.read(buf)
    }
}

/// A connected socket the client can shut down from another thread.
pub(crate) trait ShutdownSocket: Send + Sync + 'static {
    fn shutdown_both(&self);
}

impl ShutdownSocket for UnixStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl ShutdownSocket for TcpStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Interrupts a socket link by shutting the socket down in both directions: a blocked
/// read sees EOF, a blocked write fails.
pub(crate) struct SocketControl<S>(pub(crate) S);

impl<S: ShutdownSocket> LinkControl for SocketControl<S> {
    fn interrupt(&self) {
        self.0.shutdown_both();
    }
}

//! What every descriptor-backed client link shares (pipes and sockets): a reader that
//! honours the call's [`Deadline`] with `poll(2)`, and a control that shuts a socket down
//! to unblock a call from another thread.
//!
//! One mechanism gives one meaning: the deadline bounds the whole call, across however
//! many reads it needs, where `SO_RCVTIMEO` would bound each read separately (and costs a
//! `setsockopt` per read to keep in step with a shrinking budget). Without an armed
//! deadline no `poll` is made: the call path stays at one `read`. `SO_RCVTIMEO` does
//! serve the connection's idle bound (set once at connect), which is per read by nature;
//! when it fires the call reports a timeout like the deadline's.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::direct::Direct;
use super::listener::SocketStream;
use crate::Result;
use crate::client::{Deadline, Link, LinkControl};

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
        // Straight to the kernel, as `Direct` reads (see there).
        match rustix::io::read(&self.inner, buf).map_err(io::Error::from) {
            // The socket's idle timeout (`SO_RCVTIMEO`) fired: the call timed out.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(self.deadline.expire())
            }
            other => other,
        }
    }
}

/// Interrupts a socket link by shutting the socket down in both directions: a blocked
/// read sees EOF, a blocked write fails.
struct SocketControl<S>(S);

impl<S: SocketStream + Sync> LinkControl for SocketControl<S> {
    fn interrupt(&self) {
        self.0.shutdown_all();
    }
}

/// A client link over a connected socket: reads honour the deadline, a cancel shuts the
/// socket down.
pub(crate) fn socket_link<S: SocketStream + Sync>(
    stream: S,
    deadline: &Arc<Deadline>,
) -> Result<Link> {
    let control = Arc::new(SocketControl(stream.duplicate()?));
    let writer = Direct::socket(stream.duplicate()?);
    let lender = super::lend::lender(stream.as_fd());
    let reader = DeadlineReader::new(stream, deadline);
    Ok(Link::from_parts(Box::new(reader), Box::new(writer), control).lending(lender))
}

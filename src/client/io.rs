//! The byte-stream plumbing under [`Client`](super::Client): a reader that honours the
//! current call's deadline, and the shared state a [`CancelHandle`](super::CancelHandle)
//! uses to interrupt a call from another thread.
//!
//! Deadlines are enforced with `poll(2)` on the connection's file descriptor before a read
//! that would otherwise block, for pipes and sockets alike. One mechanism gives one
//! meaning: the deadline bounds the whole call, across however many reads it needs, where
//! `SO_RCVTIMEO` would bound each read separately (and costs the same `setsockopt` per
//! read to keep in step with a shrinking budget). `poll` comes from `rustix`, whose safe
//! wrappers keep the crate free of `unsafe`; it is already in the dependency graph.
//! Without a deadline no `poll` is made: the call path stays at one `read`.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// The deadline of the call in flight, shared between the client and its reader.
#[derive(Debug)]
pub(crate) struct DeadlineCell {
    base: Instant,
    /// Nanoseconds after `base`, plus one; 0 means "no deadline".
    at: AtomicU64,
    /// Set by the reader when the deadline fired.
    expired: AtomicBool,
}

impl DeadlineCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(DeadlineCell {
            base: Instant::now(),
            at: AtomicU64::new(0),
            expired: AtomicBool::new(false),
        })
    }

    /// Starts a call: clears the expired flag and arms the deadline `timeout` from now
    /// (none with `None`).
    pub(crate) fn arm(&self, timeout: Option<Duration>) {
        self.expired.store(false, Ordering::Relaxed);
        let at = timeout.map_or(0, |t| {
            let nanos = (self.base.elapsed() + t).as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
        });
        self.at.store(at, Ordering::Relaxed);
    }

    /// Ends a call: no deadline, but [`DeadlineCell::expired`] still reports whether it
    /// fired.
    pub(crate) fn disarm(&self) {
        self.at.store(0, Ordering::Relaxed);
    }

    pub(crate) fn expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    fn remaining(&self) -> Option<Duration> {
        match self.at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_nanos(at - 1).saturating_sub(self.base.elapsed())),
        }
    }
}

/// A reader over a file descriptor that waits with `poll` while a deadline is armed.
pub(crate) struct DeadlineReader<T> {
    inner: T,
    deadline: Arc<DeadlineCell>,
}

impl<T> DeadlineReader<T> {
    pub(crate) fn new(inner: T, deadline: Arc<DeadlineCell>) -> Self {
        DeadlineReader { inner, deadline }
    }
}

impl<T: Read + AsFd> Read for DeadlineReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(mut remaining) = self.deadline.remaining() {
            loop {
                if remaining.is_zero() {
                    self.deadline.expired.store(true, Ordering::Relaxed);
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "call deadline exceeded",
                    ));
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

/// What a cancel does to the transport to unblock a call stuck in a read or write.
#[derive(Debug)]
pub(crate) enum Interrupter {
    /// Kill the worker process (its pipes then read as closed).
    Kill(Arc<Mutex<Child>>),
    /// Shut a Unix socket down in both directions.
    Unix(UnixStream),
    /// Shut a TCP socket down in both directions.
    Tcp(TcpStream),
}

impl Interrupter {
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Interrupter::Kill(child) => Interrupter::Kill(Arc::clone(child)),
            Interrupter::Unix(s) => Interrupter::Unix(s.try_clone()?),
            Interrupter::Tcp(s) => Interrupter::Tcp(s.try_clone()?),
        })
    }

    pub(crate) fn interrupt(&self) {
        match self {
            Interrupter::Kill(child) => {
                if let Ok(mut child) = child.lock() {
                    // `Child::kill` never signals a pid that was already reaped.
                    let _ = child.kill();
                }
            }
            Interrupter::Unix(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Interrupter::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

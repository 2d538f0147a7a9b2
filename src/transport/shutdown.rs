//! A shutdown handle the accept loop can sleep on.
//!
//! The accept loop blocks in `poll(2)` on the listening socket and on the read end of a
//! wake-up socket pair. Anything that changes what the loop should do — a stop request
//! (from code or from SIGTERM/SIGINT), or a connection ending — writes one byte to the
//! pair, so the loop never spins on a timer. Signals go through `signal-hook`, whose
//! handlers only set a flag and write a byte (both async-signal-safe).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Stops a running socket server; cheap to clone and share across threads.
///
/// [`Shutdown::trigger`] (or a registered signal) makes the accept loop stop accepting,
/// end idle connections, give in-flight calls a bounded grace period, and return.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: Arc<AtomicBool>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

impl Shutdown {
    /// A handle that only stops when [`trigger`](Self::trigger) is called.
    ///
    /// # Errors
    /// When the wake-up socket pair cannot be created.
    pub fn new() -> io::Result<Self> {
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(Inner {
                requested: Arc::new(AtomicBool::new(false)),
                wake_rx,
                wake_tx,
            }),
        })
    }

    /// A handle that also stops on SIGTERM and SIGINT.
    ///
    /// # Errors
    /// When the socket pair cannot be created or a handler cannot be registered.
    pub fn on_signals() -> io::Result<Self> {
        let shutdown = Self::new()?;
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, shutdown.inner.requested.clone())?;
            signal_hook::low_level::pipe::register(signal, shutdown.inner.wake_tx.try_clone()?)?;
        }
        Ok(shutdown)
    }

    /// Asks the server to stop.
    pub fn trigger(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a stop was requested.
    pub fn is_triggered(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Wakes the accept loop so it re-reads its state. A full pair means a wake-up is
    /// already pending, so a failed write is harmless.
    pub(crate) fn wake(&self) {
        let _ = (&self.inner.wake_tx).write(&[1]);
    }

    /// Blocks until a stop is requested (for servers that do not run the accept loop,
    /// such as HTTP's, which waits for this on a thread of its own).
    pub fn wait(&self) {
        while !self.is_triggered() {
            let mut fds = [rustix::event::PollFd::new(
                &self.inner.wake_rx,
                rustix::event::PollFlags::IN,
            )];
            // An interrupted or failed poll just re-checks the flag.
            let _ = rustix::event::poll(&mut fds, None);
            self.drain();
        }
    }

    /// Empties the wake-up pair after the loop woke.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.inner.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// The descriptor that becomes readable on every wake-up.
    pub(crate) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake_rx.as_fd()
    }
}

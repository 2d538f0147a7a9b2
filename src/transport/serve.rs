//! The accept loop shared by every socket transport.
//!
//! One thread accepts; each connection is served on its own thread by the same
//! connection loop as stdio (blocking reads and writes, no channel hops on the call
//! path). Sequential mode serves one connection at a time and leaves later clients in the
//! kernel's backlog, as the reference does. Threaded mode may cap concurrent
//! connections; a client over the cap is answered with a typed `RESOURCE_EXHAUSTED`
//! error rather than queued forever.
//!
//! Shutdown: stop accepting, end the read side of every connection (an idle connection
//! sees EOF at once; a call in flight finishes writing its current answer and then sees
//! EOF where it would read the next request or tick), wait up to the grace period, and
//! return — dropping the listener removes a Unix socket file.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use super::direct::Direct;
use super::listener::{Listener, SocketStream};
use super::shutdown::Shutdown;
use crate::server::{
    AuthContext, ConnectionInfo, Peer, ReadPhases, Server, refuse_connection,
    serve_connection_lending,
};
use crate::{Error, Result};

/// How many refusals may be answered at once; past this, extra clients are dropped
/// unanswered so a flood cannot spawn unbounded threads.
const MAX_REFUSALS_IN_FLIGHT: usize = 16;
/// How long a refused client has to send its request before we hang up.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The reference's startup grace before an idle timeout can fire.
const MIN_STARTUP_GRACE: Duration = Duration::from_secs(60);

/// Default [`ServeOptions::read_timeout`]: how long a message may take to arrive once
/// its first byte has.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServeOptions::connection_idle_timeout`]: how long a connection may wait for
/// its next request (or a stream for its next input).
pub const DEFAULT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Settings of a socket server. The default serves one connection at a time, ends a
/// connection idle for [`DEFAULT_CONNECTION_IDLE_TIMEOUT`] or stalled inside a message
/// for [`DEFAULT_READ_TIMEOUT`], and gives calls in flight a 10 s shutdown grace.
#[derive(Clone)]
pub struct ServeOptions {
    threaded: bool,
    max_connections: Option<usize>,
    read_timeout: Option<Duration>,
    connection_idle_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    buffer_size: Option<usize>,
    shutdown_grace: Duration,
    authenticate: Option<Arc<ConnectionAuthenticator>>,
}

/// Decides who a byte-stream connection is from, once, when it is accepted.
type ConnectionAuthenticator = dyn Fn(&Peer) -> AuthContext + Send + Sync;

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("threaded", &self.threaded)
            .field("max_connections", &self.max_connections)
            .field("read_timeout", &self.read_timeout)
            .field("connection_idle_timeout", &self.connection_idle_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("buffer_size", &self.buffer_size)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("authenticate", &self.authenticate.is_some())
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            threaded: false,
            max_connections: None,
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            connection_idle_timeout: Some(DEFAULT_CONNECTION_IDLE_TIMEOUT),
            idle_timeout: None,
            buffer_size: None,
            shutdown_grace: Duration::from_secs(10),
            authenticate: None,
        }
    }
}

impl ServeOptions {
    /// Authenticates each accepted connection from what the transport knows of its peer
    /// (the Unix socket's [`PeerCredentials`](crate::server::PeerCredentials), a TCP
    /// address), e.g. mapping a uid to a principal. The answer is every call's
    /// [`CallContext::auth`](crate::server::CallContext::auth) on that connection;
    /// without one, connections are anonymous.
    #[must_use]
    pub fn authenticate_connections(
        mut self,
        authenticate: impl Fn(&Peer) -> AuthContext + Send + Sync + 'static,
    ) -> Self {
        self.authenticate = Some(Arc::new(authenticate));
        self
    }

    /// Serve each connection on its own thread (otherwise one at a time).
    #[must_use]
    pub fn threaded(mut self, threaded: bool) -> Self {
        self.threaded = threaded;
        self
    }

    /// Cap on concurrent connections (threaded mode); clients over it get
    /// `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = Some(limit.max(1));
        self
    }

    /// Ends a connection whose peer stalls this long in the middle of a message
    /// (default [`DEFAULT_READ_TIMEOUT`]; `None`: never).
    #[must_use]
    pub fn read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.read_timeout = timeout.into();
        self
    }

    /// Ends a connection that sends nothing for this long between messages: between
    /// calls, or between a stream's inputs (default [`DEFAULT_CONNECTION_IDLE_TIMEOUT`];
    /// `None`: never). Its slot (see [`ServeOptions::max_connections`]) is then free.
    #[must_use]
    pub fn connection_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connection_idle_timeout = timeout.into();
        self
    }

    /// Stops the server after this long with no connection (the first client gets at
    /// least 60 s to arrive, as in the reference).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Kernel send and receive buffer size of each connection (`SO_SNDBUF`/`SO_RCVBUF`).
    #[must_use]
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = Some(bytes);
        self
    }

    /// How long shutdown waits for calls in flight before returning anyway.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}

/// Accepts and serves connections on `listener` until `shutdown` fires (or the idle
/// timeout passes), then drains connections within the grace period.
///
/// # Errors
/// An accept or poll failure other than the transient ones (interrupts, aborted
/// handshakes, descriptor exhaustion, which are retried).
pub fn serve_listener<L: Listener>(
    server: &Server,
    listener: &L,
    options: &ServeOptions,
    shutdown: &Shutdown,
) -> Result<()> {
    let tracker = Arc::new(Tracker::default());
    let result = accept_loop(server, listener, options, shutdown, &tracker);
    tracker.end_reads();
    tracker.wait_idle(options.shutdown_grace);
    result
}

fn accept_loop<L: Listener>(
    server: &Server,
    listener: &L,
    options: &ServeOptions,
    shutdown: &Shutdown,
    tracker: &Arc<Tracker>,
) -> Result<()> {
    let mut idle_since = Instant::now();
    let mut idle_allowance = options.idle_timeout.map(|t| t.max(MIN_STARTUP_GRACE));
    loop {
        if shutdown.is_triggered() {
            return Ok(());
        }
        let active = tracker.active();
        if active > 0 {
            idle_since = Instant::now();
        }
        let timeout = match idle_allowance {
            Some(allowed) if active == 0 => match allowed.checked_sub(idle_since.elapsed()) {
                Some(left) => Some(left),
                None => return Ok(()),
            },
            _ => None,
        };
        let can_accept = options.threaded || active == 0;
        if wait(listener, shutdown, can_accept, timeout)? && can_accept {
            accept_one(server, listener, options, shutdown, tracker)?;
            if let Some(t) = options.idle_timeout {
                idle_allowance = Some(t);
            }
        }
    }
}

/// Sleeps until a client waits (when `can_accept`), a wake-up arrives, or `timeout`
/// passes. Returns whether the listener is readable.
fn wait<L: Listener>(
    listener: &L,
    shutdown: &Shutdown,
    can_accept: bool,
    timeout: Option<Duration>,
) -> Result<bool> {
    let timespec = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    let (wake_fd, listen_fd) = (shutdown.wake_fd(), listener.as_fd());
    let mut fds = [
        PollFd::new(&wake_fd, PollFlags::IN),
        PollFd::new(&listen_fd, PollFlags::IN),
    ];
    let n = if can_accept { 2 } else { 1 };
    match poll(&mut fds[..n], timespec.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(Error::Io(e.into())),
    }
    if !fds[0].revents().is_empty() {
        shutdown.drain();
    }
    Ok(n == 2 && !fds[1].revents().is_empty())
}

fn accept_one<L: Listener>(
    server: &Server,
    listener: &L,
    options: &ServeOptions,
    shutdown: &Shutdown,
    tracker: &Arc<Tracker>,
) -> Result<()> {
    let (stream, mut peer) = match listener.accept() {
        Ok(accepted) => accepted,
        Err(e) => return transient_accept_error(e),
    };
    // Before the first connection is served (and again after a failure): a failed
    // hook stops the server rather than serving half-initialised.
    server.inner.notify_serve_start(peer.kind)?;
    if let Some(authenticate) = &options.authenticate {
        peer.auth = authenticate(&peer);
    }
    let mut info = ConnectionInfo::new(peer);
    if let Some(host) = listener.side_channels() {
        info = info.with_side_channels(host);
    }
    if let Some(limit) = options.max_connections
        && options.threaded
        && tracker.active() >= limit
    {
        refuse(server, stream, limit, tracker);
        return Ok(());
    }
    configure(&stream, options)?;
    let info = with_phases(&stream, options, info)?;
    let id = tracker.register(stream.duplicate()?);
    let server = server.clone();
    let shutdown = shutdown.clone();
    let tracker_in_thread = tracker.clone();
    let spawned = thread::Builder::new()
        .name("vgi-rpc-conn".to_owned())
        .spawn(move || {
            serve_stream(&server, stream, info);
            tracker_in_thread.unregister(id);
            shutdown.wake();
        });
    if spawned.is_err() {
        // Out of threads: the client is dropped (its stream went with the closure).
        tracker.unregister(id);
    }
    Ok(())
}

/// Accept failures that end nothing: another waiter took the client, a signal, a client
/// that gave up mid-handshake, or running out of descriptors or memory (back off, since
/// retrying at once would spin). Anything else is returned.
fn transient_accept_error(e: io::Error) -> Result<()> {
    use rustix::io::Errno;
    let exhausted = [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()));
    match e.kind() {
        io::ErrorKind::WouldBlock
        | io::ErrorKind::Interrupted
        | io::ErrorKind::ConnectionAborted => Ok(()),
        _ if exhausted => {
            thread::sleep(Duration::from_millis(100));
            Ok(())
        }
        _ => Err(Error::Io(e)),
    }
}

/// Times a connection's reads by phase: the idle timeout while it waits for a message,
/// the read timeout while one arrives.
///
/// Switching the socket's receive timeout at each phase costs two `setsockopt` calls per
/// request, as much as a third of a local call's system time. So when the idle timeout
/// is the longer one (the default: 300 s against 30 s), the socket keeps the read
/// timeout throughout and an idle wait is that timeout repeated
/// ([`ReadPhases::keep_waiting`]), its last stretch shortened to end on time; only that
/// rare shortening has to be undone when a message arrives. Otherwise the phases switch.
struct SocketPhases<S> {
    stream: S,
    idle: Option<Duration>,
    busy: Option<Duration>,
    /// One timeout (`busy`) for both phases.
    fixed: bool,
    /// The socket's timeout was shortened for an idle wait's last stretch.
    shortened: AtomicBool,
}

impl<S: SocketStream> SocketPhases<S> {
    fn new(stream: S, idle: Option<Duration>, busy: Option<Duration>) -> Self {
        let fixed = busy.is_some_and(|busy| idle.is_none_or(|idle| idle >= busy))
            && stream.set_read_timeout(busy).is_ok();
        SocketPhases {
            stream,
            idle,
            busy,
            fixed,
            shortened: AtomicBool::new(false),
        }
    }
}

impl<S: SocketStream> ReadPhases for SocketPhases<S> {
    fn idle(&self) {
        if !self.fixed {
            // A socket that refuses a timeout keeps its previous one; reads still end.
            let _ = self.stream.set_read_timeout(self.idle);
        }
    }

    fn busy(&self) {
        if !self.fixed || self.shortened.swap(false, Ordering::Relaxed) {
            let _ = self.stream.set_read_timeout(self.busy);
        }
    }

    fn keep_waiting(&self, timeouts: u32) -> bool {
        let (true, Some(busy)) = (self.fixed, self.busy) else {
            return false;
        };
        let Some(idle) = self.idle else {
            // No idle timeout: wait one read timeout after another.
            return true;
        };
        // The stretches so far were `busy` long, except a shortened last one, after
        // which nothing is left.
        if self.shortened.load(Ordering::Relaxed) {
            return false;
        }
        let left = idle.saturating_sub(busy.saturating_mul(timeouts));
        if left.is_zero() {
            return false;
        }
        if left < busy {
            self.shortened.store(true, Ordering::Relaxed);
            return self.stream.set_read_timeout(Some(left)).is_ok();
        }
        true
    }
}

/// Attaches the read timing of `options` to a connection.
fn with_phases<S: SocketStream>(
    stream: &S,
    options: &ServeOptions,
    info: ConnectionInfo,
) -> Result<ConnectionInfo> {
    if options.read_timeout.is_none() && options.connection_idle_timeout.is_none() {
        return Ok(info);
    }
    let phases = SocketPhases::new(
        stream.duplicate()?,
        options.connection_idle_timeout,
        options.read_timeout,
    );
    Ok(info.with_read_phases(Arc::new(phases)))
}

fn configure<S: SocketStream>(stream: &S, options: &ServeOptions) -> Result<()> {
    if let Some(size) = options.buffer_size {
        rustix::net::sockopt::set_socket_send_buffer_size(stream, size).map_err(io::Error::from)?;
        rustix::net::sockopt::set_socket_recv_buffer_size(stream, size).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Serves one connection to its end. Errors end only this connection, and the peer has
/// already been sent what could be said, so they are not reported further.
fn serve_stream<S: SocketStream>(server: &Server, stream: S, info: ConnectionInfo) {
    let Ok(reader) = stream.duplicate() else {
        return;
    };
    let lender = super::lend::lender(stream.as_fd());
    let _ = serve_connection_lending(
        server,
        info,
        Direct::socket(reader),
        Direct::socket(stream),
        lender,
    );
}

fn refuse<S: SocketStream>(server: &Server, stream: S, limit: usize, tracker: &Arc<Tracker>) {
    if !tracker.begin_refusal() {
        return; // dropping the stream closes it
    }
    let server = server.clone();
    let tracker_in_thread = tracker.clone();
    let spawned = thread::Builder::new()
        .name("vgi-rpc-refuse".to_owned())
        .spawn(move || {
            let error = crate::server::connection_limit_error(limit);
            if stream.set_read_timeout(Some(REFUSAL_READ_TIMEOUT)).is_ok()
                && let Ok(reader) = stream.duplicate()
            {
                let _ = refuse_connection(&server, reader, stream, &error);
            }
            tracker_in_thread.end_refusal();
        });
    if spawned.is_err() {
        tracker.end_refusal();
    }
}

/// Live connections: a handle on each (to end its reads at shutdown) and a condition
/// variable signalled as they finish.
#[derive(Default)]
struct Tracker {
    state: Mutex<TrackerState>,
    finished: Condvar,
}

#[derive(Default)]
struct TrackerState {
    next_id: u64,
    conns: HashMap<u64, Box<dyn SocketHandle>>,
    refusals: usize,
}

/// The one thing shutdown needs from a live connection.
trait SocketHandle: Send {
    fn end_reads(&self);
}

impl<S: SocketStream> SocketHandle for S {
    fn end_reads(&self) {
        self.shutdown_read();
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        // A panicking connection thread must not take the whole server down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn active(&self) -> usize {
        self.lock().conns.len()
    }

    fn register<S: SocketStream>(&self, handle: S) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.conns.insert(id, Box::new(handle));
        id
    }

    fn unregister(&self, id: u64) {
        self.lock().conns.remove(&id);
        self.finished.notify_all();
    }

    fn begin_refusal(&self) -> bool {
        let mut state = self.lock();
        if state.refusals >= MAX_REFUSALS_IN_FLIGHT {
            return false;
        }
        state.refusals += 1;
        true
    }

    fn end_refusal(&self) {
        self.lock().refusals -= 1;
    }

    fn end_reads(&self) {
        for conn in self.lock().conns.values() {
            conn.end_reads();
        }
    }

    fn wait_idle(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut state = self.lock();
        while !state.conns.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            state = match self.finished.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

//! The seam between the client engine and the transports.
//!
//! The call engine needs three things from a connection: a byte stream to read answers
//! from and write requests to, a way for another thread to unblock it (cancel), and a way
//! to bound a call in time (deadline). A [`Link`] bundles them; a [`Connect`] opens one
//! (again, after a failed call dropped the last). `vgi_rpc::transport` implements both for
//! every transport it knows; any other byte stream can be wrapped with [`Link::new`] and
//! handed to [`Client::from_link`](super::Client::from_link).
//!
//! Deadlines do not assume a file descriptor: the engine arms one shared [`Deadline`] per
//! call and the link's reader honours it however its transport can (`poll(2)` on a socket
//! or pipe, a timed wait on shared memory, a request timeout over HTTP). A reader that
//! cannot wait with a timeout still checks the deadline before each read.
//!
//! Request/response transports (HTTP) have no byte stream: each call, stream start and
//! stream turn is one request to a route, answered by one body. Such a link carries a
//! [`RoundTrip`] instead, and the engine encodes requests and decodes answers exactly as
//! on a byte stream; only where the bytes go differs (see [`Route`]).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Result;
use crate::wire::{SideChannel, Splice};

/// The reading half of a link.
pub type BoxRead = Box<dyn Read + Send>;
/// The writing half of a link.
pub type BoxWrite = Box<dyn Write + Send>;

/// The deadline of the call in flight, shared between the engine and the link's reader.
#[derive(Debug)]
pub struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`, plus one; 0 means "no deadline".
    at: AtomicU64,
    /// Set by whoever noticed the deadline pass.
    expired: AtomicBool,
}

impl Deadline {
    /// A deadline that is not armed.
    pub fn new() -> Arc<Self> {
        Arc::new(Deadline {
            base: Instant::now(),
            at: AtomicU64::new(0),
            expired: AtomicBool::new(false),
        })
    }

    /// Time left before the deadline; `None` when no deadline is armed.
    pub fn remaining(&self) -> Option<Duration> {
        match self.at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_nanos(at - 1).saturating_sub(self.base.elapsed())),
        }
    }

    /// The error a reader returns once [`Deadline::remaining`] reached zero; also records
    /// that the deadline fired, so the engine reports a timeout rather than an I/O error.
    pub fn expire(&self) -> io::Error {
        self.expired.store(true, Ordering::Relaxed);
        io::Error::new(io::ErrorKind::TimedOut, "call deadline exceeded")
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

    /// Ends a call: no deadline, but [`Deadline::expired`] still reports whether it fired.
    pub(crate) fn disarm(&self) {
        self.at.store(0, Ordering::Relaxed);
    }

    pub(crate) fn expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }
}

/// Out-of-band control over a link, callable from any thread.
pub trait LinkControl: Send + Sync {
    /// Unblocks a read or write in flight (a cancel): shut a socket down, kill a worker.
    fn interrupt(&self);

    /// Ends the link at once after a failed call (the default interrupts it).
    fn abort(&self) {
        self.interrupt();
    }

    /// What is known about why the link failed (a worker's exit status and the tail of
    /// its standard error), waiting up to `wait` for it to be known.
    fn failure_report(&self, wait: Duration) -> Option<String> {
        let _ = wait;
        None
    }

    /// The worker process behind the link, if the client started one.
    fn process_id(&self) -> Option<u32> {
        None
    }
}

/// A link whose I/O cannot be interrupted from outside.
struct NoControl;

impl LinkControl for NoControl {
    fn interrupt(&self) {}
}

/// What a request on a request/response transport is for: the engine names the call, the
/// transport maps it to its own addressing (HTTP: `POST {prefix}/{protocol}/{method}`,
/// `…/init`, `…/exchange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    /// The protocol the call addresses (the routing key).
    pub protocol: &'a str,
    /// The method name.
    pub method: &'a str,
    /// Which step of the call the request is.
    pub step: RouteStep,
}

/// The step of a call a [`Route`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteStep {
    /// A whole unary call.
    Unary,
    /// The start of a producer or exchange stream (answered by the header, if any, and
    /// the first turn's output with the stream's tokens).
    StreamInit,
    /// One later turn of a stream: a producer tick, an exchange input, or the cancel.
    StreamTurn,
}

/// A request/response transport: the seam through which the client engine calls over
/// HTTP. The engine builds every request body (one or more complete IPC streams), hands
/// it over with its [`Route`] and decodes the answer body (logs, EXCEPTION batches,
/// results, stream tokens) as it would off a byte stream.
///
/// Bodies are whole Arrow IPC streams, uncompressed: content coding, headers, status
/// codes and retries are the transport's business. A transport error is returned as the
/// engine's [`Error`](crate::Error) (`Timeout` via [`Deadline::expire`], `Connect`,
/// `Disconnected`, ...); an answer the server sent as an Arrow body, whatever its status,
/// is returned as the body for the engine to decode.
pub trait RoundTrip: Send {
    /// Sends `body` to `route` and returns the answer body, within `deadline`.
    ///
    /// # Errors
    /// Transport failures, and answers that are not Arrow IPC streams.
    fn round_trip(&mut self, route: Route<'_>, body: &[u8], deadline: &Deadline)
    -> Result<Vec<u8>>;

    /// The W3C trace context (`traceparent`, `tracestate`) of the call the following
    /// requests belong to, to send as headers beside them (the engine sets it, or clears
    /// it with an empty slice, before each call and stream). The default ignores it.
    fn set_trace_context(&mut self, headers: &[(&'static str, String)]) {
        let _ = headers;
    }
}

/// An open connection as the client engine sees it: a byte stream (or, for a
/// request/response transport, a [`RoundTrip`]), its control, and optionally a side
/// channel (shared memory) the transport opened beside it.
pub struct Link {
    pub(crate) reader: BoxRead,
    pub(crate) writer: BoxWrite,
    pub(crate) round_trip: Option<Box<dyn RoundTrip>>,
    pub(crate) control: Arc<dyn LinkControl>,
    /// The peer is a process the caller controls (an `exec:` worker): a cheaper
    /// [`Validation`](crate::wire::Validation) level applies.
    pub(crate) trusted: bool,
    pub(crate) side_channel: Option<Arc<dyn SideChannel>>,
    /// Where large request bodies are lent instead of written (a pipe's `vmsplice`;
    /// `writer` is then unbuffered).
    pub(crate) lender: Option<Box<dyn Splice>>,
}

impl Link {
    /// A link over any reader/writer pair. Its reader checks the deadline before each read
    /// but cannot interrupt a read already blocked; attach a [`LinkControl`] with
    /// [`Link::with_control`] to make cancel and deadlines preemptive.
    pub fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Self {
        Link {
            reader: Box::new(reader),
            writer: Box::new(writer),
            round_trip: None,
            control: Arc::new(NoControl),
            trusted: false,
            side_channel: None,
            lender: None,
        }
    }

    /// A link over halves that already honour the deadline they were built with.
    pub fn from_parts(reader: BoxRead, writer: BoxWrite, control: Arc<dyn LinkControl>) -> Self {
        Link {
            reader,
            writer,
            round_trip: None,
            control,
            trusted: false,
            side_channel: None,
            lender: None,
        }
    }

    /// A link over a request/response transport: every call and stream turn is one
    /// [`RoundTrip::round_trip`]. It has no byte stream; `control` interrupts a request
    /// in flight (a cancel).
    pub fn request_response(round_trip: Box<dyn RoundTrip>, control: Arc<dyn LinkControl>) -> Self {
        Link {
            reader: Box::new(io::empty()),
            writer: Box::new(io::sink()),
            round_trip: Some(round_trip),
            control,
            trusted: false,
            side_channel: None,
            lender: None,
        }
    }

    /// Marks the peer as a process the caller controls (a worker it spawned), so a
    /// validation level below full, set through `unsafe`, applies to it.
    pub(crate) fn trusted(mut self) -> Self {
        self.trusted = true;
        self
    }

    /// Lends large request bodies through `lender` (see [`Splice`]).
    pub(crate) fn lending(mut self, lender: Option<Box<dyn Splice>>) -> Self {
        self.lender = lender;
        self
    }

    /// Replaces the link's control.
    #[must_use]
    pub fn with_control(mut self, control: Arc<dyn LinkControl>) -> Self {
        self.control = control;
        self
    }

    /// Adds a side channel (a shared-memory segment) for large batches. The client offers
    /// it to the worker with `__transport_options__` before its first call and uses it
    /// only if the worker accepts; otherwise it is dropped.
    #[must_use]
    pub fn with_side_channel(mut self, channel: Arc<dyn SideChannel>) -> Self {
        self.side_channel = Some(channel);
        self
    }
}

/// Opens links to one endpoint: how a [`Client`](super::Client) connects, and reconnects
/// after a failed call dropped its link.
pub trait Connect: Send + Sync {
    /// Opens a new link whose reader honours `deadline`.
    ///
    /// # Errors
    /// [`Error::Connect`](crate::Error::Connect) when the endpoint cannot be reached.
    fn connect(&self, deadline: &Arc<Deadline>) -> Result<Link>;

    /// The endpoint, as an address string (for messages).
    fn endpoint(&self) -> String;
}

/// A reader that checks a deadline before each read (for links without a way to wait
/// with a timeout).
pub(crate) struct CheckedReader {
    pub(crate) inner: BoxRead,
    pub(crate) deadline: Arc<Deadline>,
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.remaining().is_some_and(|left| left.is_zero()) {
            return Err(self.deadline.expire());
        }
        self.inner.read(buf)
    }
}

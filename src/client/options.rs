//! Per-connection and per-call options, and the cancel handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::link::LinkControl;
use super::telemetry::CallObserver;
use crate::wire::{ExternalLocation, Limits, Metadata, Validation};

/// Options for one call (unary or stream).
///
/// ```
/// use std::time::Duration;
/// use vgi_rpc::client::CallOptions;
/// let options = CallOptions::default().with_timeout(Duration::from_secs(2));
/// assert_eq!(options.timeout, Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct CallOptions {
    /// Deadline for the whole call, measured from its start. When it passes the call
    /// fails with `DEADLINE_EXCEEDED` and the connection is dropped (see
    /// [`Client`](super::Client) for what happens next). Covers waiting for the server;
    /// a write the peer never reads is ended only by cancel.
    pub timeout: Option<Duration>,
    /// Extra request metadata. Entries go first, verbatim and in order; the framework
    /// keys the client derives (`vgi_rpc.method`, `vgi_rpc.request_version`,
    /// `vgi_rpc.protocol`, `vgi_rpc.protocol_version`) then replace a same-named entry in
    /// place or are appended, as the reference client does. A key is never sent twice.
    pub metadata: Metadata,
    /// A handle another thread may use to cancel the call.
    pub cancel: Option<CancelHandle>,
}

impl CallOptions {
    /// Sets [`CallOptions::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`CallOptions::metadata`].
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets [`CallOptions::cancel`].
    pub fn with_cancel(mut self, cancel: CancelHandle) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// What to do with an `exec:` worker's standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StderrMode {
    /// Keep the last `n` bytes; they are quoted in the error when the worker dies.
    Capture(usize),
    /// Let the worker write to this process's standard error.
    Inherit,
    /// Discard it.
    Null,
}

/// Default [`ConnectOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ConnectOptions::read_idle_timeout`].
pub const DEFAULT_READ_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Options for opening a connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// TCP connect timeout (`None`: the system's); over HTTP also the bound on the
    /// capability probe made when connecting. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// On sockets (`unix:`, `tcp://`): how long one read may wait for the server's next
    /// byte before the call fails with [`Error::Timeout`](crate::Error::Timeout), so a
    /// server that accepts and goes silent cannot hang the client. Bounds each wait, not
    /// the whole call (that is [`CallOptions::timeout`]). Default
    /// [`DEFAULT_READ_IDLE_TIMEOUT`]; `None`: wait forever.
    pub read_idle_timeout: Option<Duration>,
    /// An `exec:` worker's standard error; default: capture the last 64 KiB.
    pub stderr: StderrMode,
    /// How long a dropped client waits for an `exec:` worker to exit after its stdin
    /// closes, before killing it. Default 500 ms.
    pub exit_grace: Duration,
    /// Reopen a broken connection (after a timeout, cancel or transport error) on the next
    /// call. Default true; when false the next call fails until
    /// [`Client::reconnect`](super::Client::reconnect).
    pub reconnect: bool,
    /// Bounds on what a server's answers may make the client allocate.
    pub limits: Limits,
    /// Size in bytes (header included) of a shared-memory segment to create for each
    /// connection, so large batches travel through it instead of the byte stream
    /// (`exec:` and `unix:` addresses; feature `shm`). The client offers it with
    /// `__transport_options__` before its first call and uses it only if the worker
    /// says yes. `None` (the default): no shared memory.
    pub shm: Option<usize>,
    /// Options of `http://` and `https://` connections.
    pub http: HttpConnectOptions,
    /// External storage: resolves the pointer batches a server sends in place of
    /// batches too big for the wire (`vgi_rpc.location`), on every transport. `None`
    /// (the default): such a pointer fails its call with
    /// [`Error::External`](crate::Error::External) (`NotEnabled`), and the connection
    /// stays usable. `vgi_rpc::external::ExternalConfig` (feature `external`) is the
    /// stock implementation.
    pub external: Option<Arc<dyn ExternalLocation>>,
    /// Observes every call and stream (a span per call, trace context injected into the
    /// request): `vgi_rpc::otel::ClientTelemetry` with the `otel` feature. `None` (the
    /// default): calls are only `tracing` spans.
    pub observer: Option<Arc<dyn CallObserver>>,
}

/// Options of HTTP connections (`http://host:port[/prefix]`, `https://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConnectOptions {
    /// Headers sent with every request (e.g. `Authorization: Bearer …`).
    pub headers: Vec<(String, String)>,
    /// The largest decoded answer this client accepts, sent as
    /// `VGI-Accept-Max-Response-Bytes` on every request and enforced while reading
    /// (65536..=2^53-1; default 268435456, the reference client's).
    pub accept_max_response_bytes: u64,
    /// zstd level for request bodies (gzip when the server decodes only gzip); `None`
    /// sends bodies uncompressed. Default `Some(1)`, the reference client's.
    pub compression_level: Option<i32>,
    /// Whether answers may come compressed (`Accept-Encoding: zstd, gzip`, as the
    /// reference client asks). Compression costs more than it saves on a fast local
    /// link; turn it off there. Default `true`.
    pub accept_compressed: bool,
    /// Retries of the requests the reference allows to be retried (the capability probe
    /// and introspection, never a call or a stream turn). Default `None`: no retries.
    pub retry: Option<HttpRetry>,
    /// The certificate this client presents when an `https://` server asks for one
    /// (mTLS). Default `None`.
    pub client_identity: Option<ClientIdentity>,
    /// Root certificates (PEM) trusted besides the built-in web roots, e.g. a private CA
    /// that signed the server's certificate. Default: none.
    pub ca_certificates_pem: Vec<Vec<u8>>,
    /// Sticky-session scopes whose headers every request carries (see
    /// [`StickySessions`](super::StickySessions)). Default `None`: no session headers.
    pub sticky: Option<super::StickySessions>,
}

/// A client certificate and its private key, both PEM, presented to `https://` servers
/// that require client certificates. The key stays out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate, optionally followed by its intermediates (PEM).
    pub cert_chain_pem: Vec<u8>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl ClientIdentity {
    /// An identity from a PEM certificate chain and a PEM private key (checked when the
    /// connection is set up).
    pub fn from_pem(cert_chain_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        ClientIdentity {
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
        }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "cert_chain_pem",
                &format_args!("<{} bytes>", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Default for HttpConnectOptions {
    fn default() -> Self {
        HttpConnectOptions {
            headers: Vec::new(),
            accept_max_response_bytes: 268_435_456,
            compression_level: Some(1),
            accept_compressed: true,
            retry: None,
            client_identity: None,
            ca_certificates_pem: Vec::new(),
            sticky: None,
        }
    }
}

impl HttpConnectOptions {
    /// Adds a header sent with every request.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer {token}` with every request (a JWT, a sealed grant,
    /// an opaque credential the server resolves).
    pub fn with_bearer(self, token: impl std::fmt::Display) -> Self {
        self.with_header("Authorization", format!("Bearer {token}"))
    }

    /// Sets [`HttpConnectOptions::accept_max_response_bytes`].
    pub fn with_accept_max_response_bytes(mut self, bytes: u64) -> Self {
        self.accept_max_response_bytes = bytes;
        self
    }

    /// Sets [`HttpConnectOptions::accept_compressed`].
    pub fn with_accept_compressed(mut self, accept: bool) -> Self {
        self.accept_compressed = accept;
        self
    }

    /// Sets [`HttpConnectOptions::compression_level`].
    pub fn with_compression_level(mut self, level: Option<i32>) -> Self {
        self.compression_level = level;
        self
    }

    /// Sets [`HttpConnectOptions::retry`].
    pub fn with_retry(mut self, retry: HttpRetry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets [`HttpConnectOptions::client_identity`].
    pub fn with_client_identity(mut self, identity: ClientIdentity) -> Self {
        self.client_identity = Some(identity);
        self
    }

    /// Decorates every request with the innermost open scope of `sessions` (sticky
    /// sessions; the caller keeps a clone to open, read and end scopes).
    pub fn with_sticky_sessions(mut self, sessions: super::StickySessions) -> Self {
        self.sticky = Some(sessions);
        self
    }

    /// Trusts the root certificates in `pem` (adds to
    /// [`HttpConnectOptions::ca_certificates_pem`]).
    pub fn with_ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates_pem.push(pem.into());
        self
    }
}

/// Retries with full-jitter exponential backoff for transient HTTP failures (429, 502,
/// 503, 504, connect errors and timeouts); `Retry-After` raises the delay up to the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRetry {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff window; it doubles with every retry.
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
}

impl Default for HttpRetry {
    fn default() -> Self {
        HttpRetry {
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            read_idle_timeout: Some(DEFAULT_READ_IDLE_TIMEOUT),
            stderr: StderrMode::Capture(64 << 10),
            exit_grace: Duration::from_millis(500),
            reconnect: true,
            limits: Limits::default(),
            shm: None,
            http: HttpConnectOptions::default(),
            external: None,
            observer: None,
        }
    }
}

impl ConnectOptions {
    /// Sets [`ConnectOptions::connect_timeout`] (`None`: the system's).
    pub fn with_connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// Sets [`ConnectOptions::read_idle_timeout`] (`None`: wait forever).
    pub fn with_read_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.read_idle_timeout = timeout.into();
        self
    }

    /// Sets [`ConnectOptions::stderr`].
    pub fn with_stderr(mut self, stderr: StderrMode) -> Self {
        self.stderr = stderr;
        self
    }

    /// Sets [`ConnectOptions::exit_grace`].
    pub fn with_exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }

    /// Sets [`ConnectOptions::external`].
    pub fn with_external(mut self, external: Arc<dyn ExternalLocation>) -> Self {
        self.external = Some(external);
        self
    }

    /// Sets [`ConnectOptions::observer`].
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Sets [`ConnectOptions::reconnect`].
    pub fn with_reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Sets [`ConnectOptions::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how much of each received batch is checked (default [`Validation::Full`]).
    /// A cheaper level applies only to an `exec:` worker; on sockets it is ignored (with
    /// a warning) and every batch is fully validated.
    ///
    /// # Safety
    /// As [`Limits::with_validation`]: the worker must be trusted to send well-formed
    /// Arrow data; a malformed batch read unchecked is undefined behaviour.
    #[must_use]
    #[allow(unsafe_code)]
    pub unsafe fn with_validation(mut self, validation: Validation) -> Self {
        // SAFETY: the caller upholds `Limits::with_validation`'s contract (ours).
        self.limits = unsafe { self.limits.with_validation(validation) };
        self
    }

    /// Sets [`ConnectOptions::shm`]: a shared-memory segment of `size` bytes per
    /// connection (64 MiB holds many large batches; it must exceed the 64 KiB header).
    ///
    /// ```no_run
    /// use vgi_rpc::client::{Client, ConnectOptions};
    /// # fn main() -> vgi_rpc::Result<()> {
    /// let options = ConnectOptions::default().with_shm(64 << 20);
    /// let client = Client::connect_with(&"exec:my-worker --pipe".parse()?, options)?;
    /// # Ok(()) }
    /// ```
    pub fn with_shm(mut self, size: usize) -> Self {
        self.shm = Some(size);
        self
    }

    /// Sets [`ConnectOptions::http`].
    ///
    /// ```no_run
    /// use vgi_rpc::client::{Client, ConnectOptions, HttpConnectOptions};
    /// # fn main() -> vgi_rpc::Result<()> {
    /// let http = HttpConnectOptions::default().with_header("Authorization", "Bearer t0k3n");
    /// let options = ConnectOptions::default().with_http(http);
    /// let client = Client::connect_with(&"http://127.0.0.1:8000".parse()?, options)?;
    /// # Ok(()) }
    /// ```
    pub fn with_http(mut self, http: HttpConnectOptions) -> Self {
        self.http = http;
        self
    }
}

/// Cancels a call from any thread. Cloning shares the handle; a cancelled handle stays
/// cancelled.
///
/// Cancelling a call that is waiting on the transport interrupts it (an `exec:` worker is
/// killed, a socket is shut down): the call fails with `CANCELLED` and the connection is
/// reopened on the next call. A stream that is idle between turns is cancelled in-band
/// instead: its next turn sends the protocol's cancel, and the connection stays usable.
///
/// Use one handle per call. A handle shared by calls running at the same time interrupts
/// the one that attached last; the others see the cancel at their next step.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<CancelState>);

#[derive(Default)]
struct CancelState {
    cancelled: AtomicBool,
    target: Mutex<Option<Arc<dyn LinkControl>>>,
}

impl std::fmt::Debug for CancelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelState")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    /// A fresh, uncancelled handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation; interrupts the call in flight, if any.
    pub fn cancel(&self) {
        let Ok(target) = self.0.target.lock() else {
            self.0.cancelled.store(true, Ordering::SeqCst);
            return;
        };
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(control) = target.as_ref() {
            control.interrupt();
        }
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Registers what to interrupt while a call blocks; false if already cancelled.
    pub(crate) fn attach(&self, control: &Arc<dyn LinkControl>) -> bool {
        let Ok(mut target) = self.0.target.lock() else {
            return false;
        };
        if self.is_cancelled() {
            return false;
        }
        *target = Some(Arc::clone(control));
        true
    }

    pub(crate) fn detach(&self) {
        if let Ok(mut target) = self.0.target.lock() {
            *target = None;
        }
    }
}

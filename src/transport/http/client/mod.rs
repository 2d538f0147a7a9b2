//! The HTTP client end: `http://` and `https://` addresses.
//!
//! The client engine does the protocol (request encoding, answer decoding, logs, errors,
//! stream tokens) and hands each request to this module through its request/response
//! seam, [`RoundTrip`]: a unary call is one `POST {prefix}/{protocol}/{method}`, a stream
//! start `…/init`, every later turn `…/exchange`. What is left here is what is HTTP:
//!
//! - **capability probe**: `OPTIONS {prefix}/health` before the first request (and again
//!   after the answer's `max-age`); a server that does not advertise
//!   `VGI-Accept-Max-Response-Bytes-Support: true` is refused, as the reference does;
//! - **answer budget**: every request carries `VGI-Accept-Max-Response-Bytes`, every
//!   answer must carry exactly one support header, and the decoded body is read with a
//!   bound, so a server cannot make the client buffer more than it accepted;
//! - **compression**: request bodies are zstd (gzip for a gzip-only server) unless turned
//!   off; answers are decoded from `Content-Encoding` or `X-VGI-Content-Encoding`;
//! - **errors**: Arrow bodies are handed to the engine whatever their status (400, 404
//!   and 415 carry EXCEPTION streams); 401 becomes an `AuthenticationError`, other
//!   bodies the reference's `HttpError`, refused connections [`Error::Connect`], a passed
//!   deadline [`Error::Timeout`];
//! - **uploads**: a request the server will not take inline (413, or over its advertised
//!   `VGI-Max-Request-Bytes`) is PUT to a URL the server vends and sent as a pointer,
//!   when the server advertises upload URLs (`upload.rs`);
//! - **retries**, only where the reference allows them: the probe and introspection
//!   (`vgi_rpc.Reflection.v1`), never a call or a stream turn, which may have effects.
//!
//! Each connector owns a current-thread tokio runtime and drives reqwest on the
//! caller's thread with `block_on`: no helper thread and no channel hop per call.
//! Reconnecting after a failed call reuses the runtime, the connection pool and the
//! probed capabilities.

mod body;
mod caps;
mod direct;
mod retry;
mod sticky;
mod tls;
mod upload;

pub use caps::HttpCapabilities;
pub use sticky::end_session;
pub use upload::request_upload_urls;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use self::body::Codec;
use crate::client::{
    Connect, ConnectOptions, Deadline, HttpConnectOptions, Link, LinkControl, RoundTrip, Route,
    RouteStep,
};
use crate::wire::keys;
use crate::{Error, Result, RpcError};

/// The Arrow IPC stream media type, both ways.
const ARROW: &str = "application/vnd.apache.arrow.stream";
static ACCEPT_MAX: HeaderName = HeaderName::from_static("vgi-accept-max-response-bytes");
static ACCEPT_MAX_SUPPORT: HeaderName =
    HeaderName::from_static("vgi-accept-max-response-bytes-support");
/// The most an answer buffer is sized for before its bytes arrive.
const PRESIZE_MAX: u64 = 16 << 20;
/// The answer-budget range the reference accepts.
const BUDGET_RANGE: std::ops::RangeInclusive<u64> = 65_536..=9_007_199_254_740_991;

/// Opens HTTP links to one base URL (see the module docs); shared by every link it
/// opens, so reconnecting reuses the runtime, the pool and the probed capabilities.
pub struct HttpConnector {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector")
            .field("base", &self.shared.base)
            .finish_non_exhaustive()
    }
}

struct Shared {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// Scheme, authority and prefix, without a trailing slash.
    base: String,
    options: HttpConnectOptions,
    headers: HeaderMap,
    probe_timeout: Option<Duration>,
    caps: Mutex<Option<Cached>>,
    /// Answer stream starts already read as Arrow (`body::ArrowHeads`).
    arrow_heads: body::ArrowHeads,
    /// The headers every POST carries, built once: `Content-Type`, the answer budget,
    /// `Accept-Encoding`.
    post_headers: HeaderMap,
    /// Where links send calls on a connection of their own, when they may (`direct.rs`).
    direct: Option<direct::Endpoint>,
}

struct Cached {
    caps: Arc<HttpCapabilities>,
    until: Option<Instant>,
}

impl HttpConnector {
    /// A connector for `url` (`http(s)://host[:port][/prefix]`). Nothing is sent yet.
    ///
    /// # Errors
    /// An answer budget outside 65536..=2^53-1, a header that is not valid HTTP, or a
    /// TLS setup failure (a client identity or CA certificate that is not valid PEM:
    /// [`Error::Config`]).
    pub fn new(url: &str, options: &ConnectOptions) -> Result<Self> {
        let http_options = options.http.clone();
        if !BUDGET_RANGE.contains(&http_options.accept_max_response_bytes) {
            return Err(Error::type_error(format!(
                "accept_max_response_bytes must be in 65536..=9007199254740991, got {}",
                http_options.accept_max_response_bytes
            )));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &http_options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::type_error(format!("invalid header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::type_error(format!("invalid value for header {name}: {e}")))?;
            headers.append(name, value);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut builder = reqwest::Client::builder().tcp_nodelay(true);
        if let Some(t) = options.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        let builder = tls::configure(builder, &http_options)?;
        let http = builder
            .build()
            .map_err(|e| Error::protocol(format!("cannot set up the HTTP client: {e}")))?;
        // Appended after the caller's, as each request used to add them.
        let mut post_headers = headers.clone();
        post_headers.append(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static(ARROW),
        );
        post_headers.append(
            ACCEPT_MAX.clone(),
            HeaderValue::from(http_options.accept_max_response_bytes),
        );
        post_headers.append(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static(if http_options.accept_compressed {
                "zstd, gzip"
            } else {
                "identity"
            }),
        );
        Ok(HttpConnector {
            shared: Arc::new(Shared {
                runtime,
                http,
                base: url.trim_end_matches('/').to_owned(),
                options: http_options,
                headers,
                probe_timeout: options.connect_timeout,
                caps: Mutex::new(None),
                arrow_heads: body::ArrowHeads::default(),
                post_headers,
                direct: direct::Endpoint::of(url, options.connect_timeout),
            }),
        })
    }

    /// What the server advertises (`OPTIONS {prefix}/health`), probed now unless a
    /// probe's answer is still fresh.
    ///
    /// # Errors
    /// As [`Connect::connect`].
    pub fn capabilities(&self) -> Result<HttpCapabilities> {
        let control = HttpControl::new();
        self.shared
            .capabilities(&control, self.shared.probe_timeout)
            .map(|caps| (*caps).clone())
    }
}

impl Connect for HttpConnector {
    /// Probes the server's capabilities (unless still cached) and opens a link; the
    /// requests themselves reuse pooled connections.
    fn connect(&self, _deadline: &Arc<Deadline>) -> Result<Link> {
        let control = Arc::new(HttpControl::new());
        self.shared
            .capabilities(&control, self.shared.probe_timeout)?;
        let round_trip = HttpRoundTrip {
            shared: Arc::clone(&self.shared),
            control: Arc::clone(&control),
            trace: Vec::new(),
            urls: Vec::new(),
            direct: self.shared.direct.clone().map(direct::Direct::new),
        };
        Ok(Link::request_response(Box::new(round_trip), control))
    }

    fn endpoint(&self) -> String {
        self.shared.base.clone()
    }
}

/// What the server at `url` advertises: a one-off probe with `options`.
///
/// # Errors
/// As [`Connect::connect`].
pub fn capabilities(url: &str, options: &ConnectOptions) -> Result<HttpCapabilities> {
    HttpConnector::new(url, options)?.capabilities()
}

/// Interrupts the request in flight (a cancel from another thread).
struct HttpControl {
    interrupted: tokio::sync::watch::Sender<bool>,
}

impl HttpControl {
    fn new() -> Self {
        HttpControl {
            interrupted: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl LinkControl for HttpControl {
    fn interrupt(&self) {
        self.interrupted.send_replace(true);
    }
}

struct HttpRoundTrip {
    shared: Arc<Shared>,
    control: Arc<HttpControl>,
    /// The current call's `traceparent` / `tracestate` headers.
    trace: Vec<(&'static str, String)>,
    /// The URLs of the routes called so far, parsed once (parsing is a good part of a
    /// small call's client time), found again without formatting the URL.
    urls: Vec<KeptUrl>,
    /// This link's own connection for calls (`direct.rs`), when the URL allows one.
    direct: Option<direct::Direct>,
}

/// A route's parsed URL.
struct KeptUrl {
    step: RouteStep,
    protocol: String,
    method: String,
    url: reqwest::Url,
    /// The URL's path and query, the target a direct request names.
    origin: Option<hyper::Uri>,
}

impl HttpRoundTrip {
    /// The URL of `route`: kept from an earlier call, else formatted and parsed (and kept).
    fn url_of(&mut self, route: &Route<'_>) -> Target {
        let kept = self.urls.iter().find(|kept| {
            kept.step == route.step
                && kept.method == route.method
                && kept.protocol == route.protocol
        });
        if let Some(kept) = kept {
            return Target::Parsed(kept.url.clone(), kept.origin.clone());
        }
        let suffix = match route.step {
            RouteStep::Unary => "",
            RouteStep::StreamInit => "/init",
            RouteStep::StreamTurn => "/exchange",
        };
        let url = format!(
            "{}/{}/{}{suffix}",
            self.shared.base, route.protocol, route.method
        );
        match reqwest::Url::parse(&url) {
            Ok(parsed) => {
                if self.urls.len() >= KEPT_URLS {
                    self.urls.clear();
                }
                let origin = match parsed.query() {
                    Some(query) => format!("{}?{query}", parsed.path()),
                    None => parsed.path().to_owned(),
                };
                let origin = hyper::Uri::try_from(origin).ok();
                self.urls.push(KeptUrl {
                    step: route.step,
                    protocol: route.protocol.to_owned(),
                    method: route.method.to_owned(),
                    url: parsed.clone(),
                    origin: origin.clone(),
                });
                Target::Parsed(parsed, origin)
            }
            // reqwest reports it, as before.
            Err(_) => Target::Raw(url),
        }
    }
}

/// Routes whose parsed URLs a link keeps.
const KEPT_URLS: usize = 64;

impl RoundTrip for HttpRoundTrip {
    fn set_trace_context(&mut self, headers: &[(&'static str, String)]) {
        self.trace.clear();
        self.trace.extend_from_slice(headers);
    }

    fn round_trip(
        &mut self,
        route: Route<'_>,
        body: &[u8],
        deadline: &Deadline,
    ) -> Result<Vec<u8>> {
        let remaining = deadline.remaining();
        if remaining.is_some_and(|left| left.is_zero()) {
            return Err(Error::Io(deadline.expire()));
        }
        let caps = self.shared.capabilities(&self.control, remaining)?;
        let url = self.url_of(&route);
        let shared = &*self.shared;
        let trace = self.trace.as_slice();
        let mut direct = self.direct.as_mut();
        let reflection =
            route.protocol == keys::REFLECTION_PROTOCOL && route.step == RouteStep::Unary;
        let post = async {
            let codec = shared
                .options
                .compression_level
                .map(|level| (Codec::for_server(&caps.supported_encodings), level));
            // An uncompressed body over the advertised cap goes through storage at once;
            // a compressed one may fit, and a 413 sends it there afterwards.
            let stored = if codec.is_none()
                && caps.upload_url_support
                && caps
                    .max_request_bytes
                    .is_some_and(|max| body.len() as u64 > max)
            {
                Some(shared.upload(body).await?)
            } else {
                None
            };
            let body = stored.as_deref().unwrap_or(body);
            let mut answer = shared
                .post(direct.as_deref_mut(), &url, body, codec, reflection, trace)
                .await?;
            if answer.status == StatusCode::UNSUPPORTED_MEDIA_TYPE
                && codec.is_some()
                && route.step != RouteStep::StreamTurn
            {
                // The server does not decode our coding: once more with one it lists
                // (the reference client's one retry), or uncompressed.
                let caps = HttpCapabilities::from_headers(&answer.headers);
                let retry = shared.options.compression_level.and_then(|level| {
                    let codec = Codec::for_server(&caps.supported_encodings);
                    caps.supported_encodings
                        .iter()
                        .any(|s| s == codec.token())
                        .then_some((codec, level))
                });
                answer = shared
                    .post(direct.as_deref_mut(), &url, body, retry, false, trace)
                    .await?;
            }
            if stored.is_none() && upload::must_upload(answer.status, caps.upload_url_support) {
                // Too large inline: once more through storage (the reference's 413
                // fallback).
                let pointer = shared.upload(body).await?;
                answer = shared
                    .post(direct.as_deref_mut(), &url, &pointer, codec, false, trace)
                    .await?;
            }
            Ok(answer)
        };
        let answer = shared
            .run(&self.control, remaining, post)
            .map_err(|e| match e {
                Failure::Deadline => Error::Io(deadline.expire()),
                other => other.into_error(&self.shared.base),
            })?;
        shared.finish(answer)
    }
}

/// A request URL: parsed (and kept, with its origin-form target for a direct request),
/// or as written when it does not parse (reqwest then reports why).
enum Target {
    Parsed(reqwest::Url, Option<hyper::Uri>),
    Raw(String),
}

/// One answer, status screened and body decoded.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Why a request produced no answer.
enum Failure {
    Deadline,
    Interrupted,
    Request(reqwest::Error),
    /// A direct request failed (`direct.rs`).
    Direct(hyper::Error),
    /// A direct connection could not be opened.
    Connect(io::Error),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl From<RpcError> for Failure {
    fn from(e: RpcError) -> Self {
        Failure::Error(e.into())
    }
}

impl Failure {
    fn into_error(self, base: &str) -> Error {
        match self {
            Failure::Deadline => Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the HTTP request timed out",
            )),
            Failure::Interrupted => Error::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                "the HTTP request was interrupted",
            )),
            Failure::Request(e) => request_error(base, &e),
            Failure::Direct(e) => {
                Error::Disconnected(format!("the HTTP request failed: {}", error_chain(&e)))
            }
            Failure::Connect(e) => Error::Connect {
                endpoint: base.to_owned(),
                source: io::Error::new(e.kind(), format!("tcp connect error: {e}")),
            },
            Failure::Error(e) => e,
        }
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// A reqwest failure as the engine's error: refused or unreachable → `Connect`, a
/// connection that broke mid-request → `Disconnected`.
fn request_error(base: &str, e: &reqwest::Error) -> Error {
    let mut chain = e.to_string();
    let mut kind = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<io::Error>() {
            kind.get_or_insert(io.kind());
        }
        source = s.source();
    }
    if e.is_connect() {
        let kind = kind.unwrap_or(if e.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::ConnectionRefused
        });
        return Error::Connect {
            endpoint: base.to_owned(),
            source: io::Error::new(kind, chain),
        };
    }
    Error::Disconnected(format!("the HTTP request failed: {chain}"))
}

impl Shared {
    /// Runs `work` on this connector's runtime within `timeout`, unless `control` is
    /// interrupted first.
    fn run<T>(
        &self,
        control: &HttpControl,
        timeout: Option<Duration>,
        work: impl Future<Output = std::result::Result<T, Failure>>,
    ) -> std::result::Result<T, Failure> {
        let mut interrupted = control.interrupted.subscribe();
        if *interrupted.borrow_and_update() {
            return Err(Failure::Interrupted);
        }
        self.runtime.block_on(async {
            let work = async {
                match timeout {
                    Some(t) => tokio::time::timeout(t, work)
                        .await
                        .unwrap_or(Err(Failure::Deadline)),
                    None => work.await,
                }
            };
            let mut work = pin!(work);
            let mut stop = pin!(interrupted.wait_for(|v| *v));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(done) = work.as_mut().poll(cx) {
                    return Poll::Ready(done);
                }
                match stop.as_mut().poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(Failure::Interrupted)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        })
    }

    /// The cached capabilities, probing first when there are none or they expired.
    fn capabilities(
        &self,
        control: &HttpControl,
        timeout: Option<Duration>,
    ) -> Result<Arc<HttpCapabilities>> {
        if let Ok(cache) = self.caps.lock()
            && let Some(cached) = cache.as_ref()
            && cached.until.is_none_or(|until| Instant::now() < until)
        {
            return Ok(Arc::clone(&cached.caps));
        }
        let url = format!("{}/health", self.base);
        let probe = async {
            let response = retry::send(&self.options.retry, true, || {
                self.http
                    .request(Method::OPTIONS, &url)
                    .headers(self.headers.clone())
                    .header(&ACCEPT_MAX, self.options.accept_max_response_bytes)
            })
            .await?;
            Ok(response)
        };
        let response = self
            .run(control, timeout, probe)
            .map_err(|e| e.into_error(&self.base))?;
        let status = response.status();
        if !status.is_success() {
            return Err(RpcError::new(
                "ProtocolError",
                format!("Capability discovery failed with HTTP {}", status.as_u16()),
            )
            .into());
        }
        let caps = HttpCapabilities::from_headers(response.headers());
        if !caps.accept_max_response_bytes_support {
            return Err(RpcError::new(
                "ProtocolError",
                "Server does not advertise VGI-Accept-Max-Response-Bytes support",
            )
            .into());
        }
        let until = caps::max_age(response.headers()).map(|age| Instant::now() + age);
        let caps = Arc::new(caps);
        if let Ok(mut cache) = self.caps.lock() {
            *cache = Some(Cached {
                caps: Arc::clone(&caps),
                until,
            });
        }
        Ok(caps)
    }

    /// POSTs one request body and reads the answer with the budget's bound: on the
    /// link's own connection (`direct`) when the request needs nothing of reqwest, else
    /// through reqwest.
    async fn post(
        &self,
        direct: Option<&mut direct::Direct>,
        url: &Target,
        body: &[u8],
        codec: Option<(Codec, i32)>,
        retryable: bool,
        trace: &[(&'static str, String)],
    ) -> std::result::Result<Answer, Failure> {
        let (payload, coding) = match codec {
            Some((codec, level)) => (codec.compress(body, level)?, Some(codec.token())),
            None => (body.to_vec(), None),
        };
        // Shared, so a retry resends it without a copy.
        let payload = axum::body::Bytes::from(payload);
        let limit = self.options.accept_max_response_bytes;
        let policy = if retryable {
            &self.options.retry
        } else {
            &None
        };
        let direct = direct
            .filter(|_| policy.is_none() && self.options.sticky.is_none())
            .zip(match url {
                Target::Parsed(_, origin) => origin.as_ref(),
                Target::Raw(_) => None,
            });
        let mut response = match direct {
            Some((direct, origin)) => {
                let mut request = hyper::Request::new(http_body_util::Full::new(payload));
                *request.method_mut() = Method::POST;
                *request.uri_mut() = origin.clone();
                let headers = request.headers_mut();
                // The caller's headers and ours, then as the reqwest path adds them.
                *headers = self.post_headers.clone();
                if let Some(coding) = coding {
                    headers.append(
                        reqwest::header::CONTENT_ENCODING,
                        HeaderValue::from_static(coding),
                    );
                }
                for (name, value) in trace {
                    let name = HeaderName::from_bytes(name.as_bytes());
                    let value = HeaderValue::from_str(value);
                    let (Ok(name), Ok(value)) = (name, value) else {
                        return Err(Error::protocol("a trace header is not valid HTTP").into());
                    };
                    headers.append(name, value);
                }
                direct::Reply::Direct(direct.send(request).await?)
            }
            None => direct::Reply::Pooled(
                retry::send(policy, retryable, || {
                    let request = match url {
                        Target::Parsed(url, _) => self.http.post(url.clone()),
                        Target::Raw(url) => self.http.post(url.as_str()),
                    };
                    // The caller's headers and ours, merged once at connect
                    // (`post_headers`).
                    let mut request = request
                        .headers(self.post_headers.clone())
                        .body(payload.clone());
                    if let Some(coding) = coding {
                        request = request.header(reqwest::header::CONTENT_ENCODING, coding);
                    }
                    for (name, value) in trace {
                        request = request.header(*name, value.as_str());
                    }
                    sticky::decorate(request, &self.headers, self.options.sticky.as_ref())
                })
                .await?,
            ),
        };
        if let Some(sessions) = &self.options.sticky {
            sticky::capture(sessions, response.headers());
        }
        let mut support = response.headers().get_all(&ACCEPT_MAX_SUPPORT).iter();
        if !(support.next().is_some_and(|v| v.as_bytes() == b"true") && support.next().is_none()) {
            return Err(RpcError::new(
                "ProtocolError",
                "Every capped RPC response must contain exactly one VGI-Accept-Max-Response-Bytes-Support: true field",
            )
            .into());
        }
        let status = response.status();
        // Taken, not copied: the body's decoder was set up when the head arrived.
        let headers = std::mem::take(response.headers_mut());
        // Sized once from the declared length (within the budget, and only so far ahead
        // of the bytes that arrive), not grown by copies.
        let declared = response
            .content_length()
            .unwrap_or(0)
            .min(limit)
            .min(PRESIZE_MAX);
        let mut raw = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = response.chunk().await? {
            raw.extend_from_slice(&chunk);
            if u64::try_from(raw.len()).unwrap_or(u64::MAX) > limit
                && content_coding(&headers).is_none()
            {
                let read = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
                body::check_size(raw.len().min(read), limit)?;
            }
            if raw.len() as u64 > limit.saturating_mul(64) {
                return Err(body::io_error(
                    io::ErrorKind::InvalidData,
                    "the compressed answer body is implausibly large",
                )
                .into());
            }
        }
        let body = match content_coding(&headers) {
            Some(Ok(codec)) => codec.decompress(&raw, limit)?,
            Some(Err(token)) => {
                return Err(Error::protocol(format!(
                    "the server answered with an unknown content coding {token:?}"
                ))
                .into());
            }
            None => raw,
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Screens an answer's status: Arrow bodies go to the engine whatever the status.
    fn finish(&self, answer: Answer) -> Result<Vec<u8>> {
        let status = answer.status.as_u16();
        if answer.status == StatusCode::UNAUTHORIZED {
            let reason = answer
                .headers
                .get("vgi-auth-reason")
                .and_then(|v| v.to_str().ok());
            return Err(body::unauthorized(&answer.body, reason));
        }
        if answer.status == StatusCode::PAYLOAD_TOO_LARGE {
            return Err(RpcError::new(
                "RequestTooLarge",
                "Request exceeds max_request_bytes and the server does not advertise upload_url_support",
            )
            .with_code(crate::ErrorCode::ResourceExhausted)
            .into());
        }
        if !self.arrow_heads.known(&answer.body) {
            body::require_arrow(status, &answer.body)?;
            self.arrow_heads.learn(&answer.body);
        }
        Ok(answer.body)
    }
}

/// The answer's content coding: `Content-Encoding`, else `X-VGI-Content-Encoding`;
/// `identity` is none. `Err` carries a coding this client cannot decode.
fn content_coding(headers: &HeaderMap) -> Option<std::result::Result<Codec, String>> {
    let token = headers
        .get(reqwest::header::CONTENT_ENCODING)
        .or_else(|| headers.get("x-vgi-content-encoding"))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v != "identity")?;
    Some(Codec::parse(&token).ok_or(token))
}

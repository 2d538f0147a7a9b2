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
//! Each connector owns a current-thread tokio runtime and drives its requests on the
//! caller's thread with `block_on`: no helper thread and no channel hop per call.
//! Reconnecting after a failed call reuses the runtime, the connection pool and the
//! probed capabilities.

mod body;
mod caps;
mod failure;
mod post;
mod retry;
mod sticky;
mod tls;
mod upload;

pub use caps::HttpCapabilities;
pub use sticky::end_session;
pub use upload::request_upload_urls;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use self::body::Codec;
use self::failure::Failure;
use crate::client::{
    Connect, ConnectOptions, Deadline, HttpConnectOptions, Link, LinkControl, RoundTrip, Route,
    RouteStep,
};
use crate::wire::keys;
use crate::{Error, Result, RpcError};

/// The `User-Agent` our requests carry (servers show it, e.g. the reference's and our
/// OpenTelemetry `user_agent.original`).
pub const USER_AGENT: &str = concat!("vgi-rpc-rust/", env!("CARGO_PKG_VERSION"));

/// The Arrow IPC stream media type, both ways.
const ARROW: &str = "application/vnd.apache.arrow.stream";
static ACCEPT_MAX: HeaderName = HeaderName::from_static("vgi-accept-max-response-bytes");
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
        // A header of the caller's own (`user-agent` included) goes on each request and
        // wins over this default.
        // No redirects, as the reference's client (httpx) by default: an RPC POST is not
        // re-sent elsewhere, and the policy's per-request URL work goes too.
        let mut builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            // HTTP/1.1, as the reference's client (httpx) speaks by default. reqwest's own
            // retries are of HTTP/2 refusals only, so they go too, and with them a copy of
            // every request kept for a replay that cannot happen.
            .http1_only()
            .retry(reqwest::retry::never().max_retries_per_request(0));
        if !proxy_in_env() {
            // What reqwest's default (the proxy variables, read once here) comes to,
            // without asking its empty matcher about every request.
            builder = builder.no_proxy();
        }
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
            last: None,
        };
        Ok(Link::request_response(Box::new(round_trip), control))
    }

    fn endpoint(&self) -> String {
        self.shared.base.clone()
    }
}

/// Whether a proxy variable reqwest reads (through hyper-util's environment matcher) is
/// set, even empty: only then are requests matched against proxies.
fn proxy_in_env() -> bool {
    [
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some())
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
    /// When this link's last request ended.
    last: Option<Instant>,
}

/// After this long without a request, the runtime first looks at the pooled connections
/// (see [`HttpRoundTrip::round_trip`]).
const IDLE_CHECK: Duration = Duration::from_millis(1);

/// A route's parsed URL.
struct KeptUrl {
    step: RouteStep,
    protocol: String,
    method: String,
    url: reqwest::Url,
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
            return Target::Parsed(kept.url.clone());
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
                self.urls.push(KeptUrl {
                    step: route.step,
                    protocol: route.protocol.to_owned(),
                    method: route.method.to_owned(),
                    url: parsed.clone(),
                });
                Target::Parsed(parsed)
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
        let reflection =
            route.protocol == keys::REFLECTION_PROTOCOL && route.step == RouteStep::Unary;
        // The runtime only runs while a request does, so a kept connection the server
        // closed while the link was idle has not been noticed: the pool would send the
        // next request into it and fail it. One turn of the runtime first lets the
        // connection read its EOF and leave the pool (httpx checks the same before it
        // reuses a connection). Back-to-back calls skip it.
        let idle = self.last.is_none_or(|last| last.elapsed() > IDLE_CHECK);
        let post = async {
            if idle {
                tokio::task::yield_now().await;
            }
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
            let mut answer = shared.post(&url, body, codec, reflection, trace).await?;
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
                answer = shared.post(&url, body, retry, false, trace).await?;
            }
            if stored.is_none() && upload::must_upload(answer.status, caps.upload_url_support) {
                // Too large inline: once more through storage (the reference's 413
                // fallback).
                let pointer = shared.upload(body).await?;
                answer = shared.post(&url, &pointer, codec, false, trace).await?;
            }
            Ok(answer)
        };
        let answer = shared.run(&self.control, remaining, post);
        self.last = Some(Instant::now());
        let answer = answer.map_err(|e| match e {
            Failure::Deadline => Error::Io(deadline.expire()),
            other => other.into_error(&self.shared.base),
        })?;
        shared.finish(answer)
    }
}

/// A request URL: parsed (and kept), or as written when it does not parse (reqwest then
/// reports why).
enum Target {
    Parsed(reqwest::Url),
    Raw(String),
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
            let response = retry::send(&self.http, &self.options.retry, true, || {
                self.http
                    .request(Method::OPTIONS, &url)
                    .headers(self.headers.clone())
                    .header(&ACCEPT_MAX, self.options.accept_max_response_bytes)
                    .build()
                    .map_err(Failure::Request)
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
}

//! The HTTP server end: an axum [`Router`](axum::Router) serving a [`Server`].
//!
//! Every request is answered by one handler (`handler.rs`) that parses the path itself:
//! the reference's precedence (response-budget header, then routing, then content type,
//! then method kind, then body) decides which error a bad request gets, and a table of
//! axum routes would impose its own. The call engine never runs on an async worker: on
//! a connection's own thread when [`serve`] gave it one, else on tokio's blocking pool
//! (`conn.rs`); the async side only moves bytes and headers.

mod calls;
mod conn;
mod continuation;
mod encoding;
mod handler;
mod reply;
mod sticky;
mod storage;
#[cfg(feature = "tls")]
mod tls;
mod unauthorized;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
pub use conn::CONNECTION_THREADS;
use continuation::Continuations;
use hyper::body::Body as _;
pub use sticky::{DrainHandle, StickyOptions};
pub use storage::StorageOptions;
#[cfg(feature = "tls")]
pub use tls::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, serve_tls};
pub use unauthorized::{AuthLayerState, authenticate_layer};

use super::auth::{Authenticate, ProofMode, ProxyProof, compose_identity};
use crate::transport::Shutdown;
use crate::{Error, Result, Server};

/// The smallest response limit a client or server may set (the reference's).
pub const MIN_RESPONSE_LIMIT: u64 = 65_536;
/// The largest response limit (2^53 - 1, the largest integer every JSON reader keeps).
pub const MAX_RESPONSE_LIMIT: u64 = (1 << 53) - 1;

/// How an HTTP server behaves beyond the protocol's defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Path prefix of every route, e.g. `/vgi` (default: none).
    pub prefix: String,
    /// Largest request body accepted, raw or decoded (advertised as
    /// `VGI-Max-Request-Bytes`; 413 beyond). `None`: only the hard bound
    /// [`HttpOptions::body_limit`] applies, unadvertised.
    pub max_request_bytes: Option<u64>,
    /// Largest response body sent (`VGI-Max-Response-Bytes`); a larger answer becomes a
    /// `ResponseTooLargeError`. `None`: only the client's own limit applies.
    pub max_response_bytes: Option<u64>,
    /// The hard bound on any request body when no `max_request_bytes` is set.
    pub body_limit: u64,
    /// How long a client may take to send its request body.
    pub body_timeout: Duration,
    /// Whether answers are compressed when the client accepts it (requests are decoded
    /// either way).
    pub compression: bool,
    /// The key sealing continuation tokens; every worker behind one load balancer must
    /// share it. `None`: a random key (streams continue only on this process).
    pub token_key: Option<[u8; 32]>,
    /// How long a continuation token stays valid.
    pub token_ttl: Duration,
    /// How many non-resumable stream states this worker holds at once.
    pub max_held_streams: usize,
    /// Origins browsers may call from (CORS; `*` for any). Empty, the default: no CORS
    /// headers at all.
    pub cors_origins: Vec<String>,
    /// Who may call: run for every request except `OPTIONS`, `/.well-known/…` and
    /// `{prefix}/health`. `None`: anonymous (unless the server hosts
    /// `vgi_rpc.Identity.v2`, whose identity bearers are then accepted).
    pub authenticate: Option<Arc<dyn Authenticate>>,
    /// The `WWW-Authenticate` challenge every 401 carries, if any.
    pub www_authenticate: Option<String>,
    /// Proxy proof, ANDed in front of [`HttpOptions::authenticate`] (and the identity
    /// bearers): see [`ProxyProof`].
    pub proxy_proof: Option<Arc<ProxyProof>>,
    /// Sticky sessions (`VGI-Session`): `None`, the default, leaves the wire exactly as
    /// without them. Tokens are sealed with [`HttpOptions::token_key`].
    pub sticky: Option<StickyOptions>,
    /// External storage as HTTP sees it: upload URLs and the cap on externalized answers
    /// (`storage.rs`).
    pub storage: StorageOptions,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("prefix", &self.prefix)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("compression", &self.compression)
            .field("token_key", &self.token_key.map(|_| "<set>"))
            .field("token_ttl", &self.token_ttl)
            .field("max_held_streams", &self.max_held_streams)
            .field("cors_origins", &self.cors_origins)
            .field("authenticate", &self.authenticate.is_some())
            .field("www_authenticate", &self.www_authenticate)
            .field("proxy_proof", &self.proxy_proof.as_ref().map(|p| p.mode()))
            .field("sticky", &self.sticky)
            .field("storage", &self.storage)
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            prefix: String::new(),
            max_request_bytes: None,
            max_response_bytes: None,
            body_limit: 1 << 30,
            body_timeout: Duration::from_secs(60),
            compression: true,
            token_key: None,
            token_ttl: Duration::from_secs(3600),
            max_held_streams: 10_000,
            cors_origins: Vec::new(),
            authenticate: None,
            www_authenticate: None,
            proxy_proof: None,
            sticky: None,
            storage: StorageOptions::default(),
        }
    }
}

impl HttpOptions {
    /// Sets [`HttpOptions::prefix`] (a leading `/` is added, a trailing one dropped).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        let trimmed = prefix.trim_matches('/');
        self.prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// Sets [`HttpOptions::max_request_bytes`].
    #[must_use]
    pub fn max_request_bytes(mut self, limit: u64) -> Self {
        self.max_request_bytes = Some(limit);
        self
    }

    /// Sets [`HttpOptions::max_response_bytes`].
    ///
    /// # Errors
    /// Fails outside 65536 ..= 2^53 - 1, as the reference does.
    pub fn max_response_bytes(mut self, limit: u64) -> Result<Self> {
        if !(MIN_RESPONSE_LIMIT..=MAX_RESPONSE_LIMIT).contains(&limit) {
            return Err(Error::protocol(format!(
                "max_response_bytes must be within {MIN_RESPONSE_LIMIT}..={MAX_RESPONSE_LIMIT}, got {limit}"
            )));
        }
        self.max_response_bytes = Some(limit);
        Ok(self)
    }

    /// Sets [`HttpOptions::compression`].
    #[must_use]
    pub fn compression(mut self, enabled: bool) -> Self {
        self.compression = enabled;
        self
    }

    /// Sets [`HttpOptions::token_key`].
    #[must_use]
    pub fn token_key(mut self, key: [u8; 32]) -> Self {
        self.token_key = Some(key);
        self
    }

    /// Sets [`HttpOptions::token_ttl`].
    #[must_use]
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Allows browsers on `origin` to call (adds to [`HttpOptions::cors_origins`]).
    #[must_use]
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }

    /// Sets [`HttpOptions::body_timeout`].
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Requires (or, in [`ProofMode::Allow`], records) a proxy proof on every request but
    /// the exempt ones; a `Require` worker advertises `VGI-Proxy-Proof-Required: true`.
    #[must_use]
    pub fn proxy_proof(mut self, proof: ProxyProof) -> Self {
        self.proxy_proof = Some(Arc::new(proof));
        self
    }

    /// Turns sticky sessions on ([`HttpOptions::sticky`]).
    #[must_use]
    pub fn sticky(mut self, sticky: StickyOptions) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Sets [`HttpOptions::storage`]: upload URLs and the external cap.
    #[must_use]
    pub fn storage(mut self, storage: StorageOptions) -> Self {
        self.storage = storage;
        self
    }

    /// Sets [`HttpOptions::authenticate`].
    #[must_use]
    pub fn authenticate(mut self, authenticate: impl Authenticate) -> Self {
        self.authenticate = Some(Arc::new(authenticate));
        self
    }
}

/// What every request handler shares.
pub(crate) struct App {
    pub server: Server,
    pub options: HttpOptions,
    pub continuations: Continuations,
    /// `Access-Control-Expose-Headers` when CORS is on: every header a browser client
    /// must read, capabilities included.
    pub expose: HeaderValue,
    /// The capability headers sent on every response, built once (lowercase names, as
    /// `http::HeaderName` wants them; HTTP/1 readers compare case-insensitively).
    pub capabilities: Vec<(HeaderName, HeaderValue)>,
    /// What every Arrow answer's headers start as ([`reply::arrow_headers`]).
    pub arrow_headers: axum::http::HeaderMap,
    /// The request authenticator: the deployment's, with the identity bearers appended.
    pub auth: Option<Arc<dyn Authenticate>>,
    /// What every 401 adds.
    pub refusals: unauthorized::Refusals,
    /// The sticky-session machinery, when on.
    pub sticky: Option<Arc<sticky::Sticky>>,
}

impl App {
    fn new(server: &Server, options: &HttpOptions) -> Result<Self> {
        let mut auth =
            compose_identity(options.authenticate.clone(), server.inner.identity.as_ref())?;
        let mut proof_required = false;
        if let Some(proof) = &options.proxy_proof {
            // The gate goes in front of the whole chain: require_all(gate, chain(...)).
            proof_required = proof.mode() == ProofMode::Require;
            auth = Some(Arc::new(Arc::clone(proof).shared_gate(auth)));
        }
        let refusals =
            unauthorized::Refusals::new(auth.as_ref(), options.www_authenticate.as_deref());
        let key = options
            .token_key
            .unwrap_or_else(super::token::Sealer::random_key);
        let mut capabilities = Vec::new();
        if let Some(limit) = options.max_request_bytes {
            capabilities.push(("vgi-max-request-bytes", limit.to_string()));
        }
        if let Some(limit) = options.max_response_bytes {
            capabilities.push(("vgi-max-response-bytes", limit.to_string()));
        }
        capabilities.push(("vgi-accept-max-response-bytes-support", "true".to_owned()));
        storage::capabilities(server, &options.storage, &mut capabilities);
        let encodings = if options.compression {
            "zstd, gzip"
        } else {
            ""
        };
        capabilities.push(("vgi-supported-encodings", encodings.to_owned()));
        if proof_required {
            capabilities.push(("vgi-proxy-proof-required", "true".to_owned()));
        }
        if let Some(sticky) = &options.sticky {
            capabilities.extend(sticky::Sticky::capabilities(sticky));
        }
        let mut exposed = vec![
            "WWW-Authenticate",
            "X-Request-ID",
            "X-VGI-Content-Encoding",
            "X-VGI-RPC-Error",
        ];
        exposed.extend(capabilities.iter().map(|(name, _)| *name));
        exposed.extend(["VGI-Auth-Reason", "VGI-Auth-Proxy-Required"]);
        let sticky_exposed = options
            .sticky
            .as_ref()
            .map(sticky::Sticky::exposed)
            .unwrap_or_default();
        exposed.extend(sticky_exposed.iter().map(String::as_str));
        // Decimal numbers, fixed ASCII names and values: always valid header parts.
        let capabilities: Vec<_> = capabilities
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect();
        let sticky = options
            .sticky
            .as_ref()
            .map(|s| Arc::new(sticky::Sticky::new(s, &key, server.server_id())));
        Ok(App {
            sticky,
            auth,
            refusals,
            expose: HeaderValue::from_str(&exposed.join(", "))
                .unwrap_or_else(|_| HeaderValue::from_static("*")),
            server: server.clone(),
            options: options.clone(),
            continuations: Continuations::new(&key, options.token_ttl, options.max_held_streams),
            arrow_headers: reply::arrow_headers(&capabilities),
            capabilities,
        })
    }

    /// The request-body cap: the advertised one, or the hard bound.
    pub(crate) fn body_cap(&self) -> u64 {
        self.options
            .max_request_bytes
            .unwrap_or(self.options.body_limit)
    }
}

/// What answers a connection's requests: an application's router (a [`router`] merged
/// with routes of its own), or, for [`serve`] and `serve_tls`, the one handler called
/// directly, without the router's routing and boxing of every request.
#[derive(Clone)]
pub(crate) enum Routes {
    Router(axum::Router),
    Handler(Arc<App>),
}

impl Routes {
    pub(crate) async fn answer(self, request: axum::extract::Request) -> axum::response::Response {
        match self {
            Routes::Router(mut router) => {
                match tower_service::Service::call(&mut router, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Routes::Handler(app) => {
                let head = request.method() == Method::HEAD;
                let mut response = handler::handle(axum::extract::State(app), request).await;
                if head {
                    // As the router answers HEAD: the length a GET's body would have, no
                    // body (hyper adds `Content-Length` to every other answer itself).
                    if !response.headers().contains_key(header::CONTENT_LENGTH)
                        && let Some(length) = response.body().size_hint().exact()
                    {
                        response
                            .headers_mut()
                            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                    }
                    *response.body_mut() = axum::body::Body::empty();
                }
                response
            }
        }
    }
}

/// The routes serving `server`, to nest in an application or serve with [`serve`].
///
/// The peer address reaches the access log (and authenticators) when the router is
/// served with `into_make_service_with_connect_info::<std::net::SocketAddr>()` (as [`serve`]
/// adds it itself).
///
/// # Errors
/// The authentication cannot be composed (see
/// [`super::auth::compose_identity`]).
pub fn router(server: &Server, options: &HttpOptions) -> Result<axum::Router> {
    let app = Arc::new(App::new(server, options)?);
    Ok(axum::Router::new()
        .fallback(handler::handle)
        .with_state(app))
}

/// What [`serve`] and `serve_tls` answer with: the [`router`]'s one handler, called
/// directly ([`Routes`]).
fn routes(server: &Server, options: &HttpOptions) -> Result<Routes> {
    Ok(Routes::Handler(Arc::new(App::new(server, options)?)))
}

/// Serves `server` on `listener` (already bound) on a tokio runtime of its own, until
/// `shutdown` is triggered; requests in flight then finish.
///
/// # Errors
/// Fails when the runtime cannot start or the listener fails.
pub fn serve(
    server: &Server,
    options: &HttpOptions,
    listener: std::net::TcpListener,
    shutdown: &Shutdown,
) -> Result<()> {
    serve_routes(routes(server, options)?, listener, shutdown)
}

/// Serves `app` (a [`router`], possibly merged with routes of the application's own) on
/// `listener` as [`serve`] does: up to [`CONNECTION_THREADS`] connections on threads of
/// their own, where calls run inline (`conn.rs`), the rest as tasks that hand each call
/// to the blocking pool.
///
/// # Errors
/// Fails when the runtime cannot start or the listener fails.
pub fn serve_router(
    app: axum::Router,
    listener: std::net::TcpListener,
    shutdown: &Shutdown,
) -> Result<()> {
    serve_routes(Routes::Router(app), listener, shutdown)
}

fn serve_routes(
    routes: Routes,
    listener: std::net::TcpListener,
    shutdown: &Shutdown,
) -> Result<()> {
    let (runtime, stopped) = runtime_until(shutdown)?;
    listener.set_nonblocking(true)?;
    runtime.block_on(conn::accept_loop(
        listener,
        stopped,
        move |tcp, remote, closed| {
            conn::http1(tcp, remote, routes.clone(), None::<()>, false, closed)
        },
    ))?;
    Ok(())
}

/// A runtime for one server, and a future that completes once `shutdown` triggers
/// (watched from a thread of its own: `Shutdown` is a blocking handle).
fn runtime_until(
    shutdown: &Shutdown,
) -> Result<(
    tokio::runtime::Runtime,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = shutdown.clone();
    std::thread::Builder::new()
        .name("vgi-rpc-http-stop".into())
        .spawn(move || {
            watcher.wait();
            let _ = stop.send(());
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vgi-rpc-http")
        .build()?;
    Ok((runtime, async move {
        let _ = stopped.await;
    }))
}

//! Sticky sessions over HTTP: the worker-side registry, the sealed `VGI-Session` token,
//! the per-request scope the engine's handlers reach, and `DELETE {prefix}/__session__`
//! (the reference's `docs/sticky-sessions-spec.md`, vgi-rpc 0.52.2).
//!
//! State lives only in this worker: the token names the worker (`server_id`) and a
//! random 12-byte session id, sealed with XChaCha20-Poly1305 under the deployment's
//! token key and bound to the caller through the associated data (domain and principal,
//! or `anonymous`), so a forged, tampered, foreign-principal or foreign-worker token all
//! end the same way: `SessionLostError`. Memory is bounded: at most
//! [`StickyOptions::max_sessions`] live sessions, each with a TTL enforced on lookup and
//! by a once-a-second sweep. Calls on one session are serialized by a per-session lock
//! held from resolution until the answer is built; different sessions run in parallel.

mod options;
mod registry;
mod scope;
mod token;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore as _;

pub use options::{DrainHandle, StickyOptions};
use registry::{Entry, Registry};
pub(crate) use scope::Bound;
use scope::{RequestScope, ScopeState};
use token::{Sealer, aad, lost, principal_key};

use super::reply;
use crate::server::AuthContext;
use crate::server::sticky::SessionValue;
use crate::{ErrorCode, RpcError};

/// The framework-managed route, under the prefix.
pub(crate) const SESSION_ROUTE: &str = "__session__";
const SESSION_HEADER: &str = "vgi-session";
const ACCEPT_HEADER: &str = "vgi-session-accept";
const CLOSE_HEADER: &str = "vgi-session-close";
const ECHO_PREFIX: &str = "vgi-echo-";
const SESSION_ID_LEN: usize = 12;
/// How often expired sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A server's sticky machinery (one per [`App`](super::App)).
pub(crate) struct Sticky {
    sealer: Sealer,
    default_ttl: Duration,
    max_sessions: usize,
    echo: Vec<(HeaderName, HeaderValue)>,
    drain: DrainHandle,
    registry: Arc<Registry>,
    sweeping: AtomicBool,
}

impl Sticky {
    /// The machinery for `options`, sealing with `key`; `server_id` names this worker.
    pub(crate) fn new(options: &StickyOptions, key: &[u8; 32], server_id: &str) -> Self {
        let echo = options
            .echo_headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(format!("{ECHO_PREFIX}{name}").as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        let registry = Arc::new(Registry::default());
        options.drain_handle().register(&registry);
        Sticky {
            sealer: Sealer::new(key, server_id),
            default_ttl: options.default_ttl,
            max_sessions: options.max_sessions,
            echo,
            drain: options.drain_handle(),
            registry,
            sweeping: AtomicBool::new(false),
        }
    }

    /// The capability headers (name, value) a sticky server sends on every response.
    pub(crate) fn capabilities(options: &StickyOptions) -> Vec<(&'static str, String)> {
        let mut caps = vec![
            ("vgi-sticky-enabled", "true".to_owned()),
            (
                "vgi-sticky-default-ttl",
                options.default_ttl.as_secs().to_string(),
            ),
        ];
        if !options.echo_headers.is_empty() {
            let names: Vec<&str> = options
                .echo_headers
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            caps.push(("vgi-sticky-echo-headers", names.join(", ")));
        }
        caps
    }

    /// The session headers a browser client must be able to read (CORS).
    pub(crate) fn exposed(options: &StickyOptions) -> Vec<String> {
        let mut names = vec!["VGI-Session".to_owned(), "VGI-Session-Close".to_owned()];
        names.extend(
            options
                .echo_headers
                .iter()
                .map(|(name, _)| format!("VGI-Echo-{name}")),
        );
        names
    }

    /// Starts the expiry sweep on the serving runtime (once; it ends with the server).
    fn ensure_sweeping(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let registry = Arc::downgrade(&self.registry);
        if let Some(runtime) = super::conn::background() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(SWEEP_EVERY);
                loop {
                    tick.tick().await;
                    let Some(registry) = registry.upgrade() else {
                        break;
                    };
                    registry.sweep();
                }
            });
        }
    }

    /// Resolves the request's `VGI-Session` token (if any) and takes the session's lock.
    ///
    /// # Errors
    /// The `SessionLostError` to answer with when a presented token does not resolve.
    pub(crate) async fn resolve(
        self: &Arc<Self>,
        headers: &HeaderMap,
        auth: &AuthContext,
    ) -> Result<Bound, Box<RpcError>> {
        self.ensure_sweeping();
        let accept = headers
            .get(ACCEPT_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let aad = aad(auth);
        let principal = principal_key(auth);
        let mut bound = None;
        let mut guard = None;
        if let Some(token) = headers.get(SESSION_HEADER).filter(|v| !v.is_empty()) {
            let token = token
                .to_str()
                .map_err(|_| lost("malformed session token"))?;
            let (server_id, id, _) = self.sealer.open(token.trim(), &aad)?;
            if server_id != self.sealer.server_id {
                return Err(lost(
                    "session token was issued by a different worker (server_id mismatch)",
                ));
            }
            let entry = self
                .registry
                .get(&id, &principal)
                .ok_or_else(|| lost("session not found, expired, or principal mismatch"))?;
            guard = Some(Arc::clone(&entry.lock).lock_owned().await);
            bound = Some((Arc::clone(&entry.value), id));
        }
        Ok(Bound {
            scope: Arc::new(RequestScope {
                sticky: Arc::clone(self),
                accept,
                principal,
                aad,
                state: Mutex::new(ScopeState {
                    touched: bound.as_ref().map(|(_, id)| *id),
                    action: if bound.is_some() { "resume" } else { "none" },
                    bound,
                    minted: None,
                    closed: false,
                }),
            }),
            _guard: guard,
        })
    }

    /// `{prefix}/__session__`: `DELETE` closes the presented session (204) and answers
    /// 200 on any failure, so a stolen token cannot probe whether a session exists.
    pub(crate) async fn route(
        &self,
        method: &Method,
        headers: &HeaderMap,
        auth: &AuthContext,
    ) -> Response {
        match *method {
            Method::DELETE => {}
            Method::OPTIONS => return reply::options("DELETE", true),
            _ => return reply::not_allowed("DELETE, OPTIONS"),
        }
        let idempotent = || reply::json(StatusCode::OK, String::new());
        let Some(token) = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        else {
            return idempotent();
        };
        let Ok((server_id, id, _)) = self.sealer.open(token.trim(), &aad(auth)) else {
            return idempotent();
        };
        if server_id != self.sealer.server_id {
            return idempotent();
        }
        let Some(entry) = self.registry.get(&id, &principal_key(auth)) else {
            return idempotent();
        };
        // Queue behind a call in flight on the session.
        let guard = entry.lock.lock().await;
        self.registry.remove(&id);
        drop(guard);
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
            .headers_mut()
            .insert(CLOSE_HEADER, HeaderValue::from_static("true"));
        response
    }

    fn open_session(
        &self,
        value: SessionValue,
        ttl: Option<Duration>,
        principal: &str,
    ) -> crate::Result<[u8; SESSION_ID_LEN]> {
        if self.drain.is_draining() {
            return Err(RpcError::new(
                "ServerDrainingError",
                "server is draining \u{2014} new sessions are rejected",
            )
            .with_code(ErrorCode::Unavailable)
            .with_kind("server_draining")
            .with_retry_after(Duration::from_secs(1))
            .into());
        }
        let ttl = ttl.unwrap_or(self.default_ttl);
        let mut id = [0u8; SESSION_ID_LEN];
        OsRng.fill_bytes(&mut id);
        let entry = Arc::new(Entry {
            value,
            expires: Instant::now() + ttl,
            principal: principal.to_owned(),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        });
        let mut entries = self.registry.entries();
        if entries.len() >= self.max_sessions {
            drop(entries);
            self.registry.sweep();
            entries = self.registry.entries();
            if entries.len() >= self.max_sessions {
                return Err(RpcError::runtime_error(format!(
                    "this worker holds its maximum of {} sticky sessions",
                    self.max_sessions
                ))
                .with_code(ErrorCode::ResourceExhausted)
                .into());
            }
        }
        entries.insert(id, entry);
        Ok(id)
    }
}

/// Adds `headers` to `response`.
pub(crate) fn apply(response: &mut Response, headers: Vec<(HeaderName, HeaderValue)>) {
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
}

/// The answer to a request whose token did not resolve: a 200 flagged
/// `X-VGI-RPC-Error` carrying the `SessionLostError` on the empty schema.
pub(crate) fn lost_answer(
    app: &super::App,
    peer: crate::server::Peer,
    request_id: String,
    error: &RpcError,
    headers: &HeaderMap,
) -> Response {
    let mut shot = crate::server::oneshot::OneShot::new(&app.server, peer, request_id);
    let _ = shot.reject_untraced(error);
    let (body, coding) =
        reply::encode_body(reply::coding_for(app, headers), shot.body.take_parts());
    reply::arrow(app, 200, body, true, coding)
}

#[cfg(test)]
mod tests;

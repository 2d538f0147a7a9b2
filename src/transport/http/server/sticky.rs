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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tokio::sync::OwnedMutexGuard;

use super::reply;
use crate::server::AuthContext;
use crate::server::sticky::{SessionValue, StickyScope};
use crate::{ErrorCode, RpcError};

/// The framework-managed route, under the prefix.
pub(crate) const SESSION_ROUTE: &str = "__session__";
const SESSION_HEADER: &str = "vgi-session";
const ACCEPT_HEADER: &str = "vgi-session-accept";
const CLOSE_HEADER: &str = "vgi-session-close";
const ECHO_PREFIX: &str = "vgi-echo-";
const TOKEN_VERSION: u8 = 1;
const SESSION_ID_LEN: usize = 12;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// A token longer than this is not one of ours (a 255-byte server id seals to ~430).
const MAX_TOKEN_CHARS: usize = 1024;
/// Decodes base64url as Python's `urlsafe_b64decode` after re-padding: padding optional,
/// stray trailing bits ignored (what fails then is the seal, as in the reference).
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);
/// How often expired sessions are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Sticky sessions of an HTTP server ([`HttpOptions::sticky`](super::HttpOptions::sticky)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StickyOptions {
    /// Lifetime of a session opened without its own TTL (advertised, in whole seconds,
    /// as `VGI-Sticky-Default-TTL`). Default 300 s.
    pub default_ttl: Duration,
    /// Headers a client must replay on every request of a session: each goes out once,
    /// as `VGI-Echo-<name>: <value>`, on the response that opens the session, and the
    /// names are advertised in `VGI-Sticky-Echo-Headers` (e.g. `fly-force-instance-id`
    /// for client-driven routing). Default: none.
    pub echo_headers: Vec<(String, String)>,
    /// Live sessions this worker holds at most; an open beyond it fails. Default 10000.
    pub max_sessions: usize,
    drain: DrainHandle,
}

impl Default for StickyOptions {
    fn default() -> Self {
        StickyOptions {
            default_ttl: Duration::from_secs(300),
            echo_headers: Vec::new(),
            max_sessions: 10_000,
            drain: DrainHandle::default(),
        }
    }
}

impl StickyOptions {
    /// The defaults.
    pub fn new() -> Self {
        StickyOptions::default()
    }

    /// Sets [`StickyOptions::default_ttl`] (at least one second).
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Adds an echo header ([`StickyOptions::echo_headers`]).
    #[must_use]
    pub fn echo_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.echo_headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`StickyOptions::max_sessions`].
    #[must_use]
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// The operator's handle on the servers built with these options: drain (refuse new
    /// sessions, keep serving live ones) and shut the live sessions down.
    pub fn drain_handle(&self) -> DrainHandle {
        self.drain.clone()
    }
}

/// Graceful drain of sticky sessions (the reference's `drain_handle`): while draining,
/// opening a session fails with `ServerDrainingError`; live sessions keep serving until
/// they close or expire, or [`DrainHandle::shutdown`] releases them all.
#[derive(Debug, Clone, Default)]
pub struct DrainHandle {
    shared: Arc<DrainShared>,
}

#[derive(Debug, Default)]
struct DrainShared {
    draining: AtomicBool,
    registries: Mutex<Vec<Weak<Registry>>>,
}

impl DrainHandle {
    /// Starts draining: new sessions are refused.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
    }

    /// Stops draining (a test fixture's undo; deployments only ever drain).
    pub fn resume(&self) {
        self.shared.draining.store(false, Ordering::SeqCst);
    }

    /// Whether [`DrainHandle::drain`] is in effect.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::SeqCst)
    }

    /// Releases every live session (their values are dropped once no call uses them).
    pub fn shutdown(&self) {
        let registries: Vec<Arc<Registry>> = match self.shared.registries.lock() {
            Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        };
        for registry in registries {
            registry.clear();
        }
    }
}

/// One live session.
struct Entry {
    value: SessionValue,
    expires: Instant,
    principal: String,
    /// Serializes the calls on this session.
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// The live sessions of one server.
#[derive(Default)]
struct Registry {
    entries: Mutex<HashMap<[u8; SESSION_ID_LEN], Arc<Entry>>>,
}

impl Registry {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; SESSION_ID_LEN], Arc<Entry>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live entry `id` of `principal`; an expired one is evicted on the way.
    fn get(&self, id: &[u8; SESSION_ID_LEN], principal: &str) -> Option<Arc<Entry>> {
        let mut entries = self.entries();
        let entry = entries.get(id)?;
        if entry.expires <= Instant::now() {
            let expired = entries.remove(id);
            drop(entries);
            drop(expired);
            return None;
        }
        (entry.principal == principal).then(|| Arc::clone(entry))
    }

    fn remove(&self, id: &[u8; SESSION_ID_LEN]) -> bool {
        let removed = self.entries().remove(id);
        removed.is_some()
    }

    fn sweep(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.entries().retain(|_, entry| {
            let live = entry.expires > now;
            if !live {
                expired.push(Arc::clone(entry));
            }
            live
        });
        // Values drop here, outside the lock.
        drop(expired);
    }

    fn clear(&self) {
        let all = std::mem::take(&mut *self.entries());
        drop(all);
    }
}

/// A server's sticky machinery (one per [`App`](super::App)).
pub(crate) struct Sticky {
    cipher: XChaCha20Poly1305,
    server_id: String,
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
        if let Ok(mut list) = options.drain.shared.registries.lock() {
            list.retain(|weak| weak.strong_count() > 0);
            list.push(Arc::downgrade(&registry));
        }
        Sticky {
            cipher: XChaCha20Poly1305::new(key.into()),
            server_id: server_id.to_owned(),
            default_ttl: options.default_ttl,
            max_sessions: options.max_sessions,
            echo,
            drain: options.drain.clone(),
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
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
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
    ) -> Result<Bound, RpcError> {
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
            let (server_id, id, _) = self.open_token(token.trim(), &aad)?;
            if server_id != self.server_id {
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
        let Ok((server_id, id, _)) = self.open_token(token.trim(), &aad(auth)) else {
            return idempotent();
        };
        if server_id != self.server_id {
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
    ) -> Result<[u8; SESSION_ID_LEN], RpcError> {
        if self.drain.is_draining() {
            return Err(RpcError::new(
                "ServerDrainingError",
                "server is draining \u{2014} new sessions are rejected",
            )
            .with_code(ErrorCode::Unavailable)
            .with_kind("server_draining")
            .with_retry_after(Duration::from_secs(1)));
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
                .with_code(ErrorCode::ResourceExhausted));
            }
        }
        entries.insert(id, entry);
        Ok(id)
    }

    /// `created_at u64 | server_id_len u8 | server_id | session_id 12 | expires_at u64`
    /// (little-endian), sealed as `version | nonce | ciphertext+tag`, base64url.
    fn seal_token(&self, id: &[u8; SESSION_ID_LEN], expires_at: u64, aad: &[u8]) -> String {
        let now = unix_now();
        let server_id = self.server_id.as_bytes();
        let server_id = &server_id[..server_id.len().min(255)];
        let mut plain = Vec::with_capacity(8 + 1 + server_id.len() + SESSION_ID_LEN + 8);
        plain.extend_from_slice(&now.to_le_bytes());
        plain.push(server_id.len() as u8);
        plain.extend_from_slice(server_id);
        plain.extend_from_slice(id);
        plain.extend_from_slice(&expires_at.to_le_bytes());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Sealing in memory with a valid key cannot fail; an empty ciphertext would
        // simply never open.
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: &plain, aad })
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        raw.push(TOKEN_VERSION);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Opens a token: `(server_id, session_id, expires_at)`.
    fn open_token(
        &self,
        token: &str,
        aad: &[u8],
    ) -> Result<(String, [u8; SESSION_ID_LEN], u64), RpcError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(lost("malformed session token"));
        }
        let raw = LENIENT
            .decode(token)
            .map_err(|_| lost("malformed session token"))?;
        if raw.len() < 1 + NONCE_LEN + TAG_LEN || raw[0] != TOKEN_VERSION {
            return Err(lost("session token verification failed"));
        }
        let nonce = XNonce::from_slice(&raw[1..1 + NONCE_LEN]);
        let plain = self
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &raw[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| lost("session token verification failed"))?;
        let malformed = || lost("malformed session token");
        let (server_len, rest) = plain
            .get(8..)
            .and_then(<[u8]>::split_first)
            .ok_or_else(malformed)?;
        let server_len = usize::from(*server_len);
        if rest.len() != server_len + SESSION_ID_LEN + 8 {
            return Err(malformed());
        }
        let server_id = String::from_utf8_lossy(&rest[..server_len]).into_owned();
        let mut id = [0u8; SESSION_ID_LEN];
        id.copy_from_slice(&rest[server_len..server_len + SESSION_ID_LEN]);
        let mut expires = [0u8; 8];
        expires.copy_from_slice(&rest[server_len + SESSION_ID_LEN..]);
        let expires_at = u64::from_le_bytes(expires);
        if expires_at < unix_now() {
            return Err(lost("session not found, expired, or principal mismatch"));
        }
        Ok((server_id, id, expires_at))
    }
}

/// A request's sticky scope and, when it resumed a session, that session's lock.
pub(crate) struct Bound {
    scope: Arc<RequestScope>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl Bound {
    /// Makes the scope the serving thread's for as long as the guard lives.
    pub(crate) fn enter(&self) -> crate::server::sticky::Entered {
        let scope: Arc<dyn StickyScope> = self.scope.clone();
        crate::server::sticky::enter(scope)
    }

    /// The response headers the request's session activity calls for; releases the
    /// session's lock.
    pub(crate) fn finish(self) -> Vec<(HeaderName, HeaderValue)> {
        let state = self.scope.state();
        let mut headers = Vec::new();
        if let Some(token) = &state.minted
            && let Ok(value) = HeaderValue::from_str(token)
        {
            headers.push((HeaderName::from_static(SESSION_HEADER), value));
            headers.extend(self.scope.sticky.echo.iter().cloned());
        }
        if state.closed {
            headers.push((
                HeaderName::from_static(CLOSE_HEADER),
                HeaderValue::from_static("true"),
            ));
        }
        headers
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
    let (body, coding) = reply::encode_body(reply::coding_for(app, headers), shot.body.bytes);
    reply::arrow(200, body, true, coding)
}

struct ScopeState {
    bound: Option<(SessionValue, [u8; SESSION_ID_LEN])>,
    minted: Option<String>,
    closed: bool,
}

/// One request's view of the sticky machinery (what handlers reach through
/// `crate::server::sticky`).
struct RequestScope {
    sticky: Arc<Sticky>,
    accept: bool,
    principal: String,
    aad: Vec<u8>,
    state: Mutex<ScopeState>,
}

impl RequestScope {
    fn state(&self) -> std::sync::MutexGuard<'_, ScopeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StickyScope for RequestScope {
    fn current(&self) -> Option<(SessionValue, String)> {
        let state = self.state();
        let (value, id) = state.bound.as_ref()?;
        Some((Arc::clone(value), crate::hex::encode(id)))
    }

    fn open(&self, value: SessionValue, ttl: Option<Duration>) -> Result<(), RpcError> {
        if !self.accept {
            return Err(RpcError::runtime_error(
                "client did not opt in to sticky sessions (missing VGI-Session-Accept: true header \u{2014} open the call inside an HttpConnection.with_session_token() block)",
            ));
        }
        let mut state = self.state();
        if state.bound.is_some() {
            return Err(RpcError::runtime_error(
                "a sticky session is already active for this request",
            ));
        }
        let ttl = ttl.unwrap_or(self.sticky.default_ttl);
        let id = self
            .sticky
            .open_session(Arc::clone(&value), Some(ttl), &self.principal)?;
        let expires_at = unix_now().saturating_add(ttl.as_secs());
        state.minted = Some(self.sticky.seal_token(&id, expires_at, &self.aad));
        state.bound = Some((value, id));
        Ok(())
    }

    fn close(&self) -> bool {
        let taken = {
            let mut state = self.state();
            state.closed = true;
            state.bound.take()
        };
        match taken {
            Some((value, id)) => {
                let hit = self.sticky.registry.remove(&id);
                drop(value);
                hit
            }
            None => false,
        }
    }
}

fn lost(message: &str) -> RpcError {
    RpcError::new("SessionLostError", message)
        .with_code(ErrorCode::Aborted)
        .with_kind("session_lost")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The peer-evidence digest an authenticator may attach (`peer_evidence_binding`).
fn evidence(auth: &AuthContext) -> Option<&str> {
    auth.claims
        .get("peer_evidence_binding")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The associated data binding a token to its caller: the reference's state-token AAD
/// at server scope (`vgi_rpc.state.v6`/`v7`, identity tail, `\0\0server`).
fn aad(auth: &AuthContext) -> Vec<u8> {
    let binding = evidence(auth);
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(if binding.is_some() {
        b"vgi_rpc.state.v7\x00"
    } else {
        b"vgi_rpc.state.v6\x00"
    });
    if auth.authenticated {
        aad.push(1);
        aad.extend_from_slice(auth.domain.as_deref().unwrap_or_default().as_bytes());
        aad.push(0);
        aad.extend_from_slice(auth.principal.as_deref().unwrap_or_default().as_bytes());
    } else {
        aad.extend_from_slice(b"\x00anonymous");
    }
    if let Some(binding) = binding {
        aad.push(0);
        aad.extend_from_slice(binding.as_bytes());
    }
    aad.extend_from_slice(b"\x00\x00server");
    aad
}

/// The registry's defence-in-depth owner check (the AAD already binds the token).
fn principal_key(auth: &AuthContext) -> String {
    let base = if auth.authenticated {
        format!(
            "{}\0{}",
            auth.domain.as_deref().unwrap_or_default(),
            auth.principal.as_deref().unwrap_or_default()
        )
    } else {
        "\0anonymous".to_owned()
    };
    match evidence(auth) {
        Some(binding) => format!("{base}\0{binding}"),
        None => base,
    }
}

#[cfg(test)]
mod tests;

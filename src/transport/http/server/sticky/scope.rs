//! One request's sticky scope: what the engine's handlers reach through
//! `crate::server::sticky` while the request runs, and the response headers it leaves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use tokio::sync::OwnedMutexGuard;

use super::token::unix_now;
use super::{CLOSE_HEADER, SESSION_HEADER, SESSION_ID_LEN, Sticky};
use crate::RpcError;
use crate::server::sticky::{SessionValue, StickyScope};

/// A request's sticky scope and, when it resumed a session, that session's lock.
pub(crate) struct Bound {
    pub(super) scope: Arc<RequestScope>,
    pub(super) _guard: Option<OwnedMutexGuard<()>>,
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

pub(super) struct ScopeState {
    pub(super) bound: Option<(SessionValue, [u8; SESSION_ID_LEN])>,
    pub(super) minted: Option<String>,
    pub(super) closed: bool,
    /// The session this request resumed, opened or closed (for the access log).
    pub(super) touched: Option<[u8; SESSION_ID_LEN]>,
    /// `none`, `resume`, `open` or `close` (the access log's `session_action`).
    pub(super) action: &'static str,
}

/// One request's view of the sticky machinery (what handlers reach through
/// `crate::server::sticky`).
pub(super) struct RequestScope {
    pub(super) sticky: Arc<Sticky>,
    pub(super) accept: bool,
    pub(super) principal: String,
    pub(super) aad: Vec<u8>,
    pub(super) state: Mutex<ScopeState>,
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

    fn open(&self, value: SessionValue, ttl: Option<Duration>) -> crate::Result<()> {
        if !self.accept {
            return Err(RpcError::runtime_error(
                "client did not opt in to sticky sessions (missing VGI-Session-Accept: true header \u{2014} open the call inside an HttpConnection.with_session_token() block)",
            )
            .into());
        }
        let mut state = self.state();
        if state.bound.is_some() {
            return Err(RpcError::runtime_error(
                "a sticky session is already active for this request",
            )
            .into());
        }
        let ttl = ttl.unwrap_or(self.sticky.default_ttl);
        let id = self
            .sticky
            .open_session(Arc::clone(&value), Some(ttl), &self.principal)?;
        let expires_at = unix_now().saturating_add(ttl.as_secs());
        state.minted = Some(self.sticky.sealer.seal(&id, expires_at, &self.aad));
        state.bound = Some((value, id));
        state.touched = Some(id);
        state.action = "open";
        Ok(())
    }

    fn log_fields(&self) -> (Option<String>, &'static str) {
        let state = self.state();
        (
            state.touched.map(|id| crate::hex::encode(&id)),
            state.action,
        )
    }

    fn close(&self) -> bool {
        let taken = {
            let mut state = self.state();
            state.closed = true;
            state.action = "close";
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

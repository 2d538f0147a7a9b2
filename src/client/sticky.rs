//! The client's half of HTTP sticky sessions: which session the next request belongs to
//! (the reference's `with_session_token()` views, `docs/sticky-sessions-spec.md` §2).
//!
//! [`StickySessions`] is a stack of session scopes shared between the caller and the
//! HTTP transport ([`HttpConnectOptions::with_sticky_sessions`](super::HttpConnectOptions::with_sticky_sessions)).
//! While a scope is open every request carries `VGI-Session-Accept: true`, the scope's
//! token once it has one, and the `VGI-Echo-*` headers the server asked to be replayed;
//! every answer's `VGI-Session` (a new token), `VGI-Echo-<name>` and `VGI-Session-Close`
//! update the innermost scope. Scopes nest: ending one restores the one around it, so an
//! inner session never clobbers an outer one. Ending a scope whose session is still live
//! yields its token for the best-effort `DELETE {prefix}/__session__` the transport sends
//! (`vgi_rpc::transport::http::client::end_session`). No state lives here beyond the
//! tokens: losing a session is always the server's `SessionLostError`, never a retry.

use std::sync::{Arc, Mutex, MutexGuard};

/// Request header opting in to sessions.
pub const SESSION_ACCEPT_HEADER: &str = "VGI-Session-Accept";
/// Request and response header carrying the session token.
pub const SESSION_HEADER: &str = "VGI-Session";
/// Response header telling the client to forget the session.
pub const SESSION_CLOSE_HEADER: &str = "VGI-Session-Close";
/// Prefix of the response headers a session asks the client to replay.
pub const ECHO_HEADER_PREFIX: &str = "VGI-Echo-";

/// One `with_session_token()` scope.
#[derive(Debug, Default, Clone)]
struct Scope {
    token: Option<String>,
    echo: Vec<(String, String)>,
    /// Closed by the server or detached by the caller: no `DELETE` at the end.
    done: bool,
}

/// The session a scope leaves behind when it ends: what the `DELETE` must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// The live session's token.
    pub token: String,
    /// The echo headers captured for it.
    pub echo_headers: Vec<(String, String)>,
}

/// A stack of sticky-session scopes, shared (cheap clones) between the caller and the
/// HTTP link whose requests it decorates.
#[derive(Debug, Clone, Default)]
pub struct StickySessions {
    scopes: Arc<Mutex<Vec<Scope>>>,
}

impl PartialEq for StickySessions {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.scopes, &other.scopes)
    }
}

impl Eq for StickySessions {}

impl StickySessions {
    /// No scope open: requests carry no session headers.
    pub fn new() -> Self {
        StickySessions::default()
    }

    fn scopes(&self) -> MutexGuard<'_, Vec<Scope>> {
        // A panic mid-update leaves at worst a stale token, which the server refuses.
        self.scopes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a scope: the server may mint a session in it, or `token` (a stashed one,
    /// empty meaning none) resumes an existing session.
    pub fn begin(&self, token: Option<String>) {
        self.scopes().push(Scope {
            token: token.filter(|t| !t.is_empty()),
            ..Scope::default()
        });
    }

    /// Whether any scope is open.
    pub fn is_active(&self) -> bool {
        !self.scopes().is_empty()
    }

    /// The innermost scope's token.
    pub fn token(&self) -> Option<String> {
        self.scopes().last().and_then(|s| s.token.clone())
    }

    /// The echo headers the innermost scope captured (name without `VGI-Echo-`).
    pub fn echo_headers(&self) -> Vec<(String, String)> {
        self.scopes()
            .last()
            .map(|s| s.echo.clone())
            .unwrap_or_default()
    }

    /// Hands the innermost session's token to the caller: the session outlives the
    /// scope (no `DELETE` when it ends) until its TTL or an explicit close.
    pub fn detach(&self) -> Option<String> {
        let mut scopes = self.scopes();
        let scope = scopes.last_mut()?;
        scope.done = true;
        scope.token.take()
    }

    /// Ends the innermost scope (none open: nothing happens); its still-live session,
    /// if any, is returned for the best-effort `DELETE`.
    pub fn end(&self) -> Option<EndedSession> {
        let scope = self.scopes().pop()?;
        match (scope.done, scope.token) {
            (false, Some(token)) => Some(EndedSession {
                token,
                echo_headers: scope.echo,
            }),
            _ => None,
        }
    }

    /// The headers a request carries now (none outside every scope).
    pub fn request_headers(&self) -> Vec<(String, String)> {
        let scopes = self.scopes();
        let Some(scope) = scopes.last() else {
            return Vec::new();
        };
        let mut headers = vec![(SESSION_ACCEPT_HEADER.to_owned(), "true".to_owned())];
        if let Some(token) = &scope.token {
            headers.push((SESSION_HEADER.to_owned(), token.clone()));
        }
        headers.extend(scope.echo.iter().cloned());
        headers
    }

    /// Takes in an answer's session headers (names compared case-insensitively).
    pub fn capture<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) {
        let mut scopes = self.scopes();
        let Some(scope) = scopes.last_mut() else {
            return;
        };
        let mut close = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(SESSION_HEADER) {
                if !value.is_empty() {
                    scope.token = Some(value.to_owned());
                }
            } else if name.eq_ignore_ascii_case(SESSION_CLOSE_HEADER) {
                close |= value.trim().eq_ignore_ascii_case("true");
            } else if name.len() > ECHO_HEADER_PREFIX.len()
                && name.is_char_boundary(ECHO_HEADER_PREFIX.len())
                && name[..ECHO_HEADER_PREFIX.len()].eq_ignore_ascii_case(ECHO_HEADER_PREFIX)
            {
                let inner = &name[ECHO_HEADER_PREFIX.len()..];
                scope.echo.retain(|(n, _)| !n.eq_ignore_ascii_case(inner));
                scope.echo.push((inner.to_owned(), value.to_owned()));
            }
        }
        if close {
            scope.token = None;
            scope.echo.clear();
            scope.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_scope_requests_carry_nothing() {
        let s = StickySessions::new();
        assert!(s.request_headers().is_empty());
        s.capture([("VGI-Session", "t")]);
        assert_eq!(s.token(), None);
        assert_eq!(s.end(), None, "ending with no scope is a no-op");
    }

    #[test]
    fn a_scope_captures_replays_and_deletes() {
        let s = StickySessions::new();
        s.begin(None);
        assert_eq!(
            s.request_headers(),
            [("VGI-Session-Accept".to_owned(), "true".to_owned())]
        );
        s.capture([
            ("vgi-session", "tok"),
            ("vgi-echo-fly-force-instance-id", "m1"),
        ]);
        assert_eq!(s.token().as_deref(), Some("tok"));
        assert_eq!(
            s.request_headers(),
            [
                ("VGI-Session-Accept".to_owned(), "true".to_owned()),
                ("VGI-Session".to_owned(), "tok".to_owned()),
                ("fly-force-instance-id".to_owned(), "m1".to_owned()),
            ]
        );
        let ended = s.end().unwrap();
        assert_eq!(ended.token, "tok");
        assert_eq!(ended.echo_headers.len(), 1);
        assert!(!s.is_active());
    }

    #[test]
    fn close_and_detach_suppress_the_delete() {
        let s = StickySessions::new();
        s.begin(None);
        s.capture([("VGI-Session", "a"), ("VGI-Echo-x", "1")]);
        s.capture([("VGI-Session-Close", "true")]);
        assert_eq!((s.token(), s.echo_headers().len()), (None, 0));
        assert_eq!(s.end(), None);
        s.begin(Some("b".into()));
        assert_eq!(s.detach().as_deref(), Some("b"));
        assert_eq!(s.token(), None);
        assert_eq!(s.end(), None);
    }

    #[test]
    fn scopes_nest() {
        let s = StickySessions::new();
        s.begin(None);
        s.capture([("VGI-Session", "outer")]);
        s.begin(Some(String::new()));
        assert_eq!(s.token(), None, "an empty token means mint");
        s.capture([("VGI-Session", "inner")]);
        assert_eq!(s.end().map(|e| e.token).as_deref(), Some("inner"));
        assert_eq!(s.token().as_deref(), Some("outer"));
    }
}

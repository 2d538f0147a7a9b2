//! Who the caller authenticated as: the [`AuthContext`] a transport attaches to a
//! [`Peer`](super::Peer), read by handlers through
//! [`CallContext::auth`](super::CallContext::auth), by the access log and by hooks.
//!
//! The engine never authenticates anyone. HTTP derives the context per request from its
//! authenticators (`vgi_rpc::transport::http::auth`); byte-stream transports leave it
//! anonymous, so everything that requires an authenticated caller (`vgi_rpc.Identity.v2`,
//! an interceptor checking a principal) fails closed there.

use serde_json::{Map, Value};

/// The authenticated identity behind a call, or [`AuthContext::anonymous`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AuthContext {
    /// The scheme or realm that vouched for the caller (`"jwt"`, `"bearer"`, `"grant"`,
    /// `"token"`, …); `None` when anonymous.
    pub domain: Option<String>,
    /// Whether any authenticator accepted the caller.
    pub authenticated: bool,
    /// The caller's principal (a user, a service account); `None` when anonymous.
    pub principal: Option<String>,
    /// What the authenticator learned besides the principal (JWT claims, a grant's
    /// scopes); empty when anonymous.
    pub claims: Map<String, Value>,
}

impl AuthContext {
    /// No credential: not authenticated, no principal, no claims.
    pub fn anonymous() -> Self {
        AuthContext::default()
    }

    /// An authenticated caller `principal`, vouched for by `domain`.
    pub fn authenticated(domain: impl Into<String>, principal: impl Into<String>) -> Self {
        AuthContext {
            domain: Some(domain.into()),
            authenticated: true,
            principal: Some(principal.into()),
            claims: Map::new(),
        }
    }

    /// Adds a claim.
    #[must_use]
    pub fn with_claim(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(key.into(), value.into());
        self
    }

    /// The principal, or `""` when there is none (the access log's convention).
    pub fn principal_or_empty(&self) -> &str {
        self.principal.as_deref().unwrap_or("")
    }

    /// The domain, or `""` when there is none.
    pub fn domain_or_empty(&self) -> &str {
        self.domain.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_is_the_default_and_authenticated_sets_all_three() {
        let anon = AuthContext::anonymous();
        assert!(!anon.authenticated);
        assert_eq!(
            (anon.principal_or_empty(), anon.domain_or_empty()),
            ("", "")
        );
        let who = AuthContext::authenticated("jwt", "alice").with_claim("scope", "read");
        assert!(who.authenticated);
        assert_eq!(
            (who.principal_or_empty(), who.domain_or_empty()),
            ("alice", "jwt")
        );
        assert_eq!(who.claims["scope"], "read");
    }
}

//! The two payloads, each carried as a one-row IPC stream in the methods' `result: binary`.
//!
//! Field order is part of the contract (it is the nested schema a peer decodes), and the
//! documented defaults (`token_name = ""`, `ttl_seconds = 300`, `grant_id = ""`) are what
//! the constructors supply when a hook names no value — never a coercion of a value a
//! hook did set: `ttl_seconds = 0` means "do not cache" and reaches the wire as `0`.

use chrono::{DateTime, Utc};

/// The identity an opaque credential authenticates as (`introspect_token`'s answer).
/// It never carries claims: the asker derives what it needs from the principal.
#[derive(Debug, Clone, PartialEq, Eq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct TokenIdentity {
    /// Who the credential belongs to.
    pub principal: String,
    /// The credential's display name (`""` when the resolver names none).
    pub token_name: String,
    /// How long the caller may cache this answer; `0` means do not cache.
    pub ttl_seconds: i64,
}

impl TokenIdentity {
    /// `principal` with the documented defaults: no name, cacheable for 300 seconds.
    pub fn new(principal: impl Into<String>) -> Self {
        TokenIdentity {
            principal: principal.into(),
            token_name: String::new(),
            ttl_seconds: 300,
        }
    }

    /// Names the credential.
    #[must_use]
    pub fn with_token_name(mut self, name: impl Into<String>) -> Self {
        self.token_name = name.into();
        self
    }

    /// Sets how long the answer may be cached, `0` included.
    #[must_use]
    pub fn with_ttl_seconds(mut self, ttl: i64) -> Self {
        self.ttl_seconds = ttl;
        self
    }
}

/// A minted grant (`issue_grant`'s answer): an opaque bearer for unattended automation.
#[derive(Debug, Clone, PartialEq, Eq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct IssuedGrant {
    /// The credential to present later as a bearer.
    pub token: String,
    /// When it stops working, as the minter declares it (the token itself enforces it).
    pub expires_at: DateTime<Utc>,
    /// A correlation handle (`""` when the minter names none).
    pub grant_id: String,
}

impl IssuedGrant {
    /// `token` expiring at `expires_at`, with no grant id.
    pub fn new(token: impl Into<String>, expires_at: DateTime<Utc>) -> Self {
        IssuedGrant {
            token: token.into(),
            expires_at,
            grant_id: String::new(),
        }
    }

    /// Sets the correlation handle.
    #[must_use]
    pub fn with_grant_id(mut self, id: impl Into<String>) -> Self {
        self.grant_id = id.into();
        self
    }
}

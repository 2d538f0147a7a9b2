//! The five refusals `vgi_rpc.Identity.v2` puts on the wire, and what a hook may fail with.
//!
//! A caller classifies by `error_kind` alone (every handler error is the same HTTP
//! status), so each refusal carries its kind and the code WIRE_PROTOCOL §16 names.
//! `identity_unavailable` is transient and carries a `RetryInfo`; it is deliberately not
//! the invalid-argument type, so no authenticator chain reads an outage as "try the next
//! credential". Messages are fixed strings: nothing credential-derived ever appears in
//! one, and the uniform `token_unresolved` answer is identical for every cause.

use std::fmt;
use std::time::Duration;

use crate::{ErrorCode, RpcError};

/// What a [`ResolveToken`](super::ResolveToken) or [`MintGrant`](super::MintGrant) hook
/// may fail with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IdentityFailure {
    /// The mapping store could not answer; the caller may retry after `retry_after`.
    Unavailable {
        /// Operator-facing text (never the credential).
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Minting only: this deployment refuses the request (`grant_refused`).
    Refused(String),
}

impl IdentityFailure {
    /// The store is down; retry after the documented default of five seconds.
    pub fn unavailable(message: impl Into<String>) -> Self {
        IdentityFailure::Unavailable {
            message: message.into(),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// The transport-authentication "could not find out": the authority an authenticator
/// consults is unreachable. An HTTP authenticator answers it with 503 and `Retry-After`;
/// an identity hook that calls the same store may return it too (`?` converts), and the
/// framework reports it as `identity_unavailable` with the same retry hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUnavailable {
    /// Operator-facing text (never the credential).
    pub message: String,
    /// When to try again.
    pub retry_after: Duration,
}

impl AuthUnavailable {
    /// The authority is unreachable; retry after `retry_after`.
    pub fn new(message: impl Into<String>, retry_after: Duration) -> Self {
        AuthUnavailable {
            message: message.into(),
            retry_after,
        }
    }
}

impl fmt::Display for AuthUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuthUnavailable {}

impl From<AuthUnavailable> for IdentityFailure {
    fn from(e: AuthUnavailable) -> Self {
        IdentityFailure::Unavailable {
            message: e.message,
            retry_after: e.retry_after,
        }
    }
}

pub(crate) fn introspection_refused(message: &str) -> RpcError {
    refusal(
        "IntrospectionRefusedError",
        message,
        ErrorCode::PermissionDenied,
        "introspection_refused",
    )
}

/// The one answer for an unknown, malformed, over-long or JWS-shaped credential.
pub(crate) fn token_unresolved() -> RpcError {
    refusal(
        "TokenUnresolvedError",
        "unresolved",
        ErrorCode::NotFound,
        "token_unresolved",
    )
}

pub(crate) fn stale_auth(message: &str) -> RpcError {
    refusal(
        "StaleAuthError",
        message,
        ErrorCode::Unauthenticated,
        "stale_auth",
    )
}

pub(crate) fn grant_refused(message: &str) -> RpcError {
    refusal(
        "GrantRefusedError",
        message,
        ErrorCode::PermissionDenied,
        "grant_refused",
    )
}

pub(crate) fn identity_unavailable(message: &str, retry_after: Duration) -> RpcError {
    let message = if message.is_empty() {
        "identity lookup unavailable"
    } else {
        message
    };
    refusal(
        "IdentityUnavailableError",
        message,
        ErrorCode::Unavailable,
        "identity_unavailable",
    )
    .with_retry_after(retry_after)
}

/// A hook's failure as the wire reports it.
pub(crate) fn from_hook(failure: IdentityFailure) -> RpcError {
    match failure {
        IdentityFailure::Unavailable {
            message,
            retry_after,
        } => identity_unavailable(&message, retry_after),
        IdentityFailure::Refused(message) => grant_refused(&message),
    }
}

fn refusal(error_type: &str, message: &str, code: ErrorCode, kind: &str) -> RpcError {
    RpcError::new(error_type, message)
        .with_code(code)
        .with_kind(kind)
}

//! `Authorization: Bearer` authenticators: a hook, a static table, and the two identity
//! bearers (sealed grants, the resolve hook).
//!
//! Routing between the identity bearers is by prefix and strict both ways: a token
//! without `vgig1.` never reaches the grant verifier, and one with it that fails
//! verification is [`AuthError::Denied`], so it never reaches the resolver either.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{AuthContext, AuthError, AuthReason, AuthRequest, AuthUnavailable, Authenticate};
use crate::identity::{IdentityFailure, ResolveToken, is_resolvable_shape};

/// `AuthContext::domain` of a request authenticated by a sealed grant.
pub const GRANT_DOMAIN: &str = "grant";
/// `AuthContext::domain` of a request authenticated through the resolve hook.
pub const TOKEN_DOMAIN: &str = "token";

const GRANT_PREFIX: &str = "vgig1.";

/// The bearer credential of a request.
///
/// # Errors
/// [`AuthError::Rejected`]: `missing_credential` without an `Authorization` header,
/// `invalid_credential` when it is not a `Bearer` credential.
pub fn bearer_token<'a>(request: &AuthRequest<'a>) -> Result<&'a str, AuthError> {
    if request
        .headers
        .get_all("authorization")
        .iter()
        .nth(1)
        .is_some()
    {
        // Two credentials: which one a proxy or a framework would pick differs, so none.
        return Err(AuthError::denied(
            AuthReason::InvalidCredential,
            "duplicated Authorization header",
        ));
    }
    let header = request.header("authorization").unwrap_or("");
    if header.is_empty() {
        return Err(AuthError::rejected(
            AuthReason::MissingCredential,
            "missing Authorization header",
        ));
    }
    header.strip_prefix("Bearer ").ok_or_else(|| {
        AuthError::rejected(
            AuthReason::InvalidCredential,
            "Authorization is not a Bearer credential",
        )
    })
}

/// Bearer tokens checked by a hook: `Ok(Some(ctx))` accepts, `Ok(None)` rejects
/// (`invalid_credential`), `Err` means the authority is unreachable (503).
pub struct Bearer<F> {
    validate: F,
}

impl<F> Bearer<F>
where
    F: Fn(&str) -> Result<Option<AuthContext>, AuthUnavailable> + Send + Sync + 'static,
{
    /// Bearer authentication through `validate`.
    pub fn new(validate: F) -> Self {
        Bearer { validate }
    }
}

impl<F> Authenticate for Bearer<F>
where
    F: Fn(&str) -> Result<Option<AuthContext>, AuthUnavailable> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let token = bearer_token(request)?;
        (self.validate)(token)?.ok_or_else(|| {
            AuthError::rejected(AuthReason::InvalidCredential, "unknown bearer token")
        })
    }
}

/// A fixed table of bearer tokens. Looked up by SHA-256 digest, so the lookup's timing
/// says nothing about how close a guess came.
pub struct StaticBearer {
    tokens: HashMap<[u8; 32], AuthContext>,
}

impl StaticBearer {
    /// `tokens`: each credential and the identity it authenticates as.
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = (S, AuthContext)>,
        S: AsRef<str>,
    {
        StaticBearer {
            tokens: tokens
                .into_iter()
                .map(|(t, ctx)| (Sha256::digest(t.as_ref().as_bytes()).into(), ctx))
                .collect(),
        }
    }
}

impl Authenticate for StaticBearer {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let token = bearer_token(request)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens.get(&digest).cloned().ok_or_else(|| {
            AuthError::rejected(AuthReason::InvalidCredential, "unknown bearer token")
        })
    }
}

/// The framework's sealed grants as bearers: `domain = "grant"`, the grant's principal,
/// claims `{grant_id, scopes, purpose}` and no `auth_time` (so a grant cannot mint).
pub struct GrantBearer {
    keys: crate::identity::grant::GrantKeys,
}

impl GrantBearer {
    /// Accepts grants sealed with any of `keys`.
    pub fn new(keys: crate::identity::grant::GrantKeys) -> Self {
        GrantBearer { keys }
    }
}

impl Authenticate for GrantBearer {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let token = bearer_token(request)?;
        if !token.starts_with(GRANT_PREFIX) {
            return Err(AuthError::rejected(
                AuthReason::InvalidCredential,
                "not a sealed grant",
            ));
        }
        let claims = crate::identity::grant::verify(&self.keys, token).map_err(|e| {
            let reason = if e.expired {
                AuthReason::ExpiredCredential
            } else {
                AuthReason::InvalidCredential
            };
            AuthError::denied(reason, format!("sealed grant rejected: {e}"))
        })?;
        let scopes: Vec<Value> = claims.scopes.into_iter().map(Value::from).collect();
        Ok(AuthContext::authenticated(GRANT_DOMAIN, claims.principal)
            .with_claim("grant_id", claims.grant_id)
            .with_claim("scopes", scopes)
            .with_claim("purpose", claims.purpose))
    }
}

/// Bearers the deployment's resolve hook answers: `domain = "token"`, the resolved
/// principal, claims `{token_name}`. The hook never sees a sealed grant, a JWS, a blank
/// credential or one over 4096 bytes; an outage is a 503, never a 401.
pub struct ResolveTokenBearer {
    resolver: Arc<dyn ResolveToken>,
}

impl ResolveTokenBearer {
    /// Bearers resolved by `resolver`.
    pub fn new(resolver: Arc<dyn ResolveToken>) -> Self {
        ResolveTokenBearer { resolver }
    }
}

impl Authenticate for ResolveTokenBearer {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let token = bearer_token(request)?;
        if token.starts_with(GRANT_PREFIX) {
            return Err(AuthError::rejected(
                AuthReason::InvalidCredential,
                "sealed grants are not resolved",
            ));
        }
        if !is_resolvable_shape(token) {
            return Err(AuthError::rejected(
                AuthReason::InvalidCredential,
                "bearer credential rejected",
            ));
        }
        match self.resolver.resolve_token(token) {
            Ok(Some(identity)) => Ok(AuthContext::authenticated(TOKEN_DOMAIN, identity.principal)
                .with_claim("token_name", identity.token_name)),
            Ok(None) | Err(IdentityFailure::Refused(_)) => Err(AuthError::rejected(
                AuthReason::InvalidCredential,
                "bearer credential did not resolve",
            )),
            Err(IdentityFailure::Unavailable {
                message,
                retry_after,
            }) => Err(AuthUnavailable::new(message, retry_after).into()),
        }
    }
}

/// The last member of an identity chain on a server with no authenticator of its own:
/// no credential stays anonymous, a credential nothing accepted is a 401.
pub(super) struct AnonymousWithoutCredentials;

impl Authenticate for AnonymousWithoutCredentials {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        if request
            .headers
            .get("authorization")
            .is_some_and(|v| !v.is_empty())
        {
            return Err(AuthError::rejected(
                AuthReason::InvalidCredential,
                "bearer credential not accepted",
            ));
        }
        Ok(AuthContext::anonymous())
    }
}

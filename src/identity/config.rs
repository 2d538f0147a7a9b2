//! A deployment's identity policy: the hooks, the introspector allowlist and the
//! freshness ceiling, checked once when the server is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_MAX_AUTH_AGE, IdentityFailure, IssuedGrant, TokenIdentity};
use crate::{Error, Result};

/// What an opaque credential means: `Ok(Some(identity))` when it resolves, `Ok(None)`
/// when it is unknown (expired, revoked, never issued), or a failure when the store
/// cannot say. Called only with credentials that passed the shape guards, exactly as
/// the caller sent them (untrimmed). Must be a pure function of its argument.
pub trait ResolveToken: Send + Sync + 'static {
    /// Resolves `token`.
    ///
    /// # Errors
    /// [`IdentityFailure::Unavailable`] (or an [`AuthUnavailable`](super::AuthUnavailable)
    /// converted with `?`) when the store cannot answer.
    fn resolve_token(
        &self,
        token: &str,
    ) -> std::result::Result<Option<TokenIdentity>, IdentityFailure>;
}

impl<F> ResolveToken for F
where
    F: Fn(&str) -> std::result::Result<Option<TokenIdentity>, IdentityFailure>
        + Send
        + Sync
        + 'static,
{
    fn resolve_token(
        &self,
        token: &str,
    ) -> std::result::Result<Option<TokenIdentity>, IdentityFailure> {
        self(token)
    }
}

/// Mints a grant for `principal` — always the authenticated caller, never a parameter,
/// so no caller can mint for someone else. `ttl_seconds` is a request; the returned
/// `expires_at` is authoritative.
pub trait MintGrant: Send + Sync + 'static {
    /// Mints a grant.
    ///
    /// # Errors
    /// [`IdentityFailure::Refused`] to refuse the purpose or scopes,
    /// [`IdentityFailure::Unavailable`] when the grant store cannot answer.
    fn mint_grant(
        &self,
        principal: &str,
        purpose: &str,
        scopes: &[String],
        ttl_seconds: i64,
    ) -> std::result::Result<IssuedGrant, IdentityFailure>;
}

impl<F> MintGrant for F
where
    F: Fn(&str, &str, &[String], i64) -> std::result::Result<IssuedGrant, IdentityFailure>
        + Send
        + Sync
        + 'static,
{
    fn mint_grant(
        &self,
        principal: &str,
        purpose: &str,
        scopes: &[String],
        ttl_seconds: i64,
    ) -> std::result::Result<IssuedGrant, IdentityFailure> {
        self(principal, purpose, scopes, ttl_seconds)
    }
}

/// A validated identity configuration, given to
/// [`ServerBuilder::identity`](crate::server::ServerBuilder::identity).
#[derive(Clone)]
pub struct Identity {
    pub(super) resolver: Option<Arc<dyn ResolveToken>>,
    pub(super) minter: Option<Arc<dyn MintGrant>>,
    pub(super) introspectors: Vec<String>,
    pub(super) max_auth_age: Duration,
    #[cfg(feature = "grants")]
    pub(super) grant_keys: Option<Arc<super::grant::GrantKeys>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("resolve_token", &self.resolver.is_some())
            .field("mint_grant", &self.offers_mint())
            .field("introspectors", &self.introspectors)
            .field("max_auth_age", &self.max_auth_age)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Starts a configuration with no hooks and the default 900-second freshness ceiling.
    pub fn builder() -> IdentityBuilder {
        IdentityBuilder {
            identity: Identity {
                resolver: None,
                minter: None,
                introspectors: Vec::new(),
                max_auth_age: DEFAULT_MAX_AUTH_AGE,
                #[cfg(feature = "grants")]
                grant_keys: None,
            },
        }
    }

    /// The resolve hook, which transports also consult to accept bearer credentials.
    pub fn resolver(&self) -> Option<&Arc<dyn ResolveToken>> {
        self.resolver.as_ref()
    }

    /// The sealed-grant keys, which HTTP also uses to accept grants as bearers.
    #[cfg(feature = "grants")]
    pub fn grant_keys(&self) -> Option<&super::grant::GrantKeys> {
        self.grant_keys.as_deref()
    }

    /// Whether `introspect_token` is hosted.
    pub fn offers_introspect(&self) -> bool {
        self.resolver.is_some()
    }

    /// Whether `issue_grant` is hosted: a mint hook, or sealed-grant keys.
    pub fn offers_mint(&self) -> bool {
        #[cfg(feature = "grants")]
        if self.grant_keys.is_some() {
            return true;
        }
        self.minter.is_some()
    }
}

/// Builder for [`Identity`].
pub struct IdentityBuilder {
    identity: Identity,
}

impl IdentityBuilder {
    /// Hosts `introspect_token`, answered by `hook` for callers on the allowlist
    /// ([`IdentityBuilder::introspectors`], required with this hook).
    #[must_use]
    pub fn resolve_token(mut self, hook: impl ResolveToken) -> Self {
        self.identity.resolver = Some(Arc::new(hook));
        self
    }

    /// The principals allowed to introspect. There is no permissive default: letting any
    /// authenticated caller introspect lets any user resolve anyone's credential.
    #[must_use]
    pub fn introspectors<I, S>(mut self, principals: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.identity.introspectors = principals
            .into_iter()
            .map(Into::into)
            .filter(|p: &String| !p.is_empty())
            .collect();
        self
    }

    /// Hosts `issue_grant`, answered by `hook` for freshly authenticated callers.
    #[must_use]
    pub fn mint_grant(mut self, hook: impl MintGrant) -> Self {
        self.identity.minter = Some(Arc::new(hook));
        self
    }

    /// How recent the caller's login (`auth_time`) must be to mint (default 900 s).
    #[must_use]
    pub fn max_auth_age(mut self, age: Duration) -> Self {
        self.identity.max_auth_age = age;
        self
    }

    /// Sealed grants: the framework mints `vgig1.` grants (unless a mint hook is set) and
    /// HTTP accepts them back as bearers.
    #[cfg(feature = "grants")]
    #[must_use]
    pub fn grant_keys(mut self, keys: super::grant::GrantKeys) -> Self {
        self.identity.grant_keys = Some(Arc::new(keys));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A resolve hook without an allowlist (a worker that would refuse every
    /// introspection must not start).
    pub fn build(self) -> Result<Identity> {
        let identity = self.identity;
        if identity.resolver.is_some() && identity.introspectors.is_empty() {
            return Err(Error::protocol(
                "identity: a resolve_token hook needs at least one introspector principal; \
                 allowing any authenticated caller would let any user resolve any other \
                 user's credential",
            ));
        }
        Ok(identity)
    }
}

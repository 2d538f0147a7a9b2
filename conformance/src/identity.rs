//! The identity fixtures the shared suite pins (`IDENTITY_CONFORMANCE_FIXTURE.md`): the
//! resolve and mint hooks, the sealed-grant keys, `conformance.Whoami.v1`, and the two
//! test-only HTTP authenticators.
//!
//! Every value here is one six ports configure identically, so the suite's assertions
//! have one answer. The resolver resolves almost anything on purpose: a rejection can then
//! only come from a framework guard, and a guard that fails to fire shows up as a success.
//!
//! **The authenticators are trivially spoofable by anyone who can reach the port.** They
//! exist so a conformance run gets a deterministic authenticated caller without an
//! identity provider, and must never be deployed.

use std::time::Duration;

use chrono::DateTime;
use vgi_rpc::identity::grant::GrantKeys;
use vgi_rpc::identity::{AuthUnavailable, Identity, IdentityFailure, IssuedGrant, TokenIdentity};
use vgi_rpc::prelude::*;
use vgi_rpc::server::AuthContext;
use vgi_rpc::transport::http::auth::{AuthError, AuthReason, AuthRequest, Authenticate};

/// The header naming the caller (absent: unauthenticated).
pub const PRINCIPAL_HEADER: &str = "x-conformance-principal";
/// The header carried verbatim into the `auth_time` claim.
pub const AUTH_TIME_HEADER: &str = "x-conformance-auth-time";
/// The header a reject-all request names its refusal reason in.
pub const REASON_HEADER: &str = "x-conformance-auth-reason";
/// The one allowlisted introspector.
pub const INTROSPECTOR: &str = "conformance-introspector";
/// The principal every resolvable credential belongs to.
pub const SUBJECT: &str = "subject@conformance.example";
/// `expires_at` of every fixture grant: 2030-01-01T00:00:00Z.
pub const GRANT_EXPIRES_AT_SECONDS: i64 = 1_893_456_000;

/// Which identity configuration a worker runs (`--identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityMode {
    /// No hooks: the protocol is absent.
    #[default]
    Off,
    /// Resolve and mint hooks.
    Both,
    /// The resolve hook only (`issue_grant` absent, the hash narrowed).
    IntrospectOnly,
    /// The resolve hook and the fixture's sealed-grant keys (the framework mints), plus
    /// `conformance.Whoami.v1`.
    Grants,
}

impl IdentityMode {
    /// Parses `off`, `both`, `introspect-only` or `grants`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "off" => IdentityMode::Off,
            "both" => IdentityMode::Both,
            "introspect-only" => IdentityMode::IntrospectOnly,
            "grants" => IdentityMode::Grants,
            _ => return None,
        })
    }

    /// The identity configuration, or `None` when off.
    ///
    /// # Errors
    /// Never with the fixture's constants; the builder's checks are kept, not bypassed.
    pub fn identity(self) -> vgi_rpc::Result<Option<Identity>> {
        let base = Identity::builder()
            .resolve_token(resolve_token)
            .introspectors([INTROSPECTOR])
            .max_auth_age(Duration::from_secs(900));
        let builder = match self {
            IdentityMode::Off => return Ok(None),
            IdentityMode::Both => base.mint_grant(mint_grant),
            IdentityMode::IntrospectOnly => base,
            IdentityMode::Grants => base.grant_keys(grant_keys()?),
        };
        builder.build().map(Some)
    }
}

/// The fixture resolver (`IDENTITY_CONFORMANCE_FIXTURE.md` §3.3).
pub fn resolve_token(token: &str) -> Result<Option<TokenIdentity>, IdentityFailure> {
    let subject = || TokenIdentity::new(SUBJECT).with_token_name("conformance-subject");
    Ok(Some(match token {
        "conformance-unavailable-token" => {
            return Err(IdentityFailure::Unavailable {
                message: "conformance: mapping store unreachable".into(),
                retry_after: Duration::from_secs(5),
            });
        }
        "conformance-auth-unavailable-token" => {
            return Err(AuthUnavailable::new(
                "conformance: authority unreachable",
                Duration::from_secs(7),
            )
            .into());
        }
        "conformance-unknown-token" => return Ok(None),
        "conformance-zero-ttl-token" => subject().with_ttl_seconds(0),
        "conformance-minimal-token" => TokenIdentity::new(SUBJECT),
        "  conformance-padded-probe  " => TokenIdentity::new(SUBJECT)
            .with_token_name("conformance-padded")
            .with_ttl_seconds(300),
        _ => subject().with_ttl_seconds(300),
    }))
}

/// The fixture minter (§3.4): the token embeds the caller and echoes the scopes.
pub fn mint_grant(
    principal: &str,
    purpose: &str,
    scopes: &[String],
    _ttl_seconds: i64,
) -> Result<IssuedGrant, IdentityFailure> {
    match purpose {
        "conformance-auth-unavailable" => Err(AuthUnavailable::new(
            "conformance: grant store unreachable",
            Duration::from_secs(7),
        )
        .into()),
        "conformance-refused" => Err(IdentityFailure::Refused(
            "conformance: this purpose is refused".into(),
        )),
        _ => {
            let token = format!("conformance-grant-for:{principal}|{}", scopes.join(","));
            let expires = DateTime::from_timestamp(GRANT_EXPIRES_AT_SECONDS, 0)
                .ok_or_else(|| IdentityFailure::Refused("expires_at out of range".into()))?;
            let grant = IssuedGrant::new(token, expires);
            Ok(if purpose == "conformance-minimal" {
                grant
            } else {
                grant.with_grant_id("conformance-grant-id")
            })
        }
    }
}

/// The published fixture keys: current `0x10..0x2f` (mints), previous `0x30..0x4f`;
/// audience `conformance`, lifetime ceiling one hour. Never use them anywhere else.
///
/// # Errors
/// Never with these constants.
pub fn grant_keys() -> vgi_rpc::Result<GrantKeys> {
    let key = |start: u8| -> [u8; 32] { std::array::from_fn(|i| start + i as u8) };
    GrantKeys::new(&[key(0x10), key(0x30)], "conformance", 3600)
}

/// `X-Conformance-Principal` → an authenticated principal, `X-Conformance-Auth-Time` →
/// the `auth_time` claim verbatim. No principal but an `Authorization` header: not ours
/// (the identity bearers after it decide). Neither: anonymous.
pub struct PrincipalHeader;

impl Authenticate for PrincipalHeader {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let principal = request.header(PRINCIPAL_HEADER).unwrap_or("");
        if principal.is_empty() {
            if request
                .headers
                .get("authorization")
                .is_some_and(|v| !v.is_empty())
            {
                return Err(AuthError::rejected(
                    AuthReason::InvalidCredential,
                    "no conformance principal header",
                ));
            }
            return Ok(AuthContext::anonymous());
        }
        let mut ctx = AuthContext::authenticated("conformance", principal);
        if let Some(t) = request.header(AUTH_TIME_HEADER) {
            ctx = ctx.with_claim("auth_time", t);
        }
        Ok(ctx)
    }
}

/// Refuses every request: with the reason named in `X-Conformance-Auth-Reason` when it
/// is one a request may ask for, unclassified otherwise (`proxy_required` is never
/// requestable: it derives from configuration).
pub struct RejectAll;

impl Authenticate for RejectAll {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let reason = match request.header(REASON_HEADER).unwrap_or("") {
            "missing_credential" => AuthReason::MissingCredential,
            "invalid_credential" => AuthReason::InvalidCredential,
            "expired_credential" => AuthReason::ExpiredCredential,
            "insufficient_scope" => AuthReason::InsufficientScope,
            _ => AuthReason::Unauthorized,
        };
        Err(AuthError::rejected(reason, reason.as_str()))
    }
}

/// Hosted by the grant worker: reports what authentication decided.
#[vgi_rpc::service(protocol = "conformance.Whoami.v1")]
pub trait Whoami: Send + Sync + 'static {
    /// The caller's `AuthContext` as compact JSON with sorted keys.
    fn whoami(&self, ctx: &CallContext) -> Result<String>;
}

/// The [`Whoami`] implementation.
pub struct WhoamiImpl;

impl Whoami for WhoamiImpl {
    fn whoami(&self, ctx: &CallContext) -> Result<String> {
        let auth = ctx.auth();
        // serde_json's map keeps insertion order here (preserve_order), so sort by hand.
        let mut claims: Vec<(&String, &serde_json::Value)> = auth.claims.iter().collect();
        claims.sort_by(|a, b| a.0.cmp(b.0));
        let claims: serde_json::Map<String, serde_json::Value> = claims
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(serde_json::json!({
            "authenticated": auth.authenticated,
            "claims": claims,
            "domain": auth.domain_or_empty(),
            "principal": auth.principal_or_empty(),
        })
        .to_string())
    }
}

//! JWT bearer authentication: a signature checked against the issuer's keys, then
//! `iss`, `aud`, `exp` and `nbf`.
//!
//! The algorithm a token may use is decided by the key, never by the token: each key
//! allows only the algorithms of its own type (its JWK `alg` when it names one), so an
//! RSA public key can never verify an HMAC token signed with it as the secret (HS/RS
//! confusion), and `alg: none` matches no key at all. Keys come from a JWKS document,
//! fetched on first use and again (at most every [`MIN_REFRESH`]) when a token names a
//! key id the cache lacks, so a rotation is picked up without a restart; or from a
//! static set. When the JWKS cannot be fetched and nothing is cached, the answer is
//! "unavailable" (503), not a rejection. All of the token's claims reach
//! [`AuthContext::claims`] (an `auth_time` claim makes the caller able to mint grants).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind};
use serde_json::{Map, Value};

use super::{
    AuthContext, AuthError, AuthReason, AuthRequest, AuthUnavailable, Authenticate, bearer_token,
};
use crate::{Error, Result};

/// How often an unknown key id may trigger a JWKS refetch.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
/// How long a fetched JWKS is trusted before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Validates `Authorization: Bearer <JWT>`; `domain = "jwt"` (configurable), principal
/// from `sub` (configurable).
pub struct Jwt {
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: KeySource,
    principal_claim: String,
    domain: String,
    leeway: Duration,
    min_refresh: Duration,
}

enum KeySource {
    Static(Arc<Vec<Key>>),
    Remote(Remote),
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

struct Remote {
    url: String,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Arc<Vec<Key>>,
    fetched: Option<Instant>,
}

impl Jwt {
    /// Tokens from `issuer` for `audience`, verified against the JWKS at `jwks_uri`.
    pub fn with_jwks_uri(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_uri: impl Into<String>,
    ) -> Self {
        Jwt::new(
            issuer,
            audience,
            KeySource::Remote(Remote {
                url: jwks_uri.into(),
                cache: Mutex::new(Cache::default()),
            }),
        )
    }

    /// Tokens from `issuer` for `audience`, verified against a fixed key set.
    ///
    /// # Errors
    /// A key that cannot be used for verification.
    pub fn with_keys(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: &JwkSet,
    ) -> Result<Self> {
        let keys = keys.keys.iter().map(key_of).collect::<Result<Vec<_>>>()?;
        Ok(Jwt::new(
            issuer,
            audience,
            KeySource::Static(Arc::new(keys)),
        ))
    }

    /// Tokens signed with the HMAC `secret` (HS256/384/512 only).
    ///
    /// # Errors
    /// An empty secret.
    pub fn with_secret(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        secret: &[u8],
    ) -> Result<Self> {
        let key = Key {
            kid: None,
            key: DecodingKey::from_secret(secret)
                .map_err(|e| Error::Config(format!("JWT secret: {e}")))?,
            algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        };
        Ok(Jwt::new(
            issuer,
            audience,
            KeySource::Static(Arc::new(vec![key])),
        ))
    }

    fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: KeySource) -> Self {
        Jwt {
            issuers: vec![issuer.into()],
            audiences: vec![audience.into()],
            keys,
            principal_claim: "sub".to_owned(),
            domain: "jwt".to_owned(),
            leeway: Duration::from_secs(60),
            min_refresh: MIN_REFRESH,
        }
    }

    /// Also accepts tokens from `issuer`.
    #[must_use]
    pub fn or_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Also accepts tokens for `audience`.
    #[must_use]
    pub fn or_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The claim naming the principal (default `sub`).
    #[must_use]
    pub fn principal_claim(mut self, claim: impl Into<String>) -> Self {
        self.principal_claim = claim.into();
        self
    }

    /// The [`AuthContext::domain`] of accepted callers (default `jwt`).
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 60 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How often a token naming an unknown key id may trigger a JWKS refetch (default
    /// [`MIN_REFRESH`]): the bound on how hard junk tokens can make this server hit the
    /// issuer.
    #[must_use]
    pub fn min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    fn keys(&self, refresh: bool) -> std::result::Result<Arc<Vec<Key>>, AuthError> {
        let remote = match &self.keys {
            KeySource::Static(keys) => return Ok(Arc::clone(keys)),
            KeySource::Remote(remote) => remote,
        };
        let mut cache = remote.cache.lock().unwrap_or_else(|e| e.into_inner());
        let age = cache.fetched.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a >= JWKS_TTL || (refresh && a >= self.min_refresh));
        if stale {
            match fetch_jwks(&remote.url) {
                Ok(keys) => {
                    cache.keys = Arc::new(keys);
                    cache.fetched = Some(Instant::now());
                }
                // Keys we already have stay usable through an outage of the issuer.
                Err(e) if cache.fetched.is_some() => {
                    tracing::warn!(url = %remote.url, error = %e, "JWKS refresh failed; keeping the cached keys");
                }
                Err(e) => {
                    tracing::warn!(url = %remote.url, error = %e, "JWKS unavailable");
                    return Err(
                        AuthUnavailable::new("JWKS unavailable", Duration::from_secs(5)).into(),
                    );
                }
            }
        }
        Ok(Arc::clone(&cache.keys))
    }

    fn verify(
        &self,
        token: &str,
        keys: &[Key],
    ) -> std::result::Result<Map<String, Value>, Verdict> {
        let header = decode_header(token).map_err(|_| Verdict::Invalid("not a JWT"))?;
        let candidates: Vec<&Key> = match &header.kid {
            Some(kid) => keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(Verdict::UnknownKey);
        }
        let mut last = Verdict::Invalid("no key accepts the token's algorithm");
        for key in candidates
            .into_iter()
            .filter(|k| k.algorithms.contains(&header.alg))
        {
            let mut validation = Validation::new(header.alg);
            validation.algorithms = vec![header.alg];
            validation.set_issuer(&self.issuers);
            validation.set_audience(&self.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.validate_nbf = true;
            validation.leeway = self.leeway.as_secs();
            match decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if *e.kind() == ErrorKind::ExpiredSignature => return Err(Verdict::Expired),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    last = Verdict::Invalid("bad signature")
                }
                Err(e) => {
                    tracing::debug!(error = %e, "JWT refused");
                    return Err(Verdict::Invalid("claims or format rejected"));
                }
            }
        }
        Err(last)
    }
}

enum Verdict {
    UnknownKey,
    Expired,
    Invalid(&'static str),
}

impl Authenticate for Jwt {
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> std::result::Result<AuthContext, AuthError> {
        let token = bearer_token(request)?;
        let mut verdict = self.verify(token, &self.keys(false)?);
        if matches!(verdict, Err(Verdict::UnknownKey)) {
            verdict = self.verify(token, &self.keys(true)?);
        }
        let claims = match verdict {
            Ok(claims) => claims,
            Err(Verdict::Expired) => {
                return Err(AuthError::rejected(
                    AuthReason::ExpiredCredential,
                    "JWT expired",
                ));
            }
            Err(Verdict::UnknownKey) => {
                return Err(AuthError::rejected(
                    AuthReason::InvalidCredential,
                    "JWT signed by an unknown key",
                ));
            }
            Err(Verdict::Invalid(why)) => {
                return Err(AuthError::rejected(
                    AuthReason::InvalidCredential,
                    format!("invalid JWT: {why}"),
                ));
            }
        };
        let principal = match claims.get(&self.principal_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(AuthError::rejected(
                    AuthReason::InvalidCredential,
                    format!("JWT carries no {} claim", self.principal_claim),
                ));
            }
        };
        let mut ctx = AuthContext::authenticated(self.domain.clone(), principal);
        ctx.claims = claims;
        Ok(ctx)
    }
}

/// The verification key of a JWK and the algorithms it may verify.
fn key_of(jwk: &Jwk) -> Result<Key> {
    let key = DecodingKey::from_jwk(jwk).map_err(|e| Error::Config(format!("JWK: {e}")))?;
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => {
            vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
        }
        _ => vec![],
    };
    let named = jwk.common.key_algorithm.and_then(algorithm_of);
    let algorithms = match named {
        Some(alg) if family.contains(&alg) => vec![alg],
        Some(_) => vec![],
        None => family,
    };
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        key,
        algorithms,
    })
}

fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Fetches and parses a JWKS on a thread of its own (authenticators run on tokio's
/// blocking pool, where starting another runtime is not allowed), bounded in time and
/// size. Keys that cannot verify anything are skipped.
fn fetch_jwks(url: &str) -> Result<Vec<Key>> {
    let url = url.to_owned();
    let fetched = std::thread::spawn(move || -> Result<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .map_err(|e| Error::Config(format!("JWKS client: {e}")))?;
            let mut response = client
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| Error::Protocol(format!("JWKS fetch: {}", e.without_url())))?;
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| Error::Protocol(format!("JWKS fetch: {}", e.without_url())))?
            {
                if body.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(Error::Protocol("JWKS document over 1 MiB".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    })
    .join()
    .map_err(|_| Error::Protocol("JWKS fetch thread panicked".into()))??;
    let set: JwkSet = serde_json::from_slice(&fetched)
        .map_err(|e| Error::Protocol(format!("JWKS document: {e}")))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|k| key_of(k).ok())
        .filter(|k| !k.algorithms.is_empty())
        .collect())
}

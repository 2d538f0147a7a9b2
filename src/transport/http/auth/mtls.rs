//! mTLS: the caller is whoever holds the client certificate the TLS handshake verified.
//!
//! [`Mtls`] reads the chain the connection carried into [`AuthRequest::peer_certificates`]
//! ([`serve_tls`](crate::transport::http::serve_tls) with a client CA). It trusts that
//! chain as given: verification (CA, validity, key possession) already happened in rustls,
//! and a request without a chain is `missing_credential`, never anonymous. The principal
//! is the subject's common name unless a mapping says otherwise (a SPIFFE URI SAN, an
//! e-mail), and the claims carry the subject DN, serial, expiry and SANs.
//!
//! The same policy ([`CertPolicy`]) turns a proxy-forwarded certificate into an identity
//! (`forwarded::ForwardedCert`), so both paths name a caller the same way.

use std::collections::HashSet;
use std::sync::Arc;

use super::x509::ClientCertificate;
use super::{AuthContext, AuthError, AuthReason, AuthRequest, Authenticate, MTLS_DOMAIN};

type PrincipalFn = dyn Fn(&ClientCertificate) -> Option<String> + Send + Sync;

/// How a verified certificate becomes an [`AuthContext`]: the domain, the principal
/// mapping and the optional allowlist.
#[derive(Clone)]
pub(super) struct CertPolicy {
    pub(super) domain: String,
    pub(super) principal: Arc<PrincipalFn>,
    pub(super) allowed: Option<HashSet<String>>,
}

impl CertPolicy {
    pub(super) fn new() -> Self {
        CertPolicy {
            domain: MTLS_DOMAIN.to_owned(),
            principal: Arc::new(|cert| cert.common_name().map(str::to_owned)),
            allowed: None,
        }
    }

    /// The identity of `cert`.
    ///
    /// # Errors
    /// `invalid_credential` when the mapping names no principal, `insufficient_scope`
    /// when the principal is not allowed.
    pub(super) fn identify(&self, cert: &ClientCertificate) -> Result<AuthContext, AuthError> {
        let principal = (self.principal)(cert)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                AuthError::rejected(
                    AuthReason::InvalidCredential,
                    format!("certificate {:?} names no principal", cert.subject_dn()),
                )
            })?;
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&principal)
        {
            return Err(AuthError::rejected(
                AuthReason::InsufficientScope,
                format!("certificate principal {principal:?} is not allowed"),
            ));
        }
        let mut ctx = AuthContext::authenticated(self.domain.clone(), principal);
        ctx.claims = cert.claims();
        Ok(ctx)
    }
}

/// The builder methods every certificate authenticator shares.
macro_rules! cert_policy_builders {
    () => {
        /// Names the principal with `map` instead of the subject's common name (`None`
        /// or an empty name rejects the certificate as `invalid_credential`).
        #[must_use]
        pub fn principal_from(
            mut self,
            map: impl Fn(&ClientCertificate) -> Option<String> + Send + Sync + 'static,
        ) -> Self {
            self.policy.principal = std::sync::Arc::new(map);
            self
        }

        /// Accepts only these principals; others are `insufficient_scope`. Without
        /// it any certificate that names a principal is accepted, a choice to make
        /// deliberately.
        #[must_use]
        pub fn allowed_principals<I, S>(mut self, principals: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.policy.allowed = Some(principals.into_iter().map(Into::into).collect());
            self
        }

        /// Sets `AuthContext::domain` (default `"mtls"`).
        #[must_use]
        pub fn domain(mut self, domain: impl Into<String>) -> Self {
            self.policy.domain = domain.into();
            self
        }
    };
}
pub(super) use cert_policy_builders;

/// Authenticates by the client certificate of the TLS connection (see the module docs).
#[derive(Clone)]
pub struct Mtls {
    policy: CertPolicy,
}

impl Default for Mtls {
    fn default() -> Self {
        Mtls::new()
    }
}

impl std::fmt::Debug for Mtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mtls")
            .field("domain", &self.policy.domain)
            .field("allowed", &self.policy.allowed)
            .finish_non_exhaustive()
    }
}

impl Mtls {
    /// The subject's common name as principal, domain `"mtls"`, any principal allowed.
    pub fn new() -> Self {
        Mtls {
            policy: CertPolicy::new(),
        }
    }

    cert_policy_builders!();
}

impl Authenticate for Mtls {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let leaf = request
            .peer_certificates
            .and_then(<[_]>::first)
            .ok_or_else(|| {
                AuthError::rejected(
                    AuthReason::MissingCredential,
                    "no client certificate on the connection",
                )
            })?;
        let cert = ClientCertificate::from_der(leaf)
            .map_err(|e| AuthError::rejected(AuthReason::InvalidCredential, e.to_string()))?;
        self.policy.identify(&cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::http::auth::CertificateDer;
    use axum::http::{HeaderMap, Method, Uri};

    fn cert(cn: &str, uri: &str) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(uri.try_into().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn run(
        auth: &Mtls,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Result<AuthContext, AuthError> {
        let (method, uri, headers) = (Method::POST, Uri::from_static("/x/y"), HeaderMap::new());
        auth.authenticate(
            &AuthRequest::new(&method, &uri, &headers, None).with_peer_certificates(chain),
        )
    }

    #[test]
    fn the_common_name_is_the_principal_and_claims_carry_the_certificate() {
        let chain = [cert("alice", "spiffe://example.org/a")];
        let ctx = run(&Mtls::new(), Some(&chain)).unwrap();
        assert_eq!(ctx.domain.as_deref(), Some("mtls"));
        assert_eq!(ctx.principal.as_deref(), Some("alice"));
        assert_eq!(ctx.claims["subject_dn"], "CN=alice");
        assert_eq!(ctx.claims["uri"][0], "spiffe://example.org/a");
        let by_uri = Mtls::new().principal_from(|c| c.uris().first().cloned());
        let ctx = run(&by_uri, Some(&chain)).unwrap();
        assert_eq!(ctx.principal.as_deref(), Some("spiffe://example.org/a"));
    }

    #[test]
    fn no_certificate_garbage_and_strangers_are_refused() {
        let missing = run(&Mtls::new(), None).unwrap_err();
        assert!(matches!(
            missing,
            AuthError::Rejected {
                reason: AuthReason::MissingCredential,
                ..
            }
        ));
        let garbage = [CertificateDer::from(b"junk".to_vec())];
        let bad = run(&Mtls::new(), Some(&garbage)).unwrap_err();
        assert!(matches!(
            bad,
            AuthError::Rejected {
                reason: AuthReason::InvalidCredential,
                ..
            }
        ));
        let chain = [cert("mallory", "spiffe://example.org/m")];
        let only_alice = Mtls::new().allowed_principals(["alice"]);
        let refused = run(&only_alice, Some(&chain)).unwrap_err();
        assert!(matches!(
            refused,
            AuthError::Rejected {
                reason: AuthReason::InsufficientScope,
                ..
            }
        ));
        let nameless = Mtls::new().principal_from(|_| None);
        assert!(run(&nameless, Some(&chain)).is_err());
    }
}

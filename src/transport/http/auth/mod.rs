//! Authentication for the HTTP server: who is calling, decided once per request before
//! routing, and handed to the call as an [`AuthContext`] (see
//! [`CallContext::auth`](crate::server::CallContext::auth)).
//!
//! An [`Authenticate`] looks at the request head and answers an identity, a rejection, or
//! "the authority is unreachable". Rejections come in two strengths because composition
//! needs both: [`AuthError::Rejected`] means "not my credential (or a bad one)" and lets a
//! [`Chain`] try its next member; [`AuthError::Denied`] stops the chain (a forged sealed
//! grant must not get a second chance from a resolver). [`AuthError::Unavailable`] is
//! never a rejection: the server answers 503 with `Retry-After`, so an outage does not log
//! a fleet out. Every 401 names a reason from the closed set [`AuthReason`]
//! (`docs/unauthorized-spec.md`); the detail text is operator-facing and never reaches
//! the caller.
//!
//! Built in: bearer tokens through a hook ([`Bearer`]), a static token table
//! ([`StaticBearer`]), JWTs against a JWKS (`Jwt`, feature `jwt`), client certificates
//! (`Mtls` for TLS this server terminates, feature `tls`; [`forwarded`] for certificates
//! a reverse proxy verified), and the identity bearers ([`GrantBearer`],
//! [`ResolveTokenBearer`])
//! the server appends automatically when it hosts `vgi_rpc.Identity.v2` (sealed grants
//! first, then the resolve hook, after the deployment's own authenticator).

mod bearer;
mod chain;
pub mod forwarded;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "tls")]
mod mtls;
mod proof;
#[cfg(feature = "tls")]
mod x509;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, Method, Uri};
pub use rustls_pki_types::CertificateDer;

pub use crate::identity::AuthUnavailable;
pub use crate::server::AuthContext;
pub use bearer::{
    Bearer, GRANT_DOMAIN, GrantBearer, ResolveTokenBearer, StaticBearer, TOKEN_DOMAIN, bearer_token,
};
pub use chain::{Chain, compose_identity};
#[cfg(feature = "tls")]
pub use forwarded::ForwardedCert;
pub use forwarded::Xfcc;
#[cfg(feature = "jwt")]
pub use jsonwebtoken::jwk::JwkSet;
#[cfg(feature = "jwt")]
pub use jwt::{JWKS_TTL, Jwt, MIN_REFRESH};
#[cfg(feature = "tls")]
pub use mtls::Mtls;
pub use proof::{
    CLAIMS_KEY as PROXY_PROOF_CLAIMS, PROOF_HEADER, ProofMode, ProxyProof, RequireProof, mint_proof,
};
#[cfg(feature = "tls")]
pub use x509::{CertificateError, ClientCertificate};

/// The request as an authenticator sees it: the head only, never the body.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The request target.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The TCP peer, when the router was served with connect info.
    pub remote: Option<SocketAddr>,
    /// The client's certificate chain (end entity first) when the connection is TLS and
    /// the client presented one the server verified; `None` otherwise. See
    /// [`PeerCertificates`].
    pub peer_certificates: Option<&'a [CertificateDer<'static>]>,
}

impl<'a> AuthRequest<'a> {
    /// A request head to authenticate.
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        remote: Option<SocketAddr>,
    ) -> Self {
        AuthRequest {
            method,
            uri,
            headers,
            remote,
            peer_certificates: None,
        }
    }

    /// Whether the request presents any credential (a non-empty `Authorization`).
    pub fn has_credential(&self) -> bool {
        self.headers
            .get("authorization")
            .is_some_and(|v| !v.is_empty())
    }

    /// The same request, arriving with the client certificate chain `chain`.
    #[must_use]
    pub fn with_peer_certificates(mut self, chain: Option<&'a [CertificateDer<'static>]>) -> Self {
        self.peer_certificates = chain;
        self
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `AuthContext::domain` of a caller authenticated by a client certificate (`Mtls`, or
/// one a proxy forwarded).
pub const MTLS_DOMAIN: &str = "mtls";

/// The client certificate chain of a TLS connection, as verified during the handshake
/// (end entity first): the request extension that carries it from the connection to
/// [`AuthRequest::peer_certificates`].
///
/// [`serve_tls`](super::serve_tls) inserts it into every request of a connection whose
/// client presented a certificate. An application that terminates TLS itself and nests
/// [`router`](super::router) inserts it the same way; a server must only insert a chain
/// its TLS layer verified, since authenticators such as `Mtls` trust it as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// The stage that refused a request, from the closed set every port shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthReason {
    /// No credential was presented at all.
    MissingCredential,
    /// A credential was presented and rejected.
    InvalidCredential,
    /// A well-formed credential outside its validity window.
    ExpiredCredential,
    /// The caller was identified but is not permitted.
    InsufficientScope,
    /// The request lacks the evidence a trusted reverse proxy adds.
    ProxyRequired,
    /// Refused, unclassified.
    Unauthorized,
}

impl AuthReason {
    /// The wire spelling (`VGI-Auth-Reason` and the JSON envelope's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthReason::MissingCredential => "missing_credential",
            AuthReason::InvalidCredential => "invalid_credential",
            AuthReason::ExpiredCredential => "expired_credential",
            AuthReason::InsufficientScope => "insufficient_scope",
            AuthReason::ProxyRequired => "proxy_required",
            AuthReason::Unauthorized => "unauthorized",
        }
    }
}

impl fmt::Display for AuthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an authenticator did not produce an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Not this authenticator's credential, or a bad one: a [`Chain`] tries its next
    /// member; alone, a 401.
    Rejected {
        /// The 401's reason code.
        reason: AuthReason,
        /// Operator-facing text (logged, never sent; never the credential).
        detail: String,
    },
    /// Refused outright: a [`Chain`] stops here with a 401.
    Denied {
        /// The 401's reason code.
        reason: AuthReason,
        /// Operator-facing text (logged, never sent; never the credential).
        detail: String,
    },
    /// The authority could not be reached: 503 with `Retry-After`, never 401.
    Unavailable(AuthUnavailable),
}

impl AuthError {
    /// A [`AuthError::Rejected`] with `reason`.
    pub fn rejected(reason: AuthReason, detail: impl Into<String>) -> Self {
        AuthError::Rejected {
            reason,
            detail: detail.into(),
        }
    }

    /// A [`AuthError::Denied`] with `reason`.
    pub fn denied(reason: AuthReason, detail: impl Into<String>) -> Self {
        AuthError::Denied {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<AuthUnavailable> for AuthError {
    fn from(e: AuthUnavailable) -> Self {
        AuthError::Unavailable(e)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Rejected { reason, detail } | AuthError::Denied { reason, detail } => {
                write!(f, "{reason}: {detail}")
            }
            AuthError::Unavailable(e) => write!(f, "authentication unavailable: {e}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Decides who is calling from a request head. Runs where blocking is allowed (the
/// connection's thread, outside its runtime, or the blocking pool), so it may consult a
/// store synchronously.
pub trait Authenticate: Send + Sync + 'static {
    /// The caller's identity ([`AuthContext::anonymous`] is a valid answer: the request
    /// is served unauthenticated).
    ///
    /// # Errors
    /// See [`AuthError`].
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError>;

    /// Headers a trusted reverse proxy must add for this authenticator to succeed (mTLS
    /// forwarded as a header, a proxy proof). Non-empty makes every 401 carry the proxy
    /// note, and forbids appending OR-ed alternatives beside it.
    fn proxy_headers(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<F> Authenticate for F
where
    F: Fn(&AuthRequest<'_>) -> Result<AuthContext, AuthError> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        self(request)
    }
}

//! A proxy-verified client certificate forwarded as URL-encoded PEM in one header.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::super::mtls::{CertPolicy, cert_policy_builders};
use super::super::x509::ClientCertificate;
use super::super::{AuthContext, AuthError, AuthReason, AuthRequest, Authenticate};
use super::{single_header, unquote};

/// The header nginx (`$ssl_client_escaped_cert`) and Cloudflare forward the client
/// certificate in: the reference's default.
pub const SSL_CLIENT_CERT_HEADER: &str = "x-ssl-client-cert";

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// Authenticates by the certificate a TLS-terminating proxy forwards as URL-encoded PEM
/// (the reference's `mtls_authenticate_subject`): principal, domain and claims as
/// [`Mtls`](super::super::Mtls). No chain is verified here; that is the proxy's job, and
/// the proxy must strip the header from client requests.
#[derive(Clone)]
pub struct ForwardedCert {
    header: String,
    check_expiry: bool,
    policy: CertPolicy,
}

impl Default for ForwardedCert {
    fn default() -> Self {
        ForwardedCert::new()
    }
}

impl std::fmt::Debug for ForwardedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedCert")
            .field("header", &self.header)
            .field("check_expiry", &self.check_expiry)
            .field("domain", &self.policy.domain)
            .finish_non_exhaustive()
    }
}

impl ForwardedCert {
    /// Reads `X-SSL-Client-Cert`; common name as principal; no expiry check.
    pub fn new() -> Self {
        ForwardedCert {
            header: SSL_CLIENT_CERT_HEADER.to_owned(),
            check_expiry: false,
            policy: CertPolicy::new(),
        }
    }

    /// Reads the certificate from `header` instead (e.g. `X-Amzn-Mtls-Clientcert`).
    #[must_use]
    pub fn header(mut self, header: impl Into<String>) -> Self {
        self.header = header.into().to_ascii_lowercase();
        self
    }

    /// Refuses certificates outside their validity window (`expired_credential`).
    #[must_use]
    pub fn check_expiry(mut self, check: bool) -> Self {
        self.check_expiry = check;
        self
    }

    cert_policy_builders!();

    fn certificate(&self, request: &AuthRequest<'_>) -> Result<ClientCertificate, AuthError> {
        let invalid = |detail: String| AuthError::rejected(AuthReason::InvalidCredential, detail);
        let pem = unquote(single_header(request, &self.header)?, &self.header)?;
        if !pem.starts_with(PEM_BEGIN) {
            return Err(invalid(format!("{} is not a PEM certificate", self.header)));
        }
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("{} is not valid PEM: {e}", self.header)))?;
        let [der] = certs.as_slice() else {
            return Err(invalid(format!(
                "{} holds {} certificates, not one",
                self.header,
                certs.len()
            )));
        };
        ClientCertificate::from_der(der).map_err(|e| invalid(e.to_string()))
    }
}

impl Authenticate for ForwardedCert {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let cert = self.certificate(request)?;
        if self.check_expiry {
            let now = chrono::Utc::now().timestamp();
            if now < cert.not_before() {
                return Err(AuthError::rejected(
                    AuthReason::ExpiredCredential,
                    "certificate is not yet valid",
                ));
            }
            if now > cert.not_after() {
                return Err(AuthError::rejected(
                    AuthReason::ExpiredCredential,
                    "certificate has expired",
                ));
            }
        }
        self.policy.identify(&cert)
    }

    fn proxy_headers(&self) -> Vec<String> {
        vec![self.header.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    fn pem(cn: &str, expired: bool) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    /// URL-encodes like nginx's `$ssl_client_escaped_cert`.
    fn escape(pem: &str) -> String {
        pem.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn run(auth: &ForwardedCert, values: &[&str]) -> Result<AuthContext, AuthError> {
        let (method, uri) = (Method::POST, Uri::from_static("/p/m"));
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-ssl-client-cert", HeaderValue::from_str(v).unwrap());
        }
        auth.authenticate(&AuthRequest::new(&method, &uri, &headers, None))
    }

    fn reason(result: Result<AuthContext, AuthError>) -> AuthReason {
        match result {
            Err(AuthError::Rejected { reason, .. }) => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_forwarded_certificate_names_the_caller() {
        let ctx = run(&ForwardedCert::new(), &[&escape(&pem("svc-a", false))]).unwrap();
        assert_eq!(ctx.principal.as_deref(), Some("svc-a"));
        assert_eq!(ctx.domain.as_deref(), Some("mtls"));
        assert_eq!(ctx.claims["subject_dn"], "CN=svc-a");
        assert_eq!(ForwardedCert::new().proxy_headers(), ["x-ssl-client-cert"]);
    }

    #[test]
    fn missing_duplicated_malformed_and_expired_headers_are_refused() {
        let auth = ForwardedCert::new().check_expiry(true);
        let good = escape(&pem("svc-a", false));
        assert_eq!(reason(run(&auth, &[])), AuthReason::ProxyRequired);
        assert_eq!(
            reason(run(&auth, &[&good, &good])),
            AuthReason::InvalidCredential
        );
        assert_eq!(
            reason(run(&auth, &["garbage"])),
            AuthReason::InvalidCredential
        );
        let truncated = escape(&pem("svc-a", false)[..200]);
        assert_eq!(
            reason(run(&auth, &[&truncated])),
            AuthReason::InvalidCredential
        );
        let body_garbage = escape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert_eq!(
            reason(run(&auth, &[&body_garbage])),
            AuthReason::InvalidCredential
        );
        let two = escape(&format!("{}{}", pem("a", false), pem("b", false)));
        assert_eq!(reason(run(&auth, &[&two])), AuthReason::InvalidCredential);
        let old = escape(&pem("svc-a", true));
        assert_eq!(reason(run(&auth, &[&old])), AuthReason::ExpiredCredential);
        assert!(run(&ForwardedCert::new(), &[&old]).is_ok());
        let only_b = ForwardedCert::new().allowed_principals(["svc-b"]);
        assert_eq!(
            reason(run(&only_b, &[&good])),
            AuthReason::InsufficientScope
        );
    }
}

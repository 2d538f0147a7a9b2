//! mTLS terminated by a reverse proxy: the proxy verifies the client certificate and
//! forwards what it learned as a header, the PEM itself (`ForwardedCert`, feature `tls`,
//! `X-SSL-Client-Cert` for nginx, `X-Amzn-Mtls-Clientcert` for AWS ALB) or Envoy's
//! structured `x-forwarded-client-cert` ([`Xfcc`]).
//!
//! **The proxy must strip these headers from client requests**, or anyone can claim any
//! certificate: nothing here can tell a proxy's header from a client's. Both
//! authenticators declare their header in
//! [`Authenticate::proxy_headers`](super::Authenticate::proxy_headers), so every 401 tells
//! the operator that a missing header may mean a proxy that does not forward it; an
//! absent header is `proxy_required`, not `missing_credential`, for the same reason.
//! A header sent twice is refused rather than resolved (first? last? joined?), as the
//! transport-identity contract asks of every port that sees raw header lines.

#[cfg(feature = "tls")]
mod pem;
mod xfcc;

#[cfg(feature = "tls")]
pub use pem::{ForwardedCert, SSL_CLIENT_CERT_HEADER};
pub use xfcc::{XFCC_HEADER, Xfcc, XfccElement, XfccSelect};

use super::{AuthError, AuthReason, AuthRequest};

/// The one value of the proxy header `name`.
///
/// # Errors
/// `proxy_required` when absent or empty, `invalid_credential` when sent more than once
/// or not visible ASCII.
fn single_header<'a>(request: &AuthRequest<'a>, name: &str) -> Result<&'a str, AuthError> {
    let mut values = request.headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if request.headers.contains_key(name) {
            AuthError::rejected(
                AuthReason::InvalidCredential,
                format!("{name} header sent more than once"),
            )
        } else {
            AuthError::rejected(AuthReason::ProxyRequired, format!("missing {name} header"))
        });
    };
    let text = value.to_str().map_err(|_| {
        AuthError::rejected(
            AuthReason::InvalidCredential,
            format!("{name} header is not visible ASCII"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(AuthError::rejected(
            AuthReason::ProxyRequired,
            format!("empty {name} header"),
        ));
    }
    Ok(text)
}

/// Python's `urllib.parse.unquote`: `%XX` becomes a byte, a malformed escape stays as
/// written, `+` stays `+`.
///
/// # Errors
/// `invalid_credential` when the decoded bytes are not UTF-8.
fn unquote(text: &str, what: &str) -> Result<String, AuthError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| {
        AuthError::rejected(
            AuthReason::InvalidCredential,
            format!("{what} is not UTF-8 once decoded"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    #[test]
    fn unquote_matches_python() {
        assert_eq!(unquote("a%20b+c%2", "x").unwrap(), "a b+c%2");
        assert_eq!(unquote("%zz%41", "x").unwrap(), "%zzA");
        assert!(unquote("%ff", "x").is_err());
    }

    #[test]
    fn a_header_must_be_present_once() {
        let (method, uri) = (Method::GET, Uri::from_static("/"));
        let mut headers = HeaderMap::new();
        let reason = |headers: &HeaderMap| match single_header(
            &AuthRequest::new(&method, &uri, headers, None),
            "x-h",
        ) {
            Ok(_) => None,
            Err(AuthError::Rejected { reason, .. }) => Some(reason),
            Err(other) => panic!("{other}"),
        };
        assert_eq!(reason(&headers), Some(AuthReason::ProxyRequired));
        headers.append("x-h", HeaderValue::from_static("one"));
        assert_eq!(reason(&headers), None);
        headers.append("X-H", HeaderValue::from_static("two"));
        assert_eq!(reason(&headers), Some(AuthReason::InvalidCredential));
    }
}

//! Envoy's `x-forwarded-client-cert`: `Key=value` pairs separated by `;`, one element
//! per hop separated by `,`, values optionally double-quoted with `\` escapes, and
//! `Cert`/`URI`/`By` URL-encoded. Parsed as the reference parses it
//! (`mtls_authenticate_xfcc`), except that an unterminated quote is refused instead of
//! read to the end of the header: an ambiguous value is not evidence.

use std::sync::Arc;

use super::super::{AuthContext, AuthError, AuthReason, AuthRequest, Authenticate, MTLS_DOMAIN};
use super::{single_header, unquote};

/// The header Envoy forwards client certificate details in.
pub const XFCC_HEADER: &str = "x-forwarded-client-cert";

/// One element (one hop) of an `x-forwarded-client-cert` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct XfccElement {
    /// `Hash`: the SHA-256 of the client certificate, hex.
    pub hash: Option<String>,
    /// `Cert`: the client certificate, URL-decoded PEM.
    pub cert: Option<String>,
    /// `Subject`: the certificate's subject DN.
    pub subject: Option<String>,
    /// `URI`: the URI SAN.
    pub uri: Option<String>,
    /// `DNS`: the DNS SANs.
    pub dns: Vec<String>,
    /// `By`: the proxy's own URI SAN.
    pub by: Option<String>,
}

impl XfccElement {
    /// The first `CN=` of [`XfccElement::subject`], or `""`.
    pub fn common_name(&self) -> &str {
        let Some(subject) = &self.subject else {
            return "";
        };
        split_unescaped(subject, ',')
            .into_iter()
            .map(str::trim)
            .find(|part| part.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CN=")))
            .map_or("", |part| &part[3..])
    }
}

/// Which element names the caller when several hops added one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XfccSelect {
    /// The first: the original client (the default).
    #[default]
    First,
    /// The last: the nearest proxy.
    Last,
}

type ValidateFn = dyn Fn(&XfccElement) -> Result<AuthContext, AuthError> + Send + Sync;

/// Authenticates by Envoy's `x-forwarded-client-cert` (see the module docs). By default
/// the principal is the subject's CN and the claims are the element's `hash`, `subject`,
/// `uri`, `dns` and `by`, as in the reference.
#[derive(Clone)]
pub struct Xfcc {
    domain: String,
    select: XfccSelect,
    validate: Option<Arc<ValidateFn>>,
}

impl Default for Xfcc {
    fn default() -> Self {
        Xfcc::new()
    }
}

impl std::fmt::Debug for Xfcc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xfcc")
            .field("domain", &self.domain)
            .field("select", &self.select)
            .field("validate", &self.validate.is_some())
            .finish()
    }
}

impl Xfcc {
    /// Domain `"mtls"`, the first element, the subject's CN as principal.
    pub fn new() -> Self {
        Xfcc {
            domain: MTLS_DOMAIN.to_owned(),
            select: XfccSelect::First,
            validate: None,
        }
    }

    /// Sets `AuthContext::domain` of the default identity.
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Which element to use.
    #[must_use]
    pub fn select(mut self, select: XfccSelect) -> Self {
        self.select = select;
        self
    }

    /// Decides the identity from the selected element instead of the default.
    #[must_use]
    pub fn validate(
        mut self,
        validate: impl Fn(&XfccElement) -> Result<AuthContext, AuthError> + Send + Sync + 'static,
    ) -> Self {
        self.validate = Some(Arc::new(validate));
        self
    }
}

impl Authenticate for Xfcc {
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<AuthContext, AuthError> {
        let elements = parse(single_header(request, XFCC_HEADER)?)?;
        let element = match self.select {
            XfccSelect::First => elements.first(),
            XfccSelect::Last => elements.last(),
        }
        .ok_or_else(|| {
            AuthError::rejected(
                AuthReason::InvalidCredential,
                format!("empty {XFCC_HEADER} header"),
            )
        })?;
        if let Some(validate) = &self.validate {
            return validate(element);
        }
        let mut ctx = AuthContext::authenticated(self.domain.clone(), element.common_name());
        for (key, value) in [
            ("hash", &element.hash),
            ("subject", &element.subject),
            ("uri", &element.uri),
        ] {
            if let Some(value) = value {
                ctx = ctx.with_claim(key, value.clone());
            }
        }
        if !element.dns.is_empty() {
            ctx = ctx.with_claim("dns", element.dns.clone());
        }
        if let Some(by) = &element.by {
            ctx = ctx.with_claim("by", by.clone());
        }
        Ok(ctx)
    }

    fn proxy_headers(&self) -> Vec<String> {
        vec![XFCC_HEADER.to_owned()]
    }
}

/// The elements of a header value.
///
/// # Errors
/// `invalid_credential` on an unterminated quote or a URL-encoded field that is not UTF-8.
pub(super) fn parse(value: &str) -> Result<Vec<XfccElement>, AuthError> {
    let mut elements = Vec::new();
    for raw in split_quoted(value, ',')? {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let mut element = XfccElement::default();
        for pair in split_quoted(raw, ';')? {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let mut value = value.trim().to_owned();
            if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
                value = unescape(&value[1..value.len() - 1]);
            }
            if matches!(key.as_str(), "cert" | "uri" | "by") {
                value = unquote(&value, XFCC_HEADER)?;
            }
            match key.as_str() {
                "hash" => element.hash = Some(value),
                "cert" => element.cert = Some(value),
                "subject" => element.subject = Some(value),
                "uri" => element.uri = Some(value),
                "dns" => element.dns.push(value),
                "by" => element.by = Some(value),
                _ => {}
            }
        }
        elements.push(element);
    }
    Ok(elements)
}

/// Splits on `delimiter` outside double quotes (`\` escapes inside them).
fn split_quoted(text: &str, delimiter: char) -> Result<Vec<&str>, AuthError> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && in_quotes {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == delimiter && !in_quotes {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    if in_quotes {
        return Err(AuthError::rejected(
            AuthReason::InvalidCredential,
            format!("unterminated quote in {XFCC_HEADER}"),
        ));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// Splits on `delimiter` not preceded by `\` (the reference's CN lookup).
fn split_unescaped(text: &str, delimiter: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut previous) = (0, None);
    for (i, c) in text.char_indices() {
        if c == delimiter && previous != Some('\\') {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
        previous = Some(c);
    }
    parts.push(&text[start..]);
    parts
}

/// Drops the `\` of every `\x` inside a quoted value.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    fn run(auth: &Xfcc, values: &[&str]) -> Result<AuthContext, AuthError> {
        let (method, uri) = (Method::POST, Uri::from_static("/p/m"));
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(XFCC_HEADER, HeaderValue::from_str(v).unwrap());
        }
        auth.authenticate(&AuthRequest::new(&method, &uri, &headers, None))
    }

    fn reason(result: Result<AuthContext, AuthError>) -> AuthReason {
        match result {
            Err(AuthError::Rejected { reason, .. }) => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    const ENVOY: &str = "By=spiffe://proxy.example/envoy;Hash=abc123;\
        Subject=\"CN=alice,OU=eng\\,ops,O=Example\";URI=spiffe://example.org/alice;\
        DNS=a.example;DNS=b.example,By=x;Subject=\"CN=hop2\"";

    #[test]
    fn the_reference_fields_become_principal_and_claims() {
        let ctx = run(&Xfcc::new(), &[ENVOY]).unwrap();
        assert_eq!(ctx.principal.as_deref(), Some("alice"));
        assert_eq!(ctx.domain.as_deref(), Some("mtls"));
        assert_eq!(ctx.claims["hash"], "abc123");
        assert_eq!(ctx.claims["subject"], "CN=alice,OU=eng,ops,O=Example");
        assert_eq!(ctx.claims["uri"], "spiffe://example.org/alice");
        assert_eq!(
            ctx.claims["dns"],
            serde_json::json!(["a.example", "b.example"])
        );
        assert_eq!(ctx.claims["by"], "spiffe://proxy.example/envoy");
        let last = run(&Xfcc::new().select(XfccSelect::Last), &[ENVOY]).unwrap();
        assert_eq!(last.principal.as_deref(), Some("hop2"));
        assert_eq!(Xfcc::new().proxy_headers(), [XFCC_HEADER]);
        let cert = parse("Cert=\"-----BEGIN%20CERTIFICATE-----%0A\"").unwrap();
        assert_eq!(
            cert[0].cert.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\n")
        );
    }

    #[test]
    fn missing_duplicated_and_malformed_headers_are_refused() {
        assert_eq!(reason(run(&Xfcc::new(), &[])), AuthReason::ProxyRequired);
        assert_eq!(
            reason(run(&Xfcc::new(), &[ENVOY, ENVOY])),
            AuthReason::InvalidCredential
        );
        assert_eq!(
            reason(run(&Xfcc::new(), &[",, ,"])),
            AuthReason::InvalidCredential
        );
        assert_eq!(
            reason(run(&Xfcc::new(), &["Subject=\"CN=alice"])),
            AuthReason::InvalidCredential
        );
        assert_eq!(
            reason(run(&Xfcc::new(), &["URI=%ff%fe"])),
            AuthReason::InvalidCredential
        );
    }
}

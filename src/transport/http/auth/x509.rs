//! What an authenticator needs from an X.509 client certificate: the subject (as an
//! RFC 4514 string and its common name), the serial, the validity window and the subject
//! alternative names, read once into owned values.
//!
//! Parsing is x509-parser's; nothing here checks signatures or chains. A certificate
//! read from a TLS connection was verified by rustls during the handshake; one read from
//! a proxy's header was verified by the proxy. The subject string follows RFC 4514 as the
//! reference renders it (last RDN first, no spaces, `CN`/`O`/`OU`/… short names, dotted
//! OIDs otherwise), so claims compare equal across ports.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::hex::encode as hex;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// A parsed client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    subject_dn: String,
    common_name: Option<String>,
    serial_hex: String,
    not_before: i64,
    not_after: i64,
    dns_names: Vec<String>,
    uris: Vec<String>,
    emails: Vec<String>,
    sha256_hex: String,
}

/// A certificate that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid certificate: {0}")]
pub struct CertificateError(String);

impl ClientCertificate {
    /// Reads one DER certificate (trailing bytes are an error).
    ///
    /// # Errors
    /// [`CertificateError`] when the bytes are not exactly one X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertificateError(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError(
                "trailing bytes after the certificate".into(),
            ));
        }
        let subject = cert.subject();
        let mut sans = (Vec::new(), Vec::new(), Vec::new());
        let extension = cert
            .subject_alternative_name()
            .map_err(|e| CertificateError(format!("subject alternative names: {e}")))?;
        for name in extension.iter().flat_map(|e| e.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(n) => sans.0.push((*n).to_owned()),
                GeneralName::URI(u) => sans.1.push((*u).to_owned()),
                GeneralName::RFC822Name(m) => sans.2.push((*m).to_owned()),
                _ => {}
            }
        }
        Ok(ClientCertificate {
            subject_dn: rfc4514(subject),
            common_name: subject
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned),
            serial_hex: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            dns_names: sans.0,
            uris: sans.1,
            emails: sans.2,
            sha256_hex: hex(&Sha256::digest(der)),
        })
    }

    /// The subject as an RFC 4514 string, e.g. `CN=alice,O=Example`.
    pub fn subject_dn(&self) -> &str {
        &self.subject_dn
    }

    /// The subject's first common name, if it has one (as text).
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The serial number as lowercase hex without leading zeros.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// The DNS names among the subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The URIs among the subject alternative names (e.g. a SPIFFE ID).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The e-mail addresses among the subject alternative names.
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// The SHA-256 fingerprint of the DER bytes, lowercase hex without colons.
    pub fn sha256_fingerprint(&self) -> &str {
        &self.sha256_hex
    }

    /// Start of the validity window, seconds since the Unix epoch.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of the validity window, seconds since the Unix epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether `now` (seconds since the Unix epoch) lies in the validity window.
    pub fn is_valid_at(&self, now: i64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }

    /// `not_after` as ISO 8601 with a `+00:00` offset (the reference's spelling).
    pub fn not_after_iso(&self) -> String {
        DateTime::<Utc>::from_timestamp(self.not_after, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
            .unwrap_or_default()
    }

    /// The claims an mTLS identity carries: `subject_dn`, `serial`, `not_valid_after`
    /// (the reference's names), and the SANs present as `dns`, `uri`, `email` lists.
    pub fn claims(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut claims = serde_json::Map::new();
        claims.insert("subject_dn".into(), self.subject_dn.clone().into());
        claims.insert("serial".into(), self.serial_hex.clone().into());
        claims.insert("not_valid_after".into(), self.not_after_iso().into());
        for (key, list) in [
            ("dns", &self.dns_names),
            ("uri", &self.uris),
            ("email", &self.emails),
        ] {
            if !list.is_empty() {
                claims.insert(key.into(), list.clone().into());
            }
        }
        claims
    }
}

/// `format(serial, "x")`: big-endian hex, no leading zeros, `0` for zero.
fn serial_hex(raw: &[u8]) -> String {
    let text = hex(raw);
    let trimmed = text.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The short names RFC 4514 (and the reference) print; other types print as dotted OIDs.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 4514: RDNs last first, joined by `,`; multi-valued RDNs by `+`.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let key = short_name(&oid).map_or(oid.clone(), str::to_owned);
                    let value = match attr.as_str() {
                        Ok(text) => escape(text),
                        Err(_) => format!("#{}", hex(attr.as_slice())),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 §2.4 value escaping.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_escapes_follow_the_reference() {
        assert_eq!(serial_hex(&[0x00, 0x0a, 0xbc]), "abc");
        assert_eq!(serial_hex(&[0x00]), "0");
        assert_eq!(escape(" a,b+c#"), "\\ a\\,b\\+c#");
        assert_eq!(escape("#x "), "\\#x\\ ");
    }

    #[test]
    fn a_generated_certificate_reads_back() {
        let mut params = rcgen::CertificateParams::new(vec!["svc.example".into()]).unwrap();
        // In certificate order O, CN: RFC 4514 prints the last RDN first.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/alice".try_into().unwrap(),
        ));
        params.serial_number = Some(vec![0x01, 0x02].into());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let read = ClientCertificate::from_der(cert.der()).unwrap();
        assert_eq!(read.common_name(), Some("alice"));
        assert_eq!(read.subject_dn(), "CN=alice,O=Example\\, Inc");
        assert_eq!(read.serial_hex(), "102");
        assert_eq!(read.dns_names(), ["svc.example"]);
        assert_eq!(read.uris(), ["spiffe://example.org/alice"]);
        assert_eq!(read.claims()["uri"][0], "spiffe://example.org/alice");
        assert!(read.not_after_iso().ends_with("+00:00"));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_typed_errors() {
        assert!(ClientCertificate::from_der(b"not a certificate").is_err());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let mut der = cert.der().to_vec();
        der.push(0);
        assert!(ClientCertificate::from_der(&der).is_err());
    }
}

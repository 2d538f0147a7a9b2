//! Which URLs a reader may fetch: the policy applied to a pointer's URL and to every
//! redirect it leads to.
//!
//! A pointer's URL comes from the peer, so fetching it blindly would let a server (or
//! whoever tampers with its answers) make the client request any address it can reach —
//! cloud metadata endpoints, internal services. The default is the reference's:
//! `https` only. Private, loopback and link-local addresses are refused unless allowed,
//! and a host allowlist narrows it further. Host names are judged as written (no DNS
//! lookup): `localhost` counts as loopback.

use std::net::IpAddr;

use reqwest::Url;

use crate::wire::external::redact_url;
use crate::{Error, ExternalFailure, Result};

/// The URL policy of a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Accept `http` as well as `https`.
    pub allow_http: bool,
    /// Accept loopback, private (RFC 1918, unique-local) and link-local addresses.
    pub allow_private: bool,
    /// When set, only these hosts (exact, case-insensitive; IP literals as written).
    pub hosts: Option<Vec<String>>,
}

impl Default for UrlPolicy {
    /// `https` to public hosts only.
    fn default() -> Self {
        UrlPolicy {
            allow_http: false,
            allow_private: false,
            hosts: None,
        }
    }
}

impl UrlPolicy {
    /// Plain or TLS HTTP to this machine only (`127.0.0.1`, `::1`, `localhost`): test
    /// storage such as the reference's fake storage service.
    pub fn loopback() -> Self {
        UrlPolicy {
            allow_http: true,
            allow_private: true,
            hosts: Some(vec!["127.0.0.1".into(), "::1".into(), "localhost".into()]),
        }
    }

    /// Any `http` or `https` URL: no protection at all. Only for tests and trusted
    /// networks.
    pub fn permissive() -> Self {
        UrlPolicy {
            allow_http: true,
            allow_private: true,
            hosts: None,
        }
    }

    /// Sets [`UrlPolicy::hosts`].
    #[must_use]
    pub fn with_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Checks `url`; the error names it redacted.
    ///
    /// # Errors
    /// [`Error::External`] (`UrlRejected`).
    pub fn check(&self, url: &str) -> Result<Url> {
        let reject = |why: &str| {
            Error::external(
                ExternalFailure::UrlRejected,
                format!("ExternalLocation URL rejected: {} ({why})", redact_url(url)),
            )
        };
        let parsed = Url::parse(url).map_err(|_| reject("not a URL"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(reject("only https is permitted")),
            _ => return Err(reject("only http(s) URLs can be fetched")),
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| reject("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Some(hosts) = &self.hosts
            && !hosts.iter().any(|h| h.eq_ignore_ascii_case(&host))
        {
            return Err(reject("host not allowed"));
        }
        if !self.allow_private && is_private(&host) {
            return Err(reject("private, loopback or link-local address"));
        }
        Ok(parsed)
    }
}

/// Whether `host` names this machine or a private network.
fn is_private(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64 // 100.64/10
        }
        Ok(IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || ip.to_ipv4_mapped().is_some_and(|v4| is_private(&v4.to_string()))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_takes_public_https_only() {
        let policy = UrlPolicy::default();
        assert!(policy.check("https://bucket.example.com/a?sig=1").is_ok());
        for bad in [
            "http://bucket.example.com/a",
            "https://127.0.0.1/a",
            "https://localhost/a",
            "https://10.1.2.3/a",
            "https://169.254.169.254/latest",
            "https://[::1]/a",
            "https://[fd00::1]/a",
            "https://[::ffff:192.168.0.1]/a",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(policy.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_takes_this_machine_only_and_errors_hide_secrets() {
        let policy = UrlPolicy::loopback();
        assert!(policy.check("http://127.0.0.1:9/download/x").is_ok());
        assert!(policy.check("http://[::1]:9/x").is_ok());
        assert!(policy.check("http://localhost:9/x").is_ok());
        let err = policy
            .check("http://evil.example/x?token=secret")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://evil.example/x") && !err.contains("secret"),
            "{err}"
        );
        let narrow = UrlPolicy::loopback().with_hosts(["127.0.0.1"]);
        assert!(narrow.check("http://localhost:9/x").is_err());
    }
}

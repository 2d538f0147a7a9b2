//! What a server advertises on `OPTIONS {prefix}/health`: its caps, codings and
//! features. The client probes before its first call (and again once the answer's
//! `Cache-Control: max-age` has passed) because two of them change what it sends: it must
//! not send `VGI-Accept-Max-Response-Bytes` to a server that does not honour it, and it
//! compresses request bodies with a coding the server decodes.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The server capabilities advertised in `VGI-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCapabilities {
    /// `VGI-Max-Request-Bytes`: the largest request body the server takes.
    pub max_request_bytes: Option<u64>,
    /// `VGI-Max-Response-Bytes`: the server's cap on its answers.
    pub max_response_bytes: Option<u64>,
    /// `VGI-Max-Externalized-Response-Bytes`.
    pub max_externalized_response_bytes: Option<u64>,
    /// `VGI-Accept-Max-Response-Bytes-Support: true`: the server honours the client's
    /// answer budget.
    pub accept_max_response_bytes_support: bool,
    /// `VGI-Externalization-Enabled: true`.
    pub externalization_enabled: bool,
    /// `VGI-Upload-URL-Support: true`.
    pub upload_url_support: bool,
    /// `VGI-Max-Upload-Bytes`.
    pub max_upload_bytes: Option<u64>,
    /// `VGI-Supported-Encodings`, lowercase tokens (absent header: `["zstd"]`, the
    /// reference's reading; present and empty: none).
    pub supported_encodings: Vec<String>,
    /// `VGI-Sticky-Enabled: true`.
    pub sticky_enabled: bool,
    /// `VGI-Sticky-Default-TTL`, seconds.
    pub sticky_default_ttl: Option<u64>,
    /// `VGI-Sticky-Echo-Headers`.
    pub sticky_echo_headers: Vec<String>,
}

impl HttpCapabilities {
    /// Reads the capability headers of any answer.
    pub(super) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let flag = |name: &str| text(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let list = |v: &str| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        };
        HttpCapabilities {
            max_request_bytes: number("vgi-max-request-bytes"),
            max_response_bytes: number("vgi-max-response-bytes"),
            max_externalized_response_bytes: number("vgi-max-externalized-response-bytes"),
            accept_max_response_bytes_support: flag("vgi-accept-max-response-bytes-support"),
            externalization_enabled: flag("vgi-externalization-enabled"),
            upload_url_support: flag("vgi-upload-url-support"),
            max_upload_bytes: number("vgi-max-upload-bytes"),
            supported_encodings: text("vgi-supported-encodings")
                .map_or_else(|| vec!["zstd".to_owned()], list),
            sticky_enabled: flag("vgi-sticky-enabled"),
            sticky_default_ttl: number("vgi-sticky-default-ttl"),
            sticky_echo_headers: text("vgi-sticky-echo-headers")
                .map(|v| {
                    v.split(',')
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// How long a probe's answer may be reused: its `Cache-Control: max-age`, `None` when
/// it names none (then it is kept for the connector's life).
pub(super) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            let (k, v) = d.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| v.trim().trim_matches('"').parse::<u64>().ok())?
        })
        .map(Duration::from_secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn encodings_absent_means_zstd_and_empty_means_none() {
        assert_eq!(
            HttpCapabilities::from_headers(&headers(&[])).supported_encodings,
            ["zstd"]
        );
        let caps = HttpCapabilities::from_headers(&headers(&[
            ("VGI-Supported-Encodings", ""),
            ("VGI-Max-Request-Bytes", "4096"),
            ("VGI-Accept-Max-Response-Bytes-Support", "true"),
        ]));
        assert!(caps.supported_encodings.is_empty());
        assert_eq!(caps.max_request_bytes, Some(4096));
        assert!(caps.accept_max_response_bytes_support);
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let h = headers(&[("Cache-Control", "public, max-age=300")]);
        assert_eq!(max_age(&h), Some(Duration::from_secs(300)));
        assert_eq!(max_age(&headers(&[])), None);
    }
}

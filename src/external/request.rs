//! One HTTP request of the reader: redirects followed by hand so the URL policy sees
//! every target, an optional byte range, and errors that name the URL redacted.

use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode, Url, header};

use super::options::FetchOptions;
use super::policy::UrlPolicy;
use crate::wire::external::redact_url;
use crate::{Error, ExternalFailure, Result};

/// A [`ExternalFailure::Fetch`] error about `url` (redacted).
pub(super) fn fetch_error(url: &str, what: impl std::fmt::Display) -> Error {
    Error::external(
        ExternalFailure::Fetch,
        format!("{what} ({})", redact_url(url)),
    )
}

/// One request, following redirects by hand: the policy checks every target, and at
/// most `options.max_redirects` are followed. `range`: an inclusive byte range to ask
/// for.
pub(super) fn request(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    method: Method,
    url: &str,
    range: Option<(u64, u64)>,
) -> Result<Response> {
    let mut current: Url = policy.check(url)?;
    for hop in 0..=options.max_redirects {
        let mut builder = client.request(method.clone(), current.clone());
        if let Some((start, end)) = range {
            builder = builder.header(header::RANGE, format!("bytes={start}-{end}"));
        }
        let response = builder.send().map_err(|e| {
            fetch_error(
                current.as_str(),
                format!("{method} failed: {}", e.without_url()),
            )
        })?;
        if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        if hop == options.max_redirects {
            break;
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| fetch_error(current.as_str(), "redirect without a Location header"))?;
        let next = current
            .join(location)
            .map_err(|_| fetch_error(current.as_str(), "redirect target is not a URL"))?;
        current = policy.check(next.as_str())?;
    }
    Err(fetch_error(
        url,
        format!(
            "ExternalLocation redirect limit exceeded (max_redirects={})",
            options.max_redirects
        ),
    ))
}

pub(super) fn content_encoding(response: &Response) -> Option<String> {
    let value = response
        .headers()
        .get(header::CONTENT_ENCODING)?
        .to_str()
        .ok()?;
    let codec = value.split(';').next()?.trim().to_ascii_lowercase();
    (!codec.is_empty()).then_some(codec)
}

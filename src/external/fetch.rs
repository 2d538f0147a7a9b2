//! Fetching what a pointer names: a probe, then one GET or parallel range GETs
//! (`range.rs`), every hop checked against the URL policy, every byte counted against
//! the caps, the body decoded by its `Content-Encoding`, transient failures retried a
//! bounded number of times.
//!
//! The probe learns the object's size before anything is downloaded, so an oversized
//! object is refused without reading it; a store that refuses the probe (method-bound
//! signed URLs answer 403; others 405 or 501) is simply fetched. A single GET's body is
//! read through a cap either way: `Content-Length` is the server's claim, not a bound.
//! Decompression has its own cap, so a small object cannot expand into an unbounded
//! allocation. Redirects are followed by hand so the policy sees each target.

use std::io::Read;
use std::thread;

use reqwest::Method;
use reqwest::blocking::Client;

use super::options::FetchOptions;
use super::policy::UrlPolicy;
use super::range;
use super::request::{content_encoding, fetch_error, request};
use crate::wire::external::redact_url;
use crate::{Error, ExternalFailure, Result};

/// Fetches `url` under `policy` and `options`, retrying fetch failures (not policy,
/// size or integrity failures) up to `options.attempts` times in all.
pub(crate) fn fetch(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
) -> Result<Vec<u8>> {
    let attempts = options.attempts.clamp(1, 3);
    let mut attempt = 1;
    loop {
        match fetch_once(client, policy, options, url) {
            Err(Error::External {
                kind: ExternalFailure::Fetch,
                message,
            }) => {
                if attempt >= attempts {
                    return Err(Error::external(
                        ExternalFailure::Fetch,
                        format!(
                            "Failed to resolve ExternalLocation after {attempts} attempts: {}: {message}",
                            redact_url(url)
                        ),
                    ));
                }
                attempt += 1;
                thread::sleep(options.retry_delay);
            }
            other => return other,
        }
    }
}

fn fetch_once(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
) -> Result<Vec<u8>> {
    let probe = range::probe(client, policy, options, url)?;
    if let Some(length) = probe.length
        && length > options.max_fetch_bytes
    {
        return Err(too_large(
            url,
            format!(
                "Content-Length {length} exceeds max_fetch_bytes ({})",
                options.max_fetch_bytes
            ),
        ));
    }
    if let Some(length) = probe.parallel(options) {
        let body = range::fetch_parallel(client, policy, options, url, length)?;
        return decode(
            body,
            probe.encoding.as_deref(),
            options.max_decoded_bytes(),
            url,
        );
    }
    let response = request(client, policy, options, Method::GET, url, None)?;
    if !response.status().is_success() {
        return Err(fetch_error(
            url,
            format!("GET answered {}", response.status()),
        ));
    }
    let encoding = content_encoding(&response).or(probe.encoding);
    let cap = options.max_fetch_bytes;
    let mut body = Vec::new();
    response
        .take(cap.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| fetch_error(url, format!("reading the object failed: {e}")))?;
    if body.len() as u64 > cap {
        return Err(too_large(
            url,
            format!("the object exceeds max_fetch_bytes ({cap})"),
        ));
    }
    decode(body, encoding.as_deref(), options.max_decoded_bytes(), url)
}

fn too_large(url: &str, what: String) -> Error {
    Error::external(
        ExternalFailure::TooLarge,
        format!(
            "ExternalLocation fetch rejected: {what} ({})",
            redact_url(url)
        ),
    )
}

/// Decodes a body by its `Content-Encoding` (zstd, gzip; anything else as stored), with
/// the decoded size capped.
fn decode(body: Vec<u8>, encoding: Option<&str>, cap: u64, url: &str) -> Result<Vec<u8>> {
    let encoded = body.len();
    let failed = |codec: &str, e: std::io::Error| {
        Error::external(
            ExternalFailure::Integrity,
            format!(
                "Failed to decompress {codec} data ({encoded} encoded bytes) without exceeding max_decompressed_bytes={cap} from {}: {e}",
                redact_url(url)
            ),
        )
    };
    let limit = cap.saturating_add(1);
    let out = match encoding {
        Some("zstd") => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(body.as_slice())
                .and_then(|d| d.take(limit).read_to_end(&mut out))
                .map_err(|e| failed("zstd", e))?;
            out
        }
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| failed("gzip", e))?;
            out
        }
        _ => body,
    };
    if out.len() as u64 > cap {
        return Err(too_large(
            url,
            format!("decoded body exceeded max_decompressed_bytes ({cap})"),
        ));
    }
    Ok(out)
}

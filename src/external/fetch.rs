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
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode, Url, header};

use super::policy::UrlPolicy;
use super::range;
use crate::wire::external::redact_url;
use crate::{Error, ExternalFailure, Result};

/// Bounds on fetching a pointer's object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// The largest object, as stored (encoded), that is downloaded. Default 256 MiB.
    pub max_fetch_bytes: u64,
    /// The largest object once decoded; `None`: 16 times `max_fetch_bytes`.
    pub max_decompressed_bytes: Option<u64>,
    /// Redirects followed per request (each target checked by the URL policy).
    /// Default 5.
    pub max_redirects: usize,
    /// Attempts in all for a fetch that failed in transit (1..=3). Default 3.
    pub attempts: u32,
    /// Pause between attempts. Default 500 ms.
    pub retry_delay: Duration,
    /// Bound on one attempt (connect, HEAD, GET and body). Default 60 s.
    pub timeout: Duration,
    /// Objects from this size are fetched as parallel range GETs (when the server takes
    /// ranges). Default 64 MiB, the reference's.
    pub parallel_threshold_bytes: u64,
    /// The size of one range. Default 8 MiB.
    pub chunk_size_bytes: u64,
    /// Ranges in flight at once. Default 8.
    pub max_parallel_requests: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_fetch_bytes: 256 << 20,
            max_decompressed_bytes: None,
            max_redirects: 5,
            attempts: 3,
            retry_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            parallel_threshold_bytes: 64 << 20,
            chunk_size_bytes: 8 << 20,
            max_parallel_requests: 8,
        }
    }
}

impl FetchOptions {
    /// Sets [`FetchOptions::max_fetch_bytes`].
    #[must_use]
    pub fn with_max_fetch_bytes(mut self, bytes: u64) -> Self {
        self.max_fetch_bytes = bytes;
        self
    }

    /// Sets [`FetchOptions::max_decompressed_bytes`].
    #[must_use]
    pub fn with_max_decompressed_bytes(mut self, bytes: u64) -> Self {
        self.max_decompressed_bytes = Some(bytes);
        self
    }

    /// Sets [`FetchOptions::max_redirects`].
    #[must_use]
    pub fn with_max_redirects(mut self, redirects: usize) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// Sets [`FetchOptions::attempts`] and [`FetchOptions::retry_delay`].
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, delay: Duration) -> Self {
        self.attempts = attempts;
        self.retry_delay = delay;
        self
    }

    /// Sets [`FetchOptions::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the parallel path: objects from `threshold` bytes are fetched in ranges of
    /// `chunk` bytes, `parallelism` at a time (`u64::MAX` as threshold: never).
    #[must_use]
    pub fn with_parallel(mut self, threshold: u64, chunk: u64, parallelism: usize) -> Self {
        self.parallel_threshold_bytes = threshold;
        self.chunk_size_bytes = chunk.max(1);
        self.max_parallel_requests = parallelism.max(1);
        self
    }

    /// The decoded-size cap in effect.
    pub fn max_decoded_bytes(&self) -> u64 {
        self.max_decompressed_bytes
            .unwrap_or_else(|| self.max_fetch_bytes.saturating_mul(16))
    }
}

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

pub(super) fn fetch_error(url: &str, what: impl std::fmt::Display) -> Error {
    Error::external(
        ExternalFailure::Fetch,
        format!("{what} ({})", redact_url(url)),
    )
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

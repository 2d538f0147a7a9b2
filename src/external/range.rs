//! The reader's probe and its parallel path, as the reference's `external_fetch`:
//!
//! 1. **Probe.** A `HEAD` learns the object's size, whether the server takes byte
//!    ranges, and its encoding, without downloading it. A pre-signed URL (S3 SigV4 or
//!    SigV2, GCS) is signed for `GET` only and a `HEAD` would be refused, so it is
//!    probed with `GET` `Range: bytes=0-0` instead: the `206`'s `Content-Range` names the
//!    size. A store that answers neither (403, 405, 501, or a `200` ignoring the range)
//!    tells nothing, and the caller falls back to one plain `GET`.
//! 2. **Parallel range GETs** when the object is at least
//!    [`FetchOptions::parallel_threshold_bytes`] and the server takes ranges: chunks of
//!    [`FetchOptions::chunk_size_bytes`] fetched by up to
//!    [`FetchOptions::max_parallel_requests`] threads, each written straight into its
//!    place in one buffer of the probed size. Every chunk must come back `206` with
//!    exactly its length (a byte more is read as a sentinel and refused), every hop of
//!    every chunk passes the URL policy, and the total was already checked against the
//!    cap. The reference also hedges slow chunks with a second request; this does not.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode, Url, header};

use super::options::FetchOptions;
use super::policy::UrlPolicy;
use super::request::{content_encoding, fetch_error, request};
use crate::Result;

/// What a probe learned about an object (all `None`/`false` when nothing).
#[derive(Debug, Default)]
pub(super) struct Probe {
    pub(super) length: Option<u64>,
    pub(super) ranges: bool,
    pub(super) encoding: Option<String>,
}

impl Probe {
    /// Whether the parallel path applies.
    pub(super) fn parallel(&self, options: &FetchOptions) -> Option<u64> {
        self.length
            .filter(|&len| self.ranges && len > 0 && len >= options.parallel_threshold_bytes)
    }
}

/// Whether `url` carries a pre-signed query (S3 SigV4/SigV2, GCS): signed per method, so
/// it is probed with a ranged `GET` rather than `HEAD`.
pub(super) fn is_presigned(url: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    let keys: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let has = |k: &str| keys.iter().any(|key| key == k);
    (has("X-Amz-Signature") && has("X-Amz-Credential"))
        || (has("X-Goog-Signature") && has("X-Goog-Credential"))
        || (has("Signature") && (has("AWSAccessKeyId") || has("GoogleAccessId")))
}

/// Probes `url`: `HEAD`, or a one-byte ranged `GET` for pre-signed URLs.
pub(super) fn probe(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
) -> Result<Probe> {
    if is_presigned(url) {
        return range_probe(client, policy, options, url);
    }
    let response = request(client, policy, options, Method::HEAD, url, None)?;
    let status = response.status();
    if matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        return Ok(Probe::default());
    }
    if !status.is_success() {
        return Err(fetch_error(url, format!("HEAD answered {status}")));
    }
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let ranges = response
        .headers()
        .get(header::ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("bytes"));
    Ok(Probe {
        length,
        ranges,
        encoding: content_encoding(&response),
    })
}

fn range_probe(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
) -> Result<Probe> {
    let response = request(client, policy, options, Method::GET, url, Some((0, 0)))?;
    let status = response.status();
    let encoding = content_encoding(&response);
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let length = response
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(total_of_content_range);
            // The origin is not trusted to honour the range: one byte, and one sentinel.
            let mut body = Vec::with_capacity(2);
            response
                .take(2)
                .read_to_end(&mut body)
                .map_err(|e| fetch_error(url, format!("reading the probe failed: {e}")))?;
            if body.len() != 1 {
                return Err(fetch_error(
                    url,
                    format!(
                        "Range chunk size mismatch: expected 1 byte, got {}",
                        body.len()
                    ),
                ));
            }
            Ok(Probe {
                length,
                ranges: true,
                encoding,
            })
        }
        // The range was ignored (the body is dropped unread) or the probe refused.
        StatusCode::OK
        | StatusCode::FORBIDDEN
        | StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::NOT_IMPLEMENTED
        | StatusCode::RANGE_NOT_SATISFIABLE => Ok(Probe {
            encoding: encoding.filter(|_| status == StatusCode::OK),
            ..Probe::default()
        }),
        other => Err(fetch_error(url, format!("GET answered {other}"))),
    }
}

/// The total of `bytes A-B/TOTAL`.
fn total_of_content_range(value: &str) -> Option<u64> {
    let (span, total) = value.trim().strip_prefix("bytes")?.trim().split_once('/')?;
    let (a, b) = span.split_once('-')?;
    a.trim().parse::<u64>().ok()?;
    b.trim().parse::<u64>().ok()?;
    total.trim().parse().ok()
}

/// Fetches an object of `length` bytes (already checked against the cap) as parallel
/// range GETs.
pub(super) fn fetch_parallel(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
    length: u64,
) -> Result<Vec<u8>> {
    let size = usize::try_from(length)
        .map_err(|_| fetch_error(url, format!("an object of {length} bytes does not fit")))?;
    let chunk = usize::try_from(options.chunk_size_bytes.max(1)).unwrap_or(usize::MAX);
    let mut body = vec![0u8; size];
    let mut offset = 0u64;
    let mut chunks = Vec::with_capacity(size.div_ceil(chunk));
    for slice in body.chunks_mut(chunk) {
        let len = slice.len() as u64;
        chunks.push((offset, slice));
        offset += len;
    }
    let workers = options.max_parallel_requests.clamp(1, chunks.len().max(1));
    let queue = Mutex::new(chunks.into_iter());
    let failed = AtomicBool::new(false);
    let next = || match queue.lock() {
        Ok(mut queue) => queue.next(),
        Err(poisoned) => poisoned.into_inner().next(),
    };
    let work = || -> Result<()> {
        while !failed.load(Ordering::Relaxed) {
            let Some((start, slice)) = next() else {
                return Ok(());
            };
            if let Err(e) = fetch_chunk(client, policy, options, url, start, slice) {
                failed.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    let outcome: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(fetch_error(url, "a range fetch thread panicked")))
            })
            .collect()
    });
    outcome.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(body)
}

/// One range, `start ..= start + into.len() - 1`, read into `into`.
fn fetch_chunk(
    client: &Client,
    policy: &UrlPolicy,
    options: &FetchOptions,
    url: &str,
    start: u64,
    into: &mut [u8],
) -> Result<()> {
    let end = start + into.len() as u64 - 1;
    let within = |what: String| fetch_error(url, format!("{what} (bytes={start}-{end})"));
    let response = request(
        client,
        policy,
        options,
        Method::GET,
        url,
        Some((start, end)),
    )?;
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return Err(within(format!(
            "Expected HTTP 206 for Range request, got {}",
            response.status()
        )));
    }
    let mut response = response;
    let mut filled = 0;
    while filled < into.len() {
        match response.read(&mut into[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(within(format!("reading the range failed: {e}"))),
        }
    }
    let mut sentinel = [0u8; 1];
    let extra = if filled == into.len() {
        response.read(&mut sentinel).unwrap_or(0)
    } else {
        0
    };
    if filled != into.len() || extra != 0 {
        return Err(within(format!(
            "Range chunk size mismatch: expected {} bytes, got {}",
            into.len(),
            filled + extra
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_urls_are_recognised() {
        assert!(is_presigned(
            "http://h/b/k?X-Amz-Algorithm=A&X-Amz-Credential=c&X-Amz-Signature=s"
        ));
        assert!(is_presigned(
            "https://h/k?AWSAccessKeyId=a&Expires=1&Signature=s"
        ));
        assert!(is_presigned(
            "https://h/k?X-Goog-Credential=c&X-Goog-Signature=s"
        ));
        assert!(!is_presigned(
            "https://h/k?X-Vgi-Expires=1&X-Vgi-Signature=s"
        ));
        assert!(!is_presigned("https://h/k?X-Amz-Signature=s"));
        assert!(!is_presigned("not a url"));
    }

    #[test]
    fn content_range_totals() {
        assert_eq!(total_of_content_range("bytes 0-0/12345"), Some(12345));
        assert_eq!(total_of_content_range(" bytes 0-0/7 "), Some(7));
        assert_eq!(total_of_content_range("bytes */7"), None);
        assert_eq!(total_of_content_range("bytes 0-0/*"), None);
    }
}

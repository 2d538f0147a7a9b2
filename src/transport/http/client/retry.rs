//! Retries of the requests the reference allows to be retried: the capability probe and
//! introspection. A call or a stream turn is never retried: the server may have acted on
//! it before the failure (a proxy's 502 after the handler ran), and a replay would act
//! twice. Transient failures are 429, 502, 503, 504, connect errors and timeouts; the
//! delay is full-jitter exponential backoff, raised to `Retry-After` (capped).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Client, Request, Response, StatusCode};

use super::failure::Failure;
use crate::client::HttpRetry;

/// Sends the request `build` makes through `client`, retrying transient failures under
/// `policy` when `retryable`. A request is built whole (not through reqwest's
/// `RequestBuilder`, whose header merging is a measurable part of a small call).
pub(super) async fn send(
    client: &Client,
    policy: &Option<HttpRetry>,
    retryable: bool,
    build: impl Fn() -> Result<Request, Failure>,
) -> Result<Response, Failure> {
    let policy = policy.filter(|_| retryable);
    let mut attempt = 0u32;
    loop {
        let outcome = client.execute(build()?).await;
        let Some(policy) = policy.filter(|p| attempt < p.max_retries) else {
            return outcome.map_err(Failure::Request);
        };
        let wait = match &outcome {
            Ok(response) if transient(response.status()) => {
                backoff(&policy, attempt).max(retry_after(response).unwrap_or_default())
            }
            Err(e) if e.is_connect() || e.is_timeout() => backoff(&policy, attempt),
            _ => return outcome.map_err(Failure::Request),
        };
        tracing::debug!(attempt, ?wait, "transient HTTP failure; retrying");
        tokio::time::sleep(wait.min(policy.backoff_max)).await;
        attempt += 1;
    }
}

fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Full jitter: uniform in `0..base·2^attempt`, capped.
fn backoff(policy: &HttpRetry, attempt: u32) -> Duration {
    let window = policy
        .backoff_base
        .saturating_mul(1u32 << attempt.min(20))
        .min(policy.backoff_max);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // A cheap mix of the clock's low bits: jitter needs spread, not secrecy.
    let fraction = f64::from(nanos.wrapping_mul(2_654_435_761) % 1_000_000) / 1_000_000.0;
    window.mul_f64(fraction)
}

/// `Retry-After` in seconds (an HTTP date is read as "now").
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    Some(Duration::from_secs(
        value.trim().parse::<u64>().unwrap_or(0),
    ))
}

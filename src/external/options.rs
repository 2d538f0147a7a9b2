//! [`FetchOptions`]: the reader's bounds (sizes, redirects, retries, timeout) and its
//! parallel range path (threshold, chunk size, parallelism), with the reference's
//! defaults.

use std::time::Duration;

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

//! External storage over HTTP: what the server's storage adds to its routes.
//!
//! The engine externalizes answers and resolves pointers on every transport (`wire::
//! external`, `server::inputs`); HTTP adds four things of its own, all here:
//!
//! - **capability headers**: `VGI-Externalization-Enabled` (the server has storage to
//!   write to), `VGI-Max-Externalized-Response-Bytes`, `VGI-Upload-URL-Support` and
//!   `VGI-Max-Upload-Bytes`;
//! - **the external cap**: one request may upload at most
//!   `max_externalized_response_bytes` to storage. Bytes once uploaded cannot be taken
//!   back, so the check comes before each upload ([`Capped`]) and an answer that would
//!   overshoot becomes the call's error, on every method kind, with no continuation;
//! - **pointer inputs**: a unary or `/init` body, or an `/exchange` turn, may be a
//!   pointer; it is resolved before dispatch, and a failure (missing object, digest,
//!   policy, caps) is the reference's `200` + `X-VGI-RPC-Error`, leaving the worker
//!   usable;
//! - **`POST {prefix}/__upload_url__/init`**, served when an [`UploadUrlProvider`] is
//!   installed: it vends the URL pairs a client PUTs an oversized request to
//!   (`upload.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use super::App;
use crate::wire::{self, ExternalLocation, Limits, Metadata, UploadUrlProvider};
use crate::{Error, ExternalFailure, Result, Server};

/// External storage settings of an HTTP server (the storage itself is the server's:
/// `ServerBuilder::external`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct StorageOptions {
    /// Vends upload URLs (`__upload_url__/init`, `VGI-Upload-URL-Support: true`), so a
    /// client can send a request larger than `max_request_bytes` through storage. The
    /// pointers it then sends are resolved by the server's storage reader
    /// (`ServerBuilder::external`), which must accept the provider's download URLs.
    pub upload_urls: Option<Arc<dyn UploadUrlProvider>>,
    /// Advertised as `VGI-Max-Upload-Bytes` with upload URLs: the largest object a
    /// client should PUT.
    pub max_upload_bytes: Option<u64>,
    /// The most one request's answer may upload to storage
    /// (`VGI-Max-Externalized-Response-Bytes`); beyond it the call fails.
    pub max_externalized_response_bytes: Option<u64>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("upload_urls", &self.upload_urls.is_some())
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field(
                "max_externalized_response_bytes",
                &self.max_externalized_response_bytes,
            )
            .finish()
    }
}

impl StorageOptions {
    /// Sets [`StorageOptions::upload_urls`].
    #[must_use]
    pub fn upload_urls(mut self, provider: Arc<dyn UploadUrlProvider>) -> Self {
        self.upload_urls = Some(provider);
        self
    }

    /// Sets [`StorageOptions::max_upload_bytes`].
    #[must_use]
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = Some(bytes);
        self
    }

    /// Sets [`StorageOptions::max_externalized_response_bytes`].
    #[must_use]
    pub fn max_externalized_response_bytes(mut self, bytes: u64) -> Self {
        self.max_externalized_response_bytes = Some(bytes);
        self
    }
}

/// Adds the storage capability headers to `caps`.
pub(super) fn capabilities(
    server: &Server,
    options: &StorageOptions,
    caps: &mut Vec<(&'static str, String)>,
) {
    if let Some(cap) = options.max_externalized_response_bytes {
        caps.push(("vgi-max-externalized-response-bytes", cap.to_string()));
    }
    let writes = server
        .inner
        .external
        .as_ref()
        .is_some_and(|e| e.threshold().is_some());
    caps.push(("vgi-externalization-enabled", writes.to_string()));
    if options.upload_urls.is_some() {
        caps.push(("vgi-upload-url-support", "true".to_owned()));
        if let Some(max) = options.max_upload_bytes {
            caps.push(("vgi-max-upload-bytes", max.to_string()));
        }
    }
}

/// The server's storage as one request sees it: every upload counted against the
/// request's external cap before it happens.
#[derive(Debug)]
pub(super) struct Capped<'a> {
    inner: &'a dyn ExternalLocation,
    cap: u64,
    method: &'a str,
    used: AtomicU64,
}

impl<'a> Capped<'a> {
    /// `inner` capped at `cap` bytes for one request to `method`.
    pub(super) fn new(inner: &'a dyn ExternalLocation, cap: u64, method: &'a str) -> Self {
        Capped {
            inner,
            cap,
            method,
            used: AtomicU64::new(0),
        }
    }
}

impl ExternalLocation for Capped<'_> {
    fn threshold(&self) -> Option<usize> {
        self.inner.threshold()
    }

    fn wants(&self, batch: &RecordBatch) -> bool {
        self.inner.wants(batch)
    }

    /// Counts the object (its raw IPC bytes, as the reference counts them) before it is
    /// stored: an overshoot fails without uploading.
    fn upload(&self, object: Vec<u8>, schema: &Schema) -> Result<String> {
        let size = u64::try_from(object.len()).unwrap_or(u64::MAX);
        let total = self.used.load(Ordering::Relaxed).saturating_add(size);
        if total > self.cap {
            return Err(Error::external(
                ExternalFailure::TooLarge,
                format!(
                    "Externalised payload exceeds max_externalized_response_bytes ({total} > {}) for method '{}'",
                    self.cap, self.method
                ),
            ));
        }
        self.used.store(total, Ordering::Relaxed);
        self.inner.upload(object, schema)
    }

    fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        self.inner.fetch(url)
    }
}

/// Resolves an input that arrived as a pointer: the batch it names, with the stored
/// batch's metadata (plus the fetch's provenance keys). The caller answers a failure as
/// the server's `500` (sent as `200` with `X-VGI-RPC-Error`, as the reference does).
pub(super) fn resolve(
    app: &App,
    batch: &RecordBatch,
    metadata: &Metadata,
    limits: &Limits,
) -> Result<(RecordBatch, Metadata)> {
    crate::server::inputs::resolve_external(
        app.server.inner.external.as_deref(),
        batch,
        metadata,
        limits,
    )
}

/// Whether `batch` is an external pointer.
pub(super) fn is_pointer(batch: &RecordBatch, metadata: &Metadata) -> bool {
    wire::BatchKind::of(batch, metadata) == wire::BatchKind::ExternalPointer
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Storage in memory, counting uploads.
    #[derive(Debug, Default)]
    struct Memory(Mutex<usize>);

    impl ExternalLocation for Memory {
        fn threshold(&self) -> Option<usize> {
            Some(1)
        }

        fn upload(&self, _object: Vec<u8>, _schema: &Schema) -> Result<String> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            Ok(format!("mem://{n}"))
        }

        fn fetch(&self, _url: &str) -> Result<Vec<u8>> {
            Err(Error::external(ExternalFailure::Fetch, "not here"))
        }
    }

    #[test]
    fn the_cap_counts_every_upload_of_a_request_before_it_happens() {
        let memory = Memory::default();
        let capped = Capped::new(&memory, 100, "echo");
        let schema = Schema::empty();
        assert_eq!(capped.upload(vec![0; 60], &schema).unwrap(), "mem://1");
        match capped.upload(vec![0; 60], &schema) {
            Err(Error::External { kind, message }) => {
                assert_eq!(kind, ExternalFailure::TooLarge);
                assert_eq!(
                    message,
                    "Externalised payload exceeds max_externalized_response_bytes (120 > 100) for method 'echo'"
                );
            }
            other => panic!("expected the cap, got {other:?}"),
        }
        // The refused object never reached storage; a smaller one still fits.
        assert_eq!(*memory.0.lock().unwrap(), 1);
        assert_eq!(capped.upload(vec![0; 40], &schema).unwrap(), "mem://2");
        assert_eq!(capped.threshold(), Some(1));
    }
}

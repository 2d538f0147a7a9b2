//! The worker's external-storage flags, as the reference's conformance HTTP fixtures
//! pass them (`tests/serve_conformance_http.py`, `serve_conformance_http_strict.py`):
//!
//! ```text
//! --fake-storage URL  --externalize-threshold N   (main.rs: every transport)
//! --compression {none,zstd}                       objects stored zstd-compressed
//! --max-fetch-bytes N  --max-decompressed-fetch-bytes N
//!                                                 the reader's encoded and decoded caps
//! --reject-localhost-redirects                    fetch from 127.0.0.1 only (so the fake
//!                                                 storage's `localhost` redirect fails)
//! --max-externalized-response-bytes N             HTTP: the external cap per answer
//! ```
//!
//! Over HTTP, `--fake-storage` also vends upload URLs from the same storage
//! (`VGI-Upload-URL-Support`, 64 MiB `VGI-Max-Upload-Bytes`), and `--max-request-bytes`
//! defaults to the threshold, as the reference's storage worker does: requests above it
//! must come through storage.

use std::sync::Arc;

use vgi_rpc::external::{Compression, ExternalConfig, FakeStorage, FetchOptions, UrlPolicy};
use vgi_rpc::transport::http::{HttpOptions, StorageOptions};

use super::int_arg;

/// The largest object a client is told it may upload (the reference worker's).
const MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// The storage flags beyond `--fake-storage` and `--externalize-threshold`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StorageFlags {
    pub(crate) zstd: bool,
    pub(crate) max_fetch_bytes: Option<u64>,
    pub(crate) max_decompressed_fetch_bytes: Option<u64>,
    pub(crate) reject_localhost_redirects: bool,
    pub(crate) max_externalized_response_bytes: Option<u64>,
}

/// Parses one storage flag; `Ok(false)` when `flag` is not one.
pub(crate) fn parse_flag(
    flag: &str,
    value: &mut dyn FnMut(&str) -> Result<String, String>,
    flags: &mut StorageFlags,
) -> Result<bool, String> {
    match flag {
        "--compression" => {
            let choice = value(flag)?;
            flags.zstd = match choice.as_str() {
                "none" => false,
                "zstd" => true,
                other => {
                    return Err(format!(
                        "argument --compression: invalid choice: {other:?} (choose from 'none', 'zstd')"
                    ));
                }
            };
        }
        "--max-fetch-bytes" => flags.max_fetch_bytes = Some(int_arg(flag, &value(flag)?)?),
        "--max-decompressed-fetch-bytes" => {
            flags.max_decompressed_fetch_bytes = Some(int_arg(flag, &value(flag)?)?);
        }
        "--reject-localhost-redirects" => flags.reject_localhost_redirects = true,
        "--max-externalized-response-bytes" => {
            flags.max_externalized_response_bytes = Some(int_arg(flag, &value(flag)?)?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The reference's `--fake-storage` wiring: the storage service at `url`, batches from
/// `threshold` bytes externalized, pointers fetched from this machine only (127.0.0.1
/// alone with `--reject-localhost-redirects`), under the flags' caps and compression.
pub(crate) fn external_config(url: &str, threshold: u64, flags: &StorageFlags) -> ExternalConfig {
    let policy = if flags.reject_localhost_redirects {
        UrlPolicy::loopback().with_hosts(["127.0.0.1"])
    } else {
        UrlPolicy::loopback()
    };
    let mut fetch = FetchOptions::default();
    if let Some(bytes) = flags.max_fetch_bytes {
        fetch = fetch.with_max_fetch_bytes(bytes);
    }
    if let Some(bytes) = flags.max_decompressed_fetch_bytes {
        fetch = fetch.with_max_decompressed_bytes(bytes);
    }
    let mut config = ExternalConfig::new()
        .with_storage(Arc::new(FakeStorage::new(url)))
        .with_threshold(usize::try_from(threshold).unwrap_or(usize::MAX))
        .with_url_policy(policy)
        .with_fetch_options(fetch);
    if flags.zstd {
        config = config.with_compression(Compression::Zstd(3));
    }
    config
}

/// The HTTP side of the storage flags (see the module docs); `max_request_bytes` is the
/// `--max-request-bytes` flag, if given.
pub(crate) fn http_options(
    mut options: HttpOptions,
    fake_storage: Option<&str>,
    threshold: u64,
    max_request_bytes: Option<u64>,
    flags: &StorageFlags,
) -> HttpOptions {
    let mut storage = StorageOptions::default();
    if let Some(cap) = flags.max_externalized_response_bytes {
        storage = storage.max_externalized_response_bytes(cap);
    }
    if let Some(url) = fake_storage {
        storage = storage
            .upload_urls(Arc::new(FakeStorage::new(url)))
            .max_upload_bytes(MAX_UPLOAD_BYTES);
        if max_request_bytes.is_none() {
            options = options.max_request_bytes(threshold);
        }
    }
    options.storage(storage)
}

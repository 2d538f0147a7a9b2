//! [`ExternalConfig`]: the stock [`ExternalLocation`] — a [`Storage`] and threshold for
//! the writer, a policy-bound fetcher for the reader.
//!
//! One value serves both ends, as in the reference: a server uses its storage to
//! externalize answers and its fetcher to resolve pointer inputs; a client without
//! storage only resolves. The defaults are the reference's (1 MiB threshold, no
//! compression, 256 MiB encoded cap and 16 times that decoded, 5 redirects, 3 attempts
//! 0.5 s apart, a 60 s timeout per attempt, `https` only).

use std::io::Write;
use std::sync::Arc;

use arrow_schema::Schema;
use reqwest::blocking::Client;

use super::Storage;
use super::fetch;
use super::options::FetchOptions;
use super::policy::UrlPolicy;
use crate::wire::ExternalLocation;
use crate::{Error, ExternalFailure, Result};

/// How externalized objects are compressed for storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// zstd at this level (the reference's default: 3).
    Zstd(i32),
    /// gzip at this level (0..=9).
    Gzip(u32),
}

impl Compression {
    fn content_encoding(self) -> &'static str {
        match self {
            Compression::Zstd(_) => "zstd",
            Compression::Gzip(_) => "gzip",
        }
    }

    fn compress(self, raw: &[u8]) -> Result<Vec<u8>> {
        let failed = |e: std::io::Error| {
            Error::external(ExternalFailure::Upload, format!("cannot compress: {e}"))
        };
        match self {
            Compression::Zstd(level) => zstd::bulk::compress(raw, level).map_err(failed),
            Compression::Gzip(level) => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(level.min(9)),
                );
                encoder.write_all(raw).map_err(failed)?;
                encoder.finish().map_err(failed)
            }
        }
    }
}

/// External storage as the engines use it: see the [module docs](super).
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    storage: Option<Arc<dyn Storage>>,
    threshold: usize,
    compression: Option<Compression>,
    fetch: FetchOptions,
    policy: UrlPolicy,
    client: Client,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ExternalConfig {
    /// A reader only (no storage), with the default policy and bounds.
    pub fn new() -> Self {
        let fetch = FetchOptions::default();
        let client = build_client(&fetch);
        ExternalConfig {
            storage: None,
            threshold: 1 << 20,
            compression: None,
            fetch,
            policy: UrlPolicy::default(),
            client,
        }
    }

    /// Externalizes batches into `storage` (above the threshold).
    #[must_use]
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// The storage, if this end writes.
    pub fn storage(&self) -> Option<&Arc<dyn Storage>> {
        self.storage.as_ref()
    }

    /// Data batches whose Arrow buffers reach `bytes` go to storage. Default 1 MiB.
    #[must_use]
    pub fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Compresses objects for storage (`Content-Encoding` tells readers).
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The compression objects are stored with, if any.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Sets the URL policy of the reader.
    #[must_use]
    pub fn with_url_policy(mut self, policy: UrlPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the reader's bounds.
    #[must_use]
    pub fn with_fetch_options(mut self, fetch: FetchOptions) -> Self {
        self.client = build_client(&fetch);
        self.fetch = fetch;
        self
    }

    /// Stores one object as this configuration's writer would (compressed if set) and
    /// returns its URL: for results published once and answered by reference.
    ///
    /// # Errors
    /// No storage is configured, or the upload failed.
    pub fn store(&self, object: Vec<u8>) -> Result<String> {
        let storage = self.storage.as_ref().ok_or_else(|| {
            Error::external(
                ExternalFailure::NotEnabled,
                "no external storage configured",
            )
        })?;
        match self.compression {
            Some(compression) => storage.put(
                compression.compress(&object)?,
                Some(compression.content_encoding()),
            ),
            None => storage.put(object, None),
        }
    }
}

fn build_client(fetch: &FetchOptions) -> Client {
    Client::builder()
        .timeout(fetch.timeout)
        .redirect(reqwest::redirect::Policy::none())
        // Bodies are decoded here, under the decoded-size cap, not by the HTTP stack.
        .no_gzip()
        .no_zstd()
        .build()
        .unwrap_or_else(|_| Client::new())
}

impl ExternalLocation for ExternalConfig {
    fn threshold(&self) -> Option<usize> {
        self.storage.as_ref().map(|_| self.threshold)
    }

    fn upload(&self, object: Vec<u8>, _schema: &Schema) -> Result<String> {
        self.store(object)
    }

    fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        fetch::fetch(&self.client, &self.policy, &self.fetch, url)
    }
}

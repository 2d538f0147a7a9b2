//! [`FakeStorage`]: a [`Storage`] over the reference's fake object-storage contract
//! (`vgi_rpc.conformance.fake_storage`), used by the conformance worker's
//! `--fake-storage URL` and by tests.
//!
//! The contract: `POST {base}/alloc` (JSON body, optionally `{"content_encoding": ..}`)
//! answers `{"object_url", "upload_url", "download_url"}`; `PUT upload_url` stores the
//! bytes (with their `Content-Encoding`), and `GET|HEAD download_url` serves them back.
//! Upload and download URLs are bound to their methods, as signed URLs of real stores
//! are, so a writer that hands out its PUT URL fails here as it would in production.
//! The same allocation vends the URL pairs of client uploads ([`UploadUrlProvider`]).

use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;

use super::Storage;
use crate::wire::external::redact_url;
use crate::wire::{UploadUrl, UploadUrlProvider};
use crate::{Error, ExternalFailure, Result};

/// The reference's fake storage service at a base URL.
#[derive(Debug, Clone)]
pub struct FakeStorage {
    base: String,
    client: Client,
}

impl FakeStorage {
    /// Storage at `base_url` (e.g. `http://127.0.0.1:8123`).
    pub fn new(base_url: impl Into<String>) -> Self {
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| Client::new());
        FakeStorage {
            base: base_url.into().trim_end_matches('/').to_owned(),
            client,
        }
    }

    /// The service's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

fn upload_error(what: impl std::fmt::Display) -> Error {
    Error::external(ExternalFailure::Upload, what)
}

impl FakeStorage {
    /// `POST {base}/alloc`: a fresh object's `(upload_url, download_url)`.
    fn alloc(&self, content_encoding: Option<&str>) -> Result<(String, String)> {
        let alloc_url = format!("{}/alloc", self.base);
        let body = match content_encoding {
            Some(encoding) => serde_json::json!({ "content_encoding": encoding }),
            None => serde_json::json!({}),
        };
        let alloc = self
            .client
            .post(&alloc_url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .map_err(|e| {
                upload_error(format!(
                    "allocation at {} failed: {}",
                    redact_url(&alloc_url),
                    e.without_url()
                ))
            })?;
        let alloc: serde_json::Value = serde_json::from_str(&alloc)
            .map_err(|e| upload_error(format!("allocation answer is not JSON: {e}")))?;
        let field = |name: &str| {
            alloc
                .get(name)
                .or_else(|| alloc.get("object_url"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| upload_error(format!("allocation answer has no {name}")))
        };
        Ok((field("upload_url")?, field("download_url")?))
    }
}

impl Storage for FakeStorage {
    fn put(&self, object: Vec<u8>, content_encoding: Option<&str>) -> Result<String> {
        let (upload_url, download_url) = self.alloc(content_encoding)?;
        let mut put = self
            .client
            .put(&upload_url)
            .header("Content-Type", "application/octet-stream");
        if let Some(encoding) = content_encoding {
            put = put.header("Content-Encoding", encoding);
        }
        put.body(object)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                upload_error(format!(
                    "upload to {} failed: {}",
                    redact_url(&upload_url),
                    e.without_url()
                ))
            })?;
        Ok(download_url)
    }
}

/// Client-vended uploads: one allocation per pair, valid for an hour (the reference's
/// `FakeStorageBackend.generate_upload_url`).
impl UploadUrlProvider for FakeStorage {
    fn upload_url(&self) -> Result<UploadUrl> {
        let (upload_url, download_url) = self.alloc(None)?;
        Ok(UploadUrl {
            upload_url,
            download_url,
            expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        })
    }
}

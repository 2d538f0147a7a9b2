//! Requests too large to send inline: the client half of the upload-URL flow.
//!
//! A server advertising `VGI-Upload-URL-Support: true` vends URL pairs at
//! `POST {prefix}/__upload_url__/init`. A request whose body the server refuses with
//! `413` (or, uncompressed, exceeds the advertised `VGI-Max-Request-Bytes` outright) is
//! PUT whole to the upload URL, and a pointer body naming the download URL is sent in
//! its place (`wire::upload`). Unary calls, stream starts and exchange turns alike: the
//! reference client does the same on all three.
//!
//! Only the request body itself goes to storage; the caller's own headers (credentials,
//! typically) are sent to the RPC server, never to the storage URL. The URLs are taken
//! from the server the client already sends the request to, so they are not checked
//! against the client's external-storage URL policy (which governs what it fetches).

use reqwest::StatusCode;

use super::failure::Failure;
use super::{ARROW, HttpConnector, HttpControl, Shared};
use crate::client::rpc_error_from_metadata;
use crate::wire::{self, BatchKind, Limits, StreamItem, UploadUrl, upload};
use crate::{Result, RpcError};

impl Shared {
    /// `POST {prefix}/__upload_url__/init` for `count` pairs.
    pub(super) async fn upload_urls(
        &self,
        count: i64,
    ) -> std::result::Result<Vec<UploadUrl>, Failure> {
        let url = format!("{}/{}/init", self.base, wire::keys::UPLOAD_URL_METHOD);
        let request = upload::encode_request(count)?;
        let answer = self
            .post(&super::Target::Raw(url), &request, None, false, &[])
            .await?;
        let body = self.finish(answer)?;
        Ok(read_answer(&body)?)
    }

    /// Stores `body` through a vended URL pair and returns the pointer body to send
    /// instead.
    pub(super) async fn upload(&self, body: &[u8]) -> std::result::Result<Vec<u8>, Failure> {
        let urls = self.upload_urls(1).await?;
        let pair = urls
            .into_iter()
            .next()
            .ok_or_else(|| RpcError::new("ProtocolError", "Server returned no upload URLs"))?;
        let status = self
            .http
            .put(&pair.upload_url)
            .header(reqwest::header::CONTENT_TYPE, ARROW)
            .body(body.to_vec())
            .send()
            .await
            .map_err(Failure::Request)?
            .status();
        if !status.is_success() {
            return Err(RpcError::new(
                "ExternalUploadFailed",
                format!("PUT to upload URL failed: HTTP {}", status.as_u16()),
            )
            .into());
        }
        Ok(upload::pointer_request(
            body,
            &pair.download_url,
            &Limits::default(),
        )?)
    }
}

/// Whether a refused or oversized body should go through storage.
pub(super) fn must_upload(status: StatusCode, upload_url_support: bool) -> bool {
    status == StatusCode::PAYLOAD_TOO_LARGE && upload_url_support
}

/// Reads the route's answer: its URL pairs, or the error it carries.
fn read_answer(mut body: &[u8]) -> Result<Vec<UploadUrl>> {
    let limits = Limits::default();
    let mut decoder = wire::read_stream_start(&mut body, &limits)?;
    let mut urls = Vec::new();
    while let StreamItem::Batch(batch, md) =
        wire::read_stream_item(&mut body, &mut decoder, &limits)?
    {
        match BatchKind::of(&batch, &md) {
            BatchKind::Exception => return Err(rpc_error_from_metadata(&md).into()),
            BatchKind::Data => urls.extend(upload::read_urls(&batch)?),
            _ => {}
        }
    }
    Ok(urls)
}

impl HttpConnector {
    /// Asks the server for `count` upload/download URL pairs
    /// (`POST {prefix}/__upload_url__/init`; the server caps `count` at 100).
    ///
    /// # Errors
    /// The server vends no upload URLs (it answers 404), refuses the request, or
    /// cannot be reached.
    pub fn request_upload_urls(&self, count: i64) -> Result<Vec<UploadUrl>> {
        let control = HttpControl::new();
        self.shared
            .run(
                &control,
                self.shared.probe_timeout,
                self.shared.upload_urls(count),
            )
            .map_err(|e| e.into_error(&self.shared.base))
    }
}

/// What `__upload_url__/init` at `url` vends: a one-off request with `options`.
///
/// # Errors
/// As [`HttpConnector::request_upload_urls`].
pub fn request_upload_urls(
    url: &str,
    options: &crate::client::ConnectOptions,
    count: i64,
) -> Result<Vec<UploadUrl>> {
    HttpConnector::new(url, options)?.request_upload_urls(count)
}

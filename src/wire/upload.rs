//! Client-vended uploads: the seam and the wire shapes of the `__upload_url__` flow.
//!
//! A request too large for a server's `VGI-Max-Request-Bytes` does not have to fail: a
//! server that advertises `VGI-Upload-URL-Support: true` vends pairs of pre-signed URLs
//! (`POST {prefix}/__upload_url__/init`), the client PUTs the whole request IPC stream to
//! the upload URL, and sends in its place a pointer body: the request's schema, one
//! zero-row batch whose metadata is the request's own plus `vgi_rpc.location` naming the
//! download URL. The server resolves that pointer as it resolves any external input.
//!
//! What lives here is sans-IO and shared by both ends: the [`UploadUrlProvider`] trait a
//! server's storage implements (the I/O is the implementation's), the request and answer
//! schemas of the route (`{count: int64}` in; `{upload_url, download_url, expires_at}`
//! out, as the reference's `_UPLOAD_URL_SCHEMA`), and the rewriting of a request body
//! into its pointer body.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::{Limits, Metadata, StreamEncoder, StreamItem, external, keys};
use crate::{Error, Result};

/// The most URL pairs one `__upload_url__` request returns (the reference's cap).
pub const MAX_UPLOAD_URL_COUNT: i64 = 100;

/// One vended pair: PUT the object to `upload_url`, name `download_url` in the pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadUrl {
    /// Where the client PUTs the object (signed for PUT only).
    pub upload_url: String,
    /// Where a reader GETs it (signed for GET/HEAD only).
    pub download_url: String,
    /// When the URLs stop working, if the provider says.
    pub expires_at: Option<SystemTime>,
}

/// Vends upload/download URL pairs into a server's storage (signed PUT and GET URLs for
/// an object store; the reference's fake storage for tests). Installed on an HTTP server,
/// it enables the `__upload_url__/init` route.
pub trait UploadUrlProvider: Send + Sync + fmt::Debug {
    /// Allocates one fresh object and returns its URL pair.
    ///
    /// # Errors
    /// [`Error::External`] (`Upload`) when the storage cannot allocate.
    fn upload_url(&self) -> Result<UploadUrl>;
}

/// The route's request schema: `{count: int64}`.
pub fn params_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::Int64,
        true,
    )]))
}

/// The route's answer schema: `{upload_url: utf8, download_url: utf8, expires_at:
/// timestamp[us, UTC]}`.
pub fn urls_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("upload_url", DataType::Utf8, true),
        Field::new("download_url", DataType::Utf8, true),
        Field::new(
            "expires_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// The request body asking for `count` pairs (a whole IPC stream).
///
/// # Errors
/// The batch cannot be encoded (it always can).
pub fn encode_request(count: i64) -> Result<Vec<u8>> {
    let schema = params_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![count]))],
    )?;
    let md = Metadata::new()
        .with(keys::METHOD, keys::UPLOAD_URL_METHOD)
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE);
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &schema);
    enc.batch(&mut out, &batch, &md)?;
    enc.eos(&mut out);
    Ok(out)
}

/// The pair count a request asks for: its `count` column, 1 when absent or null,
/// clamped to `1..=`[`MAX_UPLOAD_URL_COUNT`].
pub fn requested_count(params: &RecordBatch) -> usize {
    let count = params
        .column_by_name("count")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .filter(|c| !c.is_empty() && c.is_valid(0))
        .map_or(1, |c| c.value(0));
    // In 1..=100, so the conversion cannot fail.
    usize::try_from(count.clamp(1, MAX_UPLOAD_URL_COUNT)).unwrap_or(1)
}

/// The answer batch listing `urls`.
///
/// # Errors
/// The batch cannot be built (it always can).
pub fn urls_batch(urls: &[UploadUrl]) -> Result<RecordBatch> {
    let micros = |t: &SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_micros()).ok())
    };
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from_iter(
            urls.iter().map(|u| Some(u.upload_url.as_str())),
        )),
        Arc::new(StringArray::from_iter(
            urls.iter().map(|u| Some(u.download_url.as_str())),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(
                urls.iter()
                    .map(|u| u.expires_at.as_ref().and_then(micros))
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(urls_schema(), columns)?)
}

/// Reads the pairs of an answer batch; rows without both URLs are an error.
///
/// # Errors
/// The batch lacks the answer's columns or has null URLs.
pub fn read_urls(batch: &RecordBatch) -> Result<Vec<UploadUrl>> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::protocol(format!("__upload_url__ answer has no utf8 {name}")))
    };
    let (uploads, downloads) = (text("upload_url")?, text("download_url")?);
    let expires = batch
        .column_by_name("expires_at")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>());
    (0..batch.num_rows())
        .map(|i| {
            if uploads.is_null(i) || downloads.is_null(i) {
                return Err(Error::protocol("__upload_url__ answer has a null URL"));
            }
            let expires_at = expires
                .filter(|e| e.is_valid(i))
                .and_then(|e| u64::try_from(e.value(i)).ok())
                .map(|us| UNIX_EPOCH + Duration::from_micros(us));
            Ok(UploadUrl {
                upload_url: uploads.value(i).to_owned(),
                download_url: downloads.value(i).to_owned(),
                expires_at,
            })
        })
        .collect()
}

/// Rewrites a request body (one IPC stream whose first batch is the request) into the
/// pointer body naming `download_url`: the same schema, one zero-row batch carrying the
/// request's metadata plus `vgi_rpc.location`. The server routes on the outer metadata and
/// resolves the pointer for the parameters.
///
/// # Errors
/// `body` is not an IPC stream holding a batch.
pub fn pointer_request(body: &[u8], download_url: &str, limits: &Limits) -> Result<Vec<u8>> {
    let mut cursor = body;
    let mut decoder = super::read_stream_start(&mut cursor, limits)?;
    let StreamItem::Batch(batch, mut md) =
        super::read_stream_item(&mut cursor, &mut decoder, limits)?
    else {
        return Err(Error::protocol("the request body carries no batch"));
    };
    md.merge(external::pointer_metadata(download_url, None));
    let schema = batch.schema();
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &schema);
    enc.batch(&mut out, &RecordBatch::new_empty(schema.clone()), &md)?;
    enc.eos(&mut out);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::BatchKind;

    #[test]
    fn urls_round_trip_through_the_answer_batch() {
        let urls = vec![UploadUrl {
            upload_url: "http://s/upload/1".into(),
            download_url: "http://s/download/1".into(),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }];
        let batch = urls_batch(&urls).unwrap();
        assert_eq!(batch.schema(), urls_schema());
        assert_eq!(read_urls(&batch).unwrap(), urls);
    }

    #[test]
    fn counts_are_clamped_and_default_to_one() {
        let count = |v: Option<i64>| {
            let batch =
                RecordBatch::try_new(params_schema(), vec![Arc::new(Int64Array::from(vec![v]))])
                    .unwrap();
            requested_count(&batch)
        };
        assert_eq!(count(Some(2)), 2);
        assert_eq!(count(Some(0)), 1);
        assert_eq!(count(Some(-5)), 1);
        assert_eq!(count(Some(1_000)), 100);
        assert_eq!(count(None), 1);
    }

    #[test]
    fn a_pointer_request_keeps_the_routing_metadata() {
        let body = encode_request(3).unwrap();
        let limits = Limits::default();
        let pointer = pointer_request(&body, "http://s/download/9", &limits).unwrap();
        let mut cursor = pointer.as_slice();
        let mut dec = crate::wire::read_stream_start(&mut cursor, &limits).unwrap();
        let StreamItem::Batch(batch, md) =
            crate::wire::read_stream_item(&mut cursor, &mut dec, &limits).unwrap()
        else {
            panic!("no batch");
        };
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.schema(), params_schema());
        assert_eq!(md.get(keys::METHOD), Some(keys::UPLOAD_URL_METHOD));
        assert_eq!(md.get(keys::LOCATION), Some("http://s/download/9"));
        assert_eq!(BatchKind::of(&batch, &md), BatchKind::ExternalPointer);
        assert!(pointer_request(b"not ipc", "http://x", &limits).is_err());
    }
}

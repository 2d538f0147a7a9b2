//! The external-storage seam: a batch too big for the wire goes to object storage and a
//! zero-row pointer batch (`vgi_rpc.location`, `vgi_rpc.location.sha256`) stands for it.
//!
//! This is the second side channel beside the byte stream (the first is shared memory,
//! `side_channel.rs`), and it follows the same shape: the engines talk to an
//! [`ExternalLocation`] trait object that the application installs (on the client with
//! `ConnectOptions::with_external`, on the server with `ServerBuilder::external`); the
//! I/O behind it (uploads, signed URLs, HTTP fetches with their URL policy, caps and
//! retries) lives in `vgi_rpc::external`, outside the engines. What stays here is sans-IO:
//! which batches go out ([`ExternalLocation::wants`]), the object's bytes (one IPC stream:
//! the turn's log batches, then its one data batch), the pointer's metadata, and the
//! checks a reader owes the protocol on what it fetched — digest, no nested pointer,
//! exactly one data batch, the pointer's schema — and the metadata of the resolved batch:
//! the inner batch's own, plus `vgi_rpc.location.fetch_ms` and `vgi_rpc.location.source`.
//!
//! Why a whole stream and not one batch: a turn's logs must reach the caller in order
//! with its data, and the pointer replaces the turn's every batch on the wire. A reader
//! that stopped at the first data batch would drop them; one that kept the pointer's
//! metadata would drop a continuation cursor riding on the inner batch.

use std::fmt;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use sha2::{Digest, Sha256};

use super::{BatchKind, Limits, Metadata, StreamEncoder, StreamItem, keys};
use crate::error::ExternalFailure;
use crate::{Error, Result};

/// Where externalized batches go and come from: the engines' half of the seam.
///
/// Implemented by `vgi_rpc::external::ExternalConfig` (a [`Storage`]-backed writer and an
/// HTTP reader); any other implementation works too (tests use in-memory ones).
///
/// [`Storage`]: https://docs.rs/vgi-rpc/latest/vgi_rpc/external/trait.Storage.html
pub trait ExternalLocation: Send + Sync + fmt::Debug {
    /// The size from which a data batch goes to storage: batches whose Arrow buffers
    /// total at least this many bytes are externalized. `None`: this end never uploads,
    /// it only resolves pointers.
    fn threshold(&self) -> Option<usize>;

    /// Stores one object (an IPC stream, uncompressed; the implementation may compress
    /// it for storage) and returns the URL a reader fetches it from.
    ///
    /// # Errors
    /// [`Error::External`] when the storage refused or could not be reached.
    fn upload(&self, object: Vec<u8>, schema: &Schema) -> Result<String>;

    /// Fetches the object at `url` (a pointer's `vgi_rpc.location`) under the reader's
    /// URL policy and size caps, decompressed, retrying transient failures.
    ///
    /// # Errors
    /// [`Error::External`], with the URL's secrets redacted from the message.
    fn fetch(&self, url: &str) -> Result<Vec<u8>>;

    /// Whether a data batch should travel through storage: it has rows and reaches the
    /// [`threshold`](ExternalLocation::threshold). Logs, errors and zero-row batches
    /// always stay inline.
    fn wants(&self, batch: &RecordBatch) -> bool {
        self.threshold()
            .is_some_and(|t| batch.num_rows() > 0 && buffer_bytes(batch) >= t)
    }
}

/// The bytes of a batch's Arrow buffers (its slice of them), as the reference measures a
/// batch against the threshold.
pub fn buffer_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| data.get_buffer_memory_size())
        })
        .sum()
}

/// Externalizes one turn: `batches` (its log batches, then its data batch) become one
/// object in storage, and the returned metadata is the pointer's (`vgi_rpc.location`
/// and `vgi_rpc.location.sha256` of the uncompressed stream). The caller writes a
/// zero-row batch of `schema` with it in the turn's place.
///
/// # Errors
/// The batches cannot be encoded, or the upload failed.
pub fn externalize(
    location: &dyn ExternalLocation,
    schema: &Schema,
    batches: &[(&RecordBatch, &Metadata)],
) -> Result<Metadata> {
    let mut object = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut object, schema);
    for (batch, metadata) in batches {
        encoder.batch(&mut object, batch, metadata)?;
    }
    encoder.eos(&mut object);
    let digest = sha256_hex(&object);
    let url = location.upload(object, schema)?;
    Ok(pointer_metadata(&url, Some(&digest)))
}

/// The metadata of a pointer batch naming `url` (with its digest, when known).
pub fn pointer_metadata(url: &str, sha256: Option<&str>) -> Metadata {
    let md = Metadata::new().with(keys::LOCATION, url);
    match sha256 {
        Some(digest) => md.with(keys::LOCATION_SHA256, digest),
        None => md,
    }
}

/// A resolved pointer: the data batch it named, with its metadata, and the control
/// batches (logs, perhaps an EXCEPTION) that came before it in the object, in order.
#[derive(Debug)]
pub struct Resolved {
    /// The one data batch of the object.
    pub batch: RecordBatch,
    /// The inner batch's metadata plus `vgi_rpc.location.fetch_ms` / `.source`.
    pub metadata: Metadata,
    /// The metadata of every log or EXCEPTION batch in the object, in order; the caller
    /// dispatches them as if they had arrived inline.
    pub controls: Vec<Metadata>,
}

/// Resolves a pointer batch: fetches its object, verifies the digest, and reads the one
/// data batch (of the pointer's schema) and the control batches before it.
///
/// # Errors
/// [`Error::External`]: the fetch failed, the digest differs, the object is not one IPC
/// stream of the pointer's schema holding exactly one data batch, or it holds a pointer.
pub fn resolve(
    location: &dyn ExternalLocation,
    pointer: &RecordBatch,
    metadata: &Metadata,
    limits: &Limits,
) -> Result<Resolved> {
    let url = metadata
        .get(keys::LOCATION)
        .ok_or_else(|| Error::protocol("external pointer batch without vgi_rpc.location"))?;
    let started = Instant::now();
    let object = location.fetch(url)?;
    let fetch_ms = started.elapsed().as_secs_f64() * 1000.0;
    let source = redact_url(url);
    if let Some(expected) = metadata.get(keys::LOCATION_SHA256) {
        let actual = sha256_hex(&object);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::external(
                ExternalFailure::Integrity,
                format!(
                    "SHA-256 checksum mismatch for {source}: expected {expected}, got {actual}"
                ),
            ));
        }
    }
    let (batch, inner, controls) = read_object(&object, &pointer.schema(), limits, &source)?;
    let metadata = inner
        .with(keys::LOCATION_FETCH_MS, format!("{fetch_ms:.1}"))
        .with(keys::LOCATION_SOURCE, url);
    Ok(Resolved {
        batch,
        metadata,
        controls,
    })
}

/// Reads a fetched object: control batches, then exactly one data batch of `schema`.
fn read_object(
    object: &[u8],
    schema: &Schema,
    limits: &Limits,
    source: &str,
) -> Result<(RecordBatch, Metadata, Vec<Metadata>)> {
    let invalid = |what: String| Error::external(ExternalFailure::Invalid, what);
    let mut cursor = object;
    let mut decoder = super::read_stream_start(&mut cursor, limits)
        .map_err(|e| invalid(format!("the object at {source} is not an IPC stream: {e}")))?;
    let mut data = None;
    let mut controls = Vec::new();
    loop {
        let item = super::read_stream_item(&mut cursor, &mut decoder, limits)
            .map_err(|e| invalid(format!("the object at {source} is malformed: {e}")))?;
        let (batch, md) = match item {
            StreamItem::End => break,
            StreamItem::Batch(batch, md) => (batch, md),
        };
        if md.contains(keys::LOCATION) {
            return Err(invalid(format!(
                "Redirect loop detected: fetched batch from {source} contains vgi_rpc.location"
            )));
        }
        match BatchKind::of(&batch, &md) {
            BatchKind::Log | BatchKind::Exception => controls.push(md),
            _ if data.is_some() => {
                return Err(invalid(format!(
                    "Multiple data batches found in ExternalLocation stream from {source}"
                )));
            }
            _ => data = Some((batch, md)),
        }
    }
    if !cursor.is_empty() {
        return Err(invalid(format!(
            "the object at {source} has {} bytes after its end-of-stream",
            cursor.len()
        )));
    }
    let Some((batch, md)) = data else {
        // An object holding only an EXCEPTION: the caller raises it.
        if controls
            .iter()
            .any(|c| c.get(keys::LOG_LEVEL) == Some("EXCEPTION"))
        {
            let empty = RecordBatch::new_empty(std::sync::Arc::new(schema.clone()));
            return Ok((empty, Metadata::new(), controls));
        }
        return Err(invalid(format!(
            "No data batch found in ExternalLocation stream from {source}"
        )));
    };
    if !same_fields(&batch.schema(), schema) {
        return Err(Error::external(
            ExternalFailure::SchemaMismatch,
            format!(
                "Schema mismatch in ExternalLocation: expected {:?}, got {:?}",
                schema.fields(),
                batch.schema().fields()
            ),
        ));
    }
    Ok((batch, md, controls))
}

/// Schema equality as the reference checks it: field names, types and nullability, in
/// order (schema-level metadata ignored).
fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields().iter()).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

/// A URL fit for diagnostics: scheme, host, port and path only. Query strings of signed
/// URLs carry credentials, and so can userinfo and fragments; none of them may reach a
/// log line or an error message. Anything that does not parse as `scheme://host...`
/// becomes `<invalid-url>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<invalid-url>".to_owned();
    };
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if !valid_scheme || host.is_empty() {
        return "<invalid-url>".to_owned();
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    format!("{scheme}://{host}{}", &tail[..path_end])
}

#[cfg(test)]
#[path = "external_tests.rs"]
mod tests;

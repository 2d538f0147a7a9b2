//! The control channel's binary payloads: standard base64 around a complete Arrow IPC
//! stream holding exactly one batch and its custom metadata (CLIENT_DRIVER_PROTOCOL §1).
//!
//! The driver never decodes values; it only unwraps and rewraps batches, so these helpers
//! are the whole of its Arrow handling.

use arrow_array::RecordBatch;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem};

/// Decodes standard padded base64.
pub(crate) fn b64_decode(field: &str, text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("`{field}` is not standard base64: {e}"))
}

/// Encodes bytes as standard padded base64.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Reads the one batch (and its metadata) of a base64 IPC stream.
pub(crate) fn decode_batch(field: &str, text: &str) -> Result<(RecordBatch, Metadata), String> {
    let bytes = b64_decode(field, text)?;
    let limits = Limits::default();
    let mut source = bytes.as_slice();
    let bad = |e: vgi_rpc::Error| format!("`{field}` is not an Arrow IPC stream: {e}");
    let mut decoder = wire::read_stream_start(&mut source, &limits).map_err(bad)?;
    match wire::read_stream_item(&mut source, &mut decoder, &limits).map_err(bad)? {
        StreamItem::Batch(batch, metadata) => {
            match wire::read_stream_item(&mut source, &mut decoder, &limits).map_err(bad)? {
                StreamItem::End => Ok((batch, metadata)),
                StreamItem::Batch(..) => Err(format!("`{field}` holds more than one batch")),
            }
        }
        StreamItem::End => Err(format!("`{field}` holds no batch")),
    }
}

/// Writes `batch` and `metadata` as a one-batch IPC stream, base64-encoded.
pub(crate) fn encode_batch(batch: &RecordBatch, metadata: &Metadata) -> Result<String, String> {
    let mut out = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut out, &batch.schema());
    encoder
        .batch(&mut out, batch, metadata)
        .map_err(|e| format!("cannot re-encode a batch the client returned: {e}"))?;
    encoder.eos(&mut out);
    Ok(b64_encode(&out))
}

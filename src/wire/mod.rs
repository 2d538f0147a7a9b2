//! Sans-IO Arrow IPC framing with per-batch custom metadata.
//!
//! arrow-rs's `StreamWriter`/`StreamReader` cannot read or write the `custom_metadata` of
//! individual RecordBatch messages (apache/arrow-rs#9444), and the protocol lives in that
//! field, so this module owns the message framing and builds on arrow-ipc's lower-level
//! pieces (the IPC data generator, the flatbuffer `Message` type, `read_record_batch`).

pub mod keys;
mod metadata;

pub use metadata::Metadata;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::Result;

/// Encodes `batches` as one complete IPC stream (schema, dictionaries, batches, EOS).
///
/// # Errors
/// Fails when a batch does not match `schema` or cannot be encoded.
pub fn encode_stream(_schema: &Schema, _batches: &[RecordBatch]) -> Result<Vec<u8>> {
    Err(crate::Error::protocol("todo"))
}

/// Decodes one complete IPC stream held in `bytes`, returning its schema and batches.
///
/// # Errors
/// Fails on malformed input; never panics.
pub fn decode_stream(_bytes: &[u8]) -> Result<(arrow_schema::SchemaRef, Vec<RecordBatch>)> {
    Err(crate::Error::protocol("todo"))
}

/// Serializes a schema as a single IPC schema message (pyarrow's `Schema.serialize()`).
pub fn encode_schema_message(_schema: &Schema) -> Vec<u8> {
    Vec::new()
}

/// Parses bytes written by [`encode_schema_message`].
///
/// # Errors
/// Fails on malformed input; never panics.
pub fn decode_schema_message(_bytes: &[u8]) -> Result<arrow_schema::SchemaRef> {
    Err(crate::Error::protocol("todo"))
}

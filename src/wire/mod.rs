//! Sans-IO Arrow IPC framing with per-batch custom metadata.
//!
//! arrow-rs's `StreamWriter`/`StreamReader` cannot read or write the `custom_metadata` of
//! individual RecordBatch messages (apache/arrow-rs#9444), and the protocol lives in that
//! field, so this module owns the message framing and builds on arrow-ipc's lower-level
//! pieces (the IPC data generator, the flatbuffer `Message` type, `read_record_batch`).
//!
//! A connection is a plain concatenation of complete IPC streams. [`StreamEncoder`] writes
//! one stream into a caller-owned buffer (so a whole response goes out in one write);
//! [`read_message`] + [`StreamDecoder`] read exactly one stream and never past its EOS.
//!
//! Large batches may travel beside the stream instead, through a [`SideChannel`] (shared
//! memory): the stream then carries a zero-row pointer batch ([`ShmPointer`]) and the
//! batch's bytes sit in a region laid out by [`RegionEncoding`] / [`decode_region`].
//! Batches above a size threshold may instead go to object storage through an
//! [`ExternalLocation`] ([`external`]: the pointer, the object's layout, the reader's checks).

mod budget;
mod classify;
mod columnless;
mod decode;
mod encode;
pub mod external;
mod full_check;
pub mod keys;
mod limits;
mod metadata;
mod metered;
mod region;
mod repeat;
mod reuse;
mod side_channel;
mod splice;
pub mod trace;
mod trace_slot;
pub mod upload;
mod validation;
mod zero_copy;

pub use budget::{DEFAULT_EXEMPT_BELOW, MemoryBudget, Reservation};
pub use classify::BatchKind;
pub use decode::{RawMessage, StreamDecoder, StreamItem, read_message};
pub(crate) use encode::SPLIT_BODY_AT;
pub use encode::{EOS, StreamEncoder};
pub use external::ExternalLocation;
pub use limits::{DEFAULT_MAX_UNTRUSTED_BODY, Limits};
pub use metadata::Metadata;
pub(crate) use metered::Metered;
pub use region::{RegionEncoding, decode_region, decode_region_with};
pub(crate) use repeat::Repeat;
#[cfg(test)]
pub(crate) use repeat::{HITS as REPEAT_HITS, tests as repeat_tests};
pub use side_channel::{ShmPointer, SideChannel};
pub(crate) use splice::{Outbound, Splice};
pub(crate) use trace_slot::{Slot as TraceSlot, same_but_traceparent};
pub use upload::{UploadUrl, UploadUrlProvider};
pub use validation::Validation;
pub(crate) use zero_copy::has_dictionary;

use std::io::{Read, Write};

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

use crate::{Error, Result};

/// Read-ahead buffer of a byte-stream connection's reading side.
///
/// Calls are lockstep, so an answer or a request is the most a peer has sent ahead:
/// a few small messages fit, and a large body is read past the buffer, straight into its
/// own. Whatever the buffer took of a body is copied out once more, so it is kept small:
/// at 256 KiB it held a fifth of each 1 MiB producer batch, 5 % of a consuming client's
/// time.
pub(crate) const READ_AHEAD: usize = 16 << 10;

/// Reads the schema message that starts a stream.
///
/// # Errors
/// [`Error::Closed`] when the source is at EOF before the first byte (a clean close);
/// protocol errors for anything malformed, including an EOS where a schema should be.
pub fn read_stream_start<R: Read + ?Sized>(r: &mut R, limits: &Limits) -> Result<StreamDecoder> {
    match read_message(r, limits, true)? {
        Some(raw) => StreamDecoder::from_schema_message(&raw)
            .map(|decoder| decoder.with_validation(limits.validation()))
            .map_err(in_step),
        None => Err(Error::protocol("IPC stream ended before its schema")),
    }
}

/// A message that was read whole but could not be decoded (say, nulls in a column its
/// schema declares non-nullable) leaves the byte stream in step with the peer: report it
/// as [`Error::InvalidMessage`] so the caller can skip to the stream's end and go on.
fn in_step(e: Error) -> Error {
    match e {
        Error::Io(_) | Error::Closed | Error::Disconnected(_) | Error::InvalidMessage(_) => e,
        other => Error::InvalidMessage(other.to_string()),
    }
}

/// Reads the next batch of a stream (absorbing dictionary messages) or its end.
///
/// # Errors
/// I/O, truncation and malformed-message errors.
pub fn read_stream_item<R: Read + ?Sized>(
    r: &mut R,
    decoder: &mut StreamDecoder,
    limits: &Limits,
) -> Result<StreamItem> {
    loop {
        match read_message(r, limits, false)? {
            None => {
                trace::stream_end(trace::Direction::In);
                return Ok(StreamItem::End);
            }
            Some(raw) => {
                if let Some((batch, md)) = decoder.decode(&raw).map_err(in_step)? {
                    return Ok(StreamItem::Batch(batch, md));
                }
            }
        }
    }
}

/// Largest single write syscall: Linux caps one at 0x7ffff000 bytes and macOS rejects
/// larger socket writes, so stay well below `i32::MAX`.
const MAX_IO_CHUNK: usize = 1 << 30;

/// Writes `bytes` whole, in chunks every platform accepts (the only write loop of both
/// ends; callers flush).
///
/// # Errors
/// The writer's errors.
pub(crate) fn write_chunked<W: Write + ?Sized>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    for chunk in bytes.chunks(MAX_IO_CHUNK) {
        w.write_all(chunk)?;
    }
    Ok(())
}

/// Writes `head` and then every part whole, with vectored writes (one system call for a
/// message header and its body's column buffers, as far as the kernel takes them).
///
/// # Errors
/// The writer's errors.
pub(crate) fn write_parts<W: Write + ?Sized>(
    w: &mut W,
    head: &[u8],
    parts: &[arrow_buffer::Buffer],
) -> std::io::Result<()> {
    use std::io::IoSlice;
    // Pieces over the chunk limit go on their own, in chunks; so does a lone head
    // (no slice list to allocate for it).
    if parts.is_empty() || head.len() > MAX_IO_CHUNK || parts.iter().any(|p| p.len() > MAX_IO_CHUNK)
    {
        write_chunked(w, head)?;
        return parts.iter().try_for_each(|p| write_chunked(w, p));
    }
    let mut slices: Vec<IoSlice<'_>> = std::iter::once(head)
        .chain(parts.iter().map(|p| p.as_slice()))
        .filter(|s| !s.is_empty())
        .map(IoSlice::new)
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        // At most IOV_MAX (1024) slices and about MAX_IO_CHUNK bytes per call.
        let mut bytes = 0usize;
        let count = rest
            .iter()
            .take(1024)
            .take_while(|s| {
                bytes += s.len();
                bytes <= MAX_IO_CHUNK
            })
            .count()
            .max(1);
        match w.write_vectored(&rest[..count]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and discards the rest of a stream up to its EOS, holding no body in memory.
///
/// # Errors
/// I/O and framing errors.
pub fn drain_stream<R: Read + ?Sized>(r: &mut R, limits: &Limits) -> Result<()> {
    while decode::skip_message(r, limits)? {}
    Ok(())
}

/// Encodes `batches` as one complete IPC stream (schema, dictionaries, batches, EOS).
///
/// # Errors
/// Fails when a batch cannot be encoded.
pub fn encode_stream(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut out, schema);
    for batch in batches {
        encoder.batch(&mut out, batch, &Metadata::new())?;
    }
    encoder.eos(&mut out);
    Ok(out)
}

/// Decodes one complete IPC stream held in `bytes`, returning its schema and batches.
///
/// # Errors
/// Fails on malformed or truncated input, or bytes after the EOS; never panics.
pub fn decode_stream(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let limits = Limits::default();
    let mut cursor = bytes;
    let mut decoder = read_stream_start(&mut cursor, &limits)?;
    let mut batches = Vec::new();
    while let StreamItem::Batch(batch, _) = read_stream_item(&mut cursor, &mut decoder, &limits)? {
        batches.push(batch);
    }
    Ok((decoder.schema().clone(), batches))
}

/// Serializes a schema as a single IPC schema message (pyarrow's `Schema.serialize()`).
pub fn encode_schema_message(schema: &Schema) -> Vec<u8> {
    let mut out = Vec::new();
    StreamEncoder::new().schema(&mut out, schema);
    out
}

/// Parses bytes written by [`encode_schema_message`] (or pyarrow's `Schema.serialize()`).
///
/// # Errors
/// Fails on malformed input; never panics.
pub fn decode_schema_message(bytes: &[u8]) -> Result<SchemaRef> {
    let mut cursor = bytes;
    let decoder = read_stream_start(&mut cursor, &Limits::default())?;
    Ok(decoder.schema().clone())
}

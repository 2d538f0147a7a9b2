//! Decoding: IPC stream messages into schemas and batches, with their custom metadata.
//!
//! [`read_message`] pulls exactly one encapsulated message off a byte source and never reads
//! past it, so a connection can carry one stream after another. Every length the peer
//! sends is checked against [`Limits`] before it is trusted, and the body buffer grows only
//! as bytes actually arrive, so a lying length costs the liar, not us. Batches are decoded
//! over the received body buffer without copying column data.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::Buffer;
use arrow_ipc::MessageHeader;
use arrow_schema::SchemaRef;

use super::budget::Reservation;
use super::limits::Limits;
use super::trace::{self, Direction};
use super::{Metadata, Validation};
use super::{columnless, full_check, reuse};
use crate::{Error, Result};

/// One raw encapsulated message: verified flatbuffer metadata plus its body.
#[derive(Debug)]
pub struct RawMessage {
    meta: Vec<u8>,
    body: Buffer,
}

impl Drop for RawMessage {
    fn drop(&mut self) {
        reuse::recycle_meta(std::mem::take(&mut self.meta));
    }
}

impl RawMessage {
    /// The flatbuffer `Message`, verified.
    ///
    /// # Errors
    /// [`Error::InvalidMessage`] when the flatbuffer does not verify (the message itself
    /// was read whole, so the stream is still in step).
    pub fn message(&self) -> Result<arrow_ipc::Message<'_>> {
        arrow_ipc::root_as_message(&self.meta)
            .map_err(|e| Error::InvalidMessage(format!("invalid IPC message flatbuffer: {e}")))
    }

    /// The message body.
    pub fn body(&self) -> &Buffer {
        &self.body
    }
}

/// Reads the message starting at `*pos` of an in-memory IPC byte sequence (a shared
/// region) and advances `*pos` past it. The body is a slice of `bytes` (no copy).
/// `Ok(None)` at an EOS marker or at the end of `bytes`.
///
/// # Errors
/// [`Error::Protocol`] for a length that runs past the end of `bytes` or a metadata
/// block without a readable body length.
pub(super) fn next_message_in(bytes: &Buffer, pos: &mut usize) -> Result<Option<RawMessage>> {
    let data = bytes.as_slice();
    let word = |at: usize| -> Result<[u8; 4]> {
        data.get(at..at.saturating_add(4))
            .and_then(|w| w.try_into().ok())
            .ok_or_else(|| Error::protocol("IPC message cut short in an shm region"))
    };
    if *pos >= data.len() {
        return Ok(None);
    }
    let mut at = *pos;
    let mut len_word = word(at)?;
    at += 4;
    if len_word == [0xff; 4] {
        len_word = word(at)?;
        at += 4;
    }
    let len = i32::from_le_bytes(len_word);
    if len == 0 {
        *pos = data.len();
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| Error::protocol(format!("negative IPC metadata length {len}")))?;
    let meta_end = at
        .checked_add(len)
        .filter(|&end| end <= data.len())
        .ok_or_else(|| Error::protocol("IPC metadata runs past the end of an shm region"))?;
    let mut meta = reuse::meta_buffer(len);
    meta.copy_from_slice(&data[at..meta_end]);
    let body_len = unverified_body_length(&meta)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::protocol("invalid IPC message in an shm region: no body length"))?;
    let body_end = meta_end
        .checked_add(body_len)
        .filter(|&end| end <= data.len())
        .ok_or_else(|| Error::protocol("IPC message body runs past the end of an shm region"))?;
    *pos = body_end;
    Ok(Some(RawMessage {
        meta,
        body: bytes.slice_with_length(meta_end, body_len),
    }))
}

/// Most bytes reserved for a message body before any of it has arrived.
const FIRST_BODY_STEP: usize = 4 << 20;

/// Reads one message. `Ok(None)` is end-of-stream.
///
/// When `at_stream_start` is true and the source is at EOF before the first byte,
/// returns [`Error::Closed`] (a clean close between calls); EOF anywhere else is
/// [`Error::Disconnected`].
///
/// # Errors
/// I/O errors, truncation, lengths over `limits`, or a metadata block that is not a valid
/// `Message` flatbuffer; [`Error::OverBudget`] when the body does not fit the limits'
/// memory budget (it was skipped whole, so the stream is still in step).
pub fn read_message<R: Read + ?Sized>(
    r: &mut R,
    limits: &Limits,
    at_stream_start: bool,
) -> Result<Option<RawMessage>> {
    let Some((meta, body_len)) = read_frame(r, limits, at_stream_start)? else {
        return Ok(None);
    };
    let reservation = match limits.budget() {
        Some(budget) if body_len >= budget.exempt_below() => {
            let Some(reservation) = budget.try_reserve(body_len) else {
                skip_body(r, body_len)?;
                return Err(Error::OverBudget {
                    claimed: body_len,
                    capacity: budget.capacity(),
                });
            };
            Some(reservation)
        }
        _ => None,
    };
    let body = read_body(r, body_len, reservation)?;
    Ok(Some(RawMessage { meta, body }))
}

/// Reads one message and throws its body away without holding it: `Ok(false)` at
/// end-of-stream. Draining a stream costs no memory beyond its metadata blocks.
///
/// # Errors
/// As [`read_message`], except that no budget applies.
pub(super) fn skip_message<R: Read + ?Sized>(r: &mut R, limits: &Limits) -> Result<bool> {
    match read_frame(r, limits, false)? {
        Some((_, body_len)) => skip_body(r, body_len).map(|()| true),
        None => Ok(false),
    }
}

/// Reads a message's framing and metadata block, checked against `limits`: the block and
/// the body length that follows it, or `None` at end-of-stream.
fn read_frame<R: Read + ?Sized>(
    r: &mut R,
    limits: &Limits,
    at_stream_start: bool,
) -> Result<Option<(Vec<u8>, u64)>> {
    let mut word = [0u8; 4];
    if !read_full_or_eof(r, &mut word)? {
        return Err(if at_stream_start {
            Error::Closed
        } else {
            Error::disconnected("connection closed inside an IPC stream")
        });
    }
    let len = if word == [0xff; 4] {
        read_exact(r, &mut word)?;
        i32::from_le_bytes(word)
    } else {
        // Pre-0.15 framing: the length comes first, without a continuation token. Bytes
        // that are neither are not an IPC stream at all.
        let legacy = i32::from_le_bytes(word);
        if legacy < 0 || usize::try_from(legacy).is_ok_and(|l| l > limits.max_metadata) {
            return Err(Error::protocol(format!(
                "not an Arrow IPC stream (bad continuation marker {})",
                crate::hex::encode(&word)
            )));
        }
        legacy
    };
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| Error::protocol(format!("negative IPC metadata length {len}")))?;
    if len > limits.max_metadata {
        return Err(Error::protocol(format!(
            "IPC metadata length {len} exceeds the limit of {}",
            limits.max_metadata
        )));
    }
    let mut meta = reuse::meta_buffer(len);
    read_exact(r, &mut meta)?;
    // Only the body length is needed to keep the stream in step, and it is read with
    // every offset checked; the flatbuffer is verified once, when the message is decoded.
    // A message that fails verification then (say, a custom-metadata string that is not
    // UTF-8) has still been consumed whole, so the connection stays usable.
    let body_len = unverified_body_length(&meta).ok_or_else(|| {
        Error::protocol("invalid IPC message flatbuffer: no readable body length")
    })?;
    let body_len = u64::try_from(body_len)
        .map_err(|_| Error::protocol(format!("negative IPC body length {body_len}")))?;
    if body_len > limits.max_body {
        return Err(Error::protocol(format!(
            "IPC body length {body_len} exceeds the limit of {} (Limits::max_body / \
             max_untrusted_body; send larger batches through shared memory or external \
             storage)",
            limits.max_body
        )));
    }
    Ok(Some((meta, body_len)))
}

/// Reads `Message.bodyLength` from an unverified flatbuffer with every offset checked:
/// `None` when any step falls outside `meta`. (Field 3 of the `Message` table: version,
/// header_type, header, bodyLength, custom_metadata.)
fn unverified_body_length(meta: &[u8]) -> Option<i64> {
    const BODY_LENGTH_FIELD: usize = 3;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            meta.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(
            meta.get(at..at.checked_add(2)?)?.try_into().ok()?,
        ))
    };
    let table = usize::try_from(u32_at(0)?).ok()?;
    let vtable_back = i32::from_le_bytes(u32_at(table)?.to_le_bytes());
    let vtable = usize::try_from(i64::try_from(table).ok()? - i64::from(vtable_back)).ok()?;
    let vtable_len = usize::from(u16_at(vtable)?);
    let slot = 4 + 2 * BODY_LENGTH_FIELD;
    if slot + 2 > vtable_len {
        return Some(0); // field absent: default 0
    }
    let field = usize::from(u16_at(vtable + slot)?);
    if field == 0 {
        return Some(0);
    }
    let at = table.checked_add(field)?;
    Some(i64::from_le_bytes(
        meta.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_body<R: Read + ?Sized>(
    r: &mut R,
    len: u64,
    reservation: Option<Reservation>,
) -> Result<Buffer> {
    let len_usize = usize::try_from(len)
        .map_err(|_| Error::protocol("IPC body too large for this platform"))?;
    // Reserve at most one step ahead of what has arrived: a peer that claims a huge body
    // and sends nothing costs us `FIRST_BODY_STEP`, not its claim. Past that the buffer
    // doubles as bytes arrive, so it never exceeds twice what the peer actually sent.
    // The reservation lives as long as the bytes, wherever the batch goes.
    match reuse::body_buffer(len_usize, FIRST_BODY_STEP) {
        reuse::BodyBuffer::Pooled(mut landing) => {
            read_exact(r, landing.bytes_mut())?;
            Ok(reuse::landed(landing, reservation))
        }
        reuse::BodyBuffer::Fresh(mut body) => {
            let got = r.take(len).read_to_end(&mut body)?;
            if got < len_usize {
                return Err(Error::disconnected(
                    "connection closed inside an IPC message",
                ));
            }
            Ok(reuse::body(body, reservation))
        }
    }
}

/// Reads `len` body bytes and throws them away, a small buffer at a time.
fn skip_body<R: Read + ?Sized>(r: &mut R, len: u64) -> Result<()> {
    let got = std::io::copy(&mut r.take(len), &mut std::io::sink())?;
    if got < len {
        return Err(Error::disconnected(
            "connection closed inside an IPC message",
        ));
    }
    Ok(())
}

/// Fills `buf`; `Ok(false)` when the source was at EOF before the first byte.
fn read_full_or_eof<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(Error::disconnected(
                    "connection closed inside an IPC message",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn read_exact<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    if read_full_or_eof(r, buf)? || buf.is_empty() {
        Ok(())
    } else {
        Err(Error::disconnected(
            "connection closed inside an IPC message",
        ))
    }
}

/// What a stream yields after its schema: batches with their metadata, then the end.
#[derive(Debug)]
pub enum StreamItem {
    /// A record batch and its message's custom metadata.
    Batch(RecordBatch, Metadata),
    /// The end-of-stream marker.
    End,
}

/// Decoding state for one IPC stream: its schema and dictionaries so far.
#[derive(Debug)]
pub struct StreamDecoder {
    schema: SchemaRef,
    dictionaries: HashMap<i64, ArrayRef>,
    validation: Validation,
    /// Every column is flat: [`Validation::Full`] runs [`full_check`] (see there).
    flat: bool,
}

impl StreamDecoder {
    /// Starts a stream from its first message, which must be a schema.
    ///
    /// # Errors
    /// Fails when the message is not a valid schema message.
    pub fn from_schema_message(raw: &RawMessage) -> Result<Self> {
        if let Some(schema) = reuse::cached_schema(&raw.meta) {
            trace::stream_start(Direction::In, &schema);
            return Ok(StreamDecoder::with_schema(schema));
        }
        let message = raw.message()?;
        if message.header_type() != MessageHeader::Schema {
            return Err(Error::protocol(format!(
                "expected a schema message to start the IPC stream, got {:?}",
                message.header_type()
            )));
        }
        let fb = message
            .header_as_schema()
            .ok_or_else(|| Error::protocol("schema message without a schema"))?;
        let schema = decode_fb_schema(fb)?;
        reuse::remember_schema(&raw.meta, &schema);
        trace::stream_start(Direction::In, &schema);
        Ok(StreamDecoder::with_schema(schema))
    }

    /// Sets how much of each batch is checked (from [`Limits::validation`], which only
    /// `unsafe` code can lower).
    pub(crate) fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Decodes messages of a stream whose schema is already known (its schema message
    /// was not part of the bytes, as in a dictionary schema's shm region).
    pub fn with_schema(schema: SchemaRef) -> Self {
        StreamDecoder {
            flat: full_check::applies(&schema),
            schema,
            dictionaries: HashMap::new(),
            validation: Validation::Full,
        }
    }

    /// The stream's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes the next message. Dictionary messages are absorbed and yield `None`.
    ///
    /// # Errors
    /// Fails on malformed or unexpected messages; never panics.
    pub fn decode(&mut self, raw: &RawMessage) -> Result<Option<(RecordBatch, Metadata)>> {
        // A batch without columns or body decodes to its row count and metadata alone,
        // the same for the same bytes (a parameterless request, a void result).
        let columnless = self.schema.fields().is_empty() && raw.body().is_empty();
        if columnless {
            let mut metadata = Metadata::new();
            if let Some(rows) = columnless::cached_read(&raw.meta, &mut metadata) {
                let options = RecordBatchOptions::new().with_row_count(Some(rows));
                let batch =
                    RecordBatch::try_new_with_options(self.schema.clone(), Vec::new(), &options)
                        .map_err(|e| Error::protocol(format!("malformed IPC record batch: {e}")))?;
                trace::batch(Direction::In, &batch, &metadata, 0);
                return Ok(Some((batch, metadata)));
            }
        }
        let message = raw.message()?;
        let version = message.version();
        match message.header_type() {
            MessageHeader::RecordBatch => {
                let fb = message
                    .header_as_record_batch()
                    .ok_or_else(|| Error::protocol("record batch message without a header"))?;
                check_batch_shape(&fb, &self.schema, raw.body().len())?;
                let batch = match self.validation {
                    Validation::Full if self.flat => {
                        let batch = guard(|| {
                            let dictionaries = &self.dictionaries;
                            read_unvalidated(raw.body(), fb, &self.schema, dictionaries, &version)
                        })?;
                        // Checked as fully as arrow would before anyone reads it.
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            full_check::check(&batch)
                        }))
                        .unwrap_or_else(|_| Err(Error::protocol("malformed IPC record batch")))?;
                        batch
                    }
                    Validation::Full => guard(|| {
                        arrow_ipc::reader::read_record_batch(
                            raw.body(),
                            fb,
                            self.schema.clone(),
                            &self.dictionaries,
                            None,
                            &version,
                        )
                    })?,
                    level => {
                        let batch = guard(|| {
                            let dictionaries = &self.dictionaries;
                            read_unvalidated(raw.body(), fb, &self.schema, dictionaries, &version)
                        })?;
                        level.check_unvalidated(&batch)?;
                        batch
                    }
                };
                let metadata = read_custom_metadata(&message);
                if columnless {
                    columnless::remember_read(&raw.meta, batch.num_rows(), &metadata);
                }
                trace::batch(Direction::In, &batch, &metadata, raw.body().len());
                Ok(Some((batch, metadata)))
            }
            MessageHeader::DictionaryBatch => {
                let fb = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| Error::protocol("dictionary message without a header"))?;
                let data = fb
                    .data()
                    .ok_or_else(|| Error::protocol("dictionary message without data"))?;
                check_buffers(&data, raw.body().len())?;
                let dictionaries = &mut self.dictionaries;
                let schema = &self.schema;
                guard(|| {
                    arrow_ipc::reader::read_dictionary(
                        raw.body(),
                        fb,
                        schema,
                        dictionaries,
                        &version,
                    )
                })?;
                Ok(None)
            }
            other => Err(Error::protocol(format!(
                "unexpected IPC message type {other:?} inside a stream"
            ))),
        }
    }
}

/// Decodes a batch without arrow's validation: for a level below [`Validation::Full`],
/// or for a flat batch that [`full_check::check`] then checks completely.
#[allow(unsafe_code)]
fn read_unvalidated(
    body: &Buffer,
    fb: arrow_ipc::RecordBatch<'_>,
    schema: &SchemaRef,
    dictionaries: &HashMap<i64, ArrayRef>,
    version: &arrow_ipc::MetadataVersion,
) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let mut skip = arrow_data::UnsafeFlag::new();
    // SAFETY: this runs either for a flat batch at `Full`, which `full_check::check`
    // checks as completely as arrow's decoder would before the batch is handed out or
    // any value in it is read; or when the stream's `Limits` carry a level below `Full`,
    // which only `unsafe` `Limits::with_validation` sets, whose caller vouches that the
    // peer sends well-formed Arrow data; and the engines lower the level only on channels
    // to a process the caller controls (`Limits::on_channel`). Framing, the message
    // header and the buffer table were checked against the body (`check_batch_shape`)
    // either way.
    unsafe { skip.set(true) };
    arrow_ipc::reader::RecordBatchDecoder::try_new(body, fb, schema.clone(), dictionaries, version)?
        .with_skip_validation(skip)
        .read_record_batch()
}

/// Rejects record batch headers whose declared shape cannot fit the schema before arrow
/// walks them (arrow indexes node and buffer vectors by position).
fn check_batch_shape(
    fb: &arrow_ipc::RecordBatch<'_>,
    schema: &SchemaRef,
    body_len: usize,
) -> Result<()> {
    if fb.length() < 0 {
        return Err(Error::protocol("negative record batch length"));
    }
    if fb.compression().is_some() {
        return Err(Error::protocol("compressed IPC buffers are not supported"));
    }
    let nodes = fb.nodes().map(|n| n.len()).unwrap_or(0);
    if !schema.fields().is_empty() && nodes == 0 {
        return Err(Error::protocol("record batch has no field nodes"));
    }
    check_buffers(fb, body_len)
}

/// Every buffer must lie inside the body (arrow slices without checking).
fn check_buffers(fb: &arrow_ipc::RecordBatch<'_>, body_len: usize) -> Result<()> {
    if fb.length() < 0 {
        return Err(Error::protocol("negative record batch length"));
    }
    for node in fb.nodes().iter().flatten() {
        if node.length() < 0 || node.null_count() < 0 || node.null_count() > node.length() {
            return Err(Error::protocol("invalid field node in record batch"));
        }
    }
    for buffer in fb.buffers().iter().flatten() {
        let in_bounds = u64::try_from(buffer.offset())
            .ok()
            .zip(u64::try_from(buffer.length()).ok())
            .and_then(|(offset, len)| offset.checked_add(len))
            .is_some_and(|end| end <= body_len as u64);
        if !in_bounds {
            return Err(Error::protocol(format!(
                "IPC buffer [{}, +{}) lies outside the {body_len}-byte message body",
                buffer.offset(),
                buffer.length()
            )));
        }
    }
    Ok(())
}

/// Runs an arrow decoding step, turning any panic inside arrow into a protocol error.
fn guard<T>(f: impl FnOnce() -> std::result::Result<T, arrow_schema::ArrowError>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::protocol("malformed IPC record batch")),
    }
}

fn decode_fb_schema(fb: arrow_ipc::Schema<'_>) -> Result<SchemaRef> {
    // arrow's converter panics on some malformed-but-verifiable inputs (e.g. a field with
    // no type); catch that so a peer's bytes can never take the process down.
    match std::panic::catch_unwind(|| arrow_ipc::convert::try_fb_to_schema(fb)) {
        Ok(Ok(schema)) => Ok(Arc::new(schema)),
        Ok(Err(e)) => Err(Error::protocol(format!(
            "malformed schema in IPC message: {e}"
        ))),
        Err(_) => Err(Error::protocol("malformed schema in IPC message")),
    }
}

fn read_custom_metadata(message: &arrow_ipc::Message<'_>) -> Metadata {
    let Some(list) = message.custom_metadata() else {
        return Metadata::new();
    };
    let pairs = || list.iter().filter_map(|kv| Some((kv.key()?, kv.value()?)));
    let text = pairs().map(|(k, v)| k.len() + v.len()).sum();
    let mut md = Metadata::with_capacity(list.len(), text);
    for (k, v) in pairs() {
        // A repeated key keeps its first position and its last value, as before.
        if md.contains(k) {
            md.insert(k, v);
        } else {
            md.push(k, v);
        }
    }
    md
}

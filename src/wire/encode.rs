//! Encoding: schemas and batches into IPC stream messages with custom metadata.
//!
//! arrow-rs encodes the column data and the `RecordBatch`/`DictionaryBatch` tables; this
//! module re-frames each message itself so it can attach `custom_metadata`, and lays the
//! flatbuffer `Message` table out in the same field order as Arrow C++ (pyarrow) does, so
//! our control messages are byte-identical to the reference's.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
};
use arrow_ipc::{MessageHeader, MetadataVersion};
use arrow_schema::Schema;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::Metadata;
use super::trace::{self, Direction};
use super::{columnless, reuse, zero_copy};
use crate::{Error, Result};

/// The end-of-stream marker: continuation token and a zero length.
pub const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

const CONTINUATION: [u8; 4] = [0xff; 4];

/// Batches with at least this many bytes of column data are encoded from their arrays'
/// buffers ([`super::zero_copy`]) even when the caller wants one contiguous buffer.
const COPY_FROM_ARRAYS_AT: usize = 64 << 10;

/// Batches with at least this many bytes of column data are written from their arrays'
/// buffers instead of being copied into the message buffer first ([`StreamEncoder::batch_split`]):
/// a server's answers and a client's parameters and exchange inputs. Worth it only for
/// large bodies: at 256 KiB, a unix producer of ~192 KiB batches ran at 4.2-5.0 GB/s, at
/// 64 KiB 6.4-6.6; ~64 KiB batches were the same either way.
pub(crate) const SPLIT_BODY_AT: usize = 64 << 10;

/// Encodes the messages of one IPC stream into caller-owned byte buffers.
///
/// One encoder serves one stream: [`StreamEncoder::schema`] starts it (and resets the
/// dictionary state), batches follow, [`StreamEncoder::eos`] ends it.
pub struct StreamEncoder {
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    options: IpcWriteOptions,
    context: IpcWriteContext,
    fbb: FlatBufferBuilder<'static>,
    /// arrow's encoder for [`StreamEncoder::batch_split`]'s last schema.
    split: zero_copy::ArrowEncoder,
}

thread_local! {
    /// A finished encoder's flatbuffer builder, kept grown for the thread's next encoder
    /// (every answer and request has one, and a fresh builder reallocates its way up from
    /// nothing on each message).
    static SPARE_BUILDER: std::cell::Cell<Option<FlatBufferBuilder<'static>>> =
        const { std::cell::Cell::new(None) };
}

/// Builders larger than this are not kept (one huge metadata message should not pin its
/// buffer for the thread's lifetime).
const SPARE_BUILDER_MAX: usize = 64 << 10;

impl Drop for StreamEncoder {
    fn drop(&mut self) {
        let fbb = std::mem::replace(&mut self.fbb, FlatBufferBuilder::new());
        if fbb.unfinished_data().len() <= SPARE_BUILDER_MAX {
            // `try_with`: at thread exit the slot may be gone; then the builder just drops.
            let _ = SPARE_BUILDER.try_with(|spare| spare.set(Some(fbb)));
        }
    }
}

impl Default for StreamEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder").finish_non_exhaustive()
    }
}

impl StreamEncoder {
    /// A new encoder writing metadata V5 with 8-byte buffer alignment (as pyarrow does).
    pub fn new() -> Self {
        let options = IpcWriteOptions::try_new(8, false, MetadataVersion::V5).unwrap_or_default();
        StreamEncoder {
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            options,
            context: IpcWriteContext::default(),
            fbb: SPARE_BUILDER
                .try_with(std::cell::Cell::take)
                .ok()
                .flatten()
                .unwrap_or_default(),
            split: None,
        }
    }

    /// Appends the schema message that starts a stream, resetting dictionary state.
    pub fn schema(&mut self, out: &mut Vec<u8>, schema: &Schema) {
        self.tracker = DictionaryTracker::new(false);
        // A schema without dictionaries needs no tracker state: its message is the same
        // bytes every time (an answer's schema is usually the one the last call used).
        if reuse::write_encoded_schema(schema, out) {
            trace::stream_start(Direction::Out, schema);
            return;
        }
        let start = out.len();
        let fbb = &mut self.fbb;
        fbb.reset();
        let header = arrow_ipc::convert::IpcSchemaEncoder::new()
            .with_dictionary_tracker(&mut self.tracker)
            .schema_to_fb_offset(fbb, schema)
            .as_union_value();
        finish_message(fbb, MessageHeader::Schema, header, 0, &Metadata::new());
        frame(out, self.fbb.finished_data(), &[]);
        if !zero_copy::has_dictionary(schema) {
            reuse::remember_encoded_schema(schema, &out[start..]);
        }
        trace::stream_start(Direction::Out, schema);
    }

    /// Appends one batch (preceded by any dictionary messages it needs), with `metadata`
    /// as the batch message's `custom_metadata`.
    ///
    /// # Errors
    /// Fails when arrow cannot encode the batch.
    pub fn batch(
        &mut self,
        out: &mut Vec<u8>,
        batch: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<()> {
        // Either way the body is copied once into `out` (which callers reuse): from the
        // arrays for a large batch; arrow's own path would first build it in a fresh
        // buffer of its own.
        if let Some(body) = self.batch_split(out, batch, metadata, COPY_FROM_ARRAYS_AT)? {
            let len = body.iter().map(Buffer::len).sum();
            out.reserve(len);
            body.iter().for_each(|part| out.extend_from_slice(part));
        }
        Ok(())
    }

    /// [`StreamEncoder::batch`] through arrow's generator: the body is built in arrow's
    /// buffer and copied into `out`.
    fn batch_copied(
        &mut self,
        out: &mut Vec<u8>,
        batch: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<()> {
        if batch.num_columns() == 0 {
            self.columnless(out, batch, metadata);
            return Ok(());
        }
        let (dictionaries, encoded) =
            self.generator
                .encode(batch, &mut self.tracker, &self.options, &mut self.context)?;
        for dictionary in dictionaries {
            self.reframe(out, dictionary, &Metadata::new())?;
        }
        trace::batch(Direction::Out, batch, metadata, encoded.arrow_data.len());
        self.reframe(out, encoded, metadata)
    }

    /// Like [`StreamEncoder::batch`], but a batch of at least `split_at` bytes of
    /// column data is appended only up to its body, which is returned as slices of the
    /// arrays' own buffers (padding included) for the caller to write right after `out`
    /// (see `wire::zero_copy`). Large batches then cross to the writer without being
    /// copied at all.
    ///
    /// # Errors
    /// Fails when arrow cannot encode the batch.
    pub fn batch_split(
        &mut self,
        out: &mut Vec<u8>,
        batch: &RecordBatch,
        metadata: &Metadata,
        split_at: usize,
    ) -> Result<Option<Vec<Buffer>>> {
        if batch.num_columns() == 0
            || batch.get_array_memory_size() < split_at
            || zero_copy::has_dictionary(&batch.schema())
        {
            return self.batch_copied(out, batch, metadata).map(|()| None);
        }
        let part = zero_copy::encode_parts(batch, &self.options, &mut self.split)?;
        let body_len = part.body.iter().map(Buffer::len).sum();
        trace::batch(Direction::Out, batch, metadata, body_len);
        self.rebuild(&part.meta, metadata)?;
        frame(out, self.fbb.finished_data(), &[]);
        Ok(Some(part.body))
    }

    /// A batch without columns (void results, ticks, log and error batches on the empty
    /// schema, pointer stubs): its message is only a row count, built directly instead
    /// of through arrow's generator and [`StreamEncoder::reframe`]. Same bytes.
    fn columnless(&mut self, out: &mut Vec<u8>, batch: &RecordBatch, metadata: &Metadata) {
        trace::batch(Direction::Out, batch, metadata, 0);
        // The same row count and metadata make the same bytes (a void result, a
        // parameterless request): built once per thread.
        if columnless::write_sent(batch.num_rows(), metadata, out) {
            return;
        }
        let start = out.len();
        let fbb = &mut self.fbb;
        fbb.reset();
        // Row counts come from a `usize`; arrow's writer casts them the same way.
        let header = record_batch_table(fbb, batch.num_rows() as i64, &[], &[], None);
        finish_message(
            fbb,
            MessageHeader::RecordBatch,
            header.as_union_value(),
            0,
            metadata,
        );
        frame(out, self.fbb.finished_data(), &[]);
        columnless::remember_sent(batch.num_rows(), metadata, &out[start..]);
    }

    /// Appends the end-of-stream marker.
    pub fn eos(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&EOS);
        trace::stream_end(Direction::Out);
    }

    /// Rebuilds arrow-rs's message around the same header table, adding metadata.
    fn reframe(
        &mut self,
        out: &mut Vec<u8>,
        encoded: EncodedData,
        metadata: &Metadata,
    ) -> Result<()> {
        self.rebuild(&encoded.ipc_message, metadata)?;
        frame(out, self.fbb.finished_data(), &encoded.arrow_data);
        Ok(())
    }

    /// Builds (in `self.fbb`) arrow-rs's message `ipc_message` again with `metadata`.
    fn rebuild(&mut self, ipc_message: &[u8], metadata: &Metadata) -> Result<()> {
        let message = arrow_ipc::root_as_message(ipc_message)
            .map_err(|e| Error::protocol(format!("arrow produced an invalid message: {e}")))?;
        let fbb = &mut self.fbb;
        fbb.reset();
        let (header_type, header) = match message.header_type() {
            MessageHeader::RecordBatch => {
                let batch = message
                    .header_as_record_batch()
                    .ok_or_else(|| Error::protocol("record batch header missing"))?;
                (
                    MessageHeader::RecordBatch,
                    copy_record_batch(fbb, &batch).as_union_value(),
                )
            }
            MessageHeader::DictionaryBatch => {
                let dict = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| Error::protocol("dictionary header missing"))?;
                let data = dict
                    .data()
                    .ok_or_else(|| Error::protocol("dictionary data missing"))?;
                let data = copy_record_batch(fbb, &data);
                let mut builder = arrow_ipc::DictionaryBatchBuilder::new(fbb);
                builder.add_id(dict.id());
                builder.add_data(data);
                builder.add_isDelta(dict.isDelta());
                (
                    MessageHeader::DictionaryBatch,
                    builder.finish().as_union_value(),
                )
            }
            other => {
                return Err(Error::protocol(format!(
                    "unexpected message type {other:?}"
                )));
            }
        };
        finish_message(fbb, header_type, header, message.bodyLength(), metadata);
        Ok(())
    }
}

/// Copies a RecordBatch table into `fbb` with Arrow C++'s field order.
fn copy_record_batch<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    batch: &arrow_ipc::RecordBatch<'_>,
) -> WIPOffset<arrow_ipc::RecordBatch<'a>> {
    let nodes: Vec<arrow_ipc::FieldNode> = batch
        .nodes()
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    let buffers: Vec<arrow_ipc::Buffer> = batch
        .buffers()
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    let variadic: Option<Vec<i64>> = batch
        .variadicBufferCounts()
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().collect());
    record_batch_table(fbb, batch.length(), &nodes, &buffers, variadic.as_deref())
}

/// Builds a RecordBatch table with Arrow C++'s field order.
fn record_batch_table<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    length: i64,
    nodes: &[arrow_ipc::FieldNode],
    buffers: &[arrow_ipc::Buffer],
    variadic: Option<&[i64]>,
) -> WIPOffset<arrow_ipc::RecordBatch<'a>> {
    let nodes = if nodes.is_empty() {
        // Arrow C++ leaves four bytes of padding behind an empty struct vector; match it so
        // zero-column batches are byte-identical to pyarrow's.
        fbb.push(0u32);
        WIPOffset::new(fbb.push(0u32).value())
    } else {
        fbb.create_vector(nodes)
    };
    let buffers = fbb.create_vector(buffers);
    let variadic = variadic.map(|v| fbb.create_vector(v));
    // Compression is never enabled by this encoder, so there is no BodyCompression table.
    let mut builder = arrow_ipc::RecordBatchBuilder::new(fbb);
    builder.add_length(length);
    if let Some(variadic) = variadic {
        builder.add_variadicBufferCounts(variadic);
    }
    builder.add_buffers(buffers);
    builder.add_nodes(nodes);
    builder.finish()
}

/// Finishes a `Message` table in Arrow C++'s field order (bodyLength, custom_metadata,
/// header, version, header_type).
fn finish_message(
    fbb: &mut FlatBufferBuilder<'_>,
    header_type: MessageHeader,
    header: WIPOffset<UnionWIPOffset>,
    body_length: i64,
    metadata: &Metadata,
) {
    let custom = if metadata.is_empty() {
        None
    } else {
        let pairs: Vec<_> = metadata
            .iter()
            .map(|(k, v)| {
                let key = fbb.create_string(k);
                let value = fbb.create_string(v);
                let mut kv = arrow_ipc::KeyValueBuilder::new(fbb);
                kv.add_value(value);
                kv.add_key(key);
                kv.finish()
            })
            .collect();
        Some(fbb.create_vector(&pairs))
    };
    let mut message = arrow_ipc::MessageBuilder::new(fbb);
    message.add_bodyLength(body_length);
    if let Some(custom) = custom {
        message.add_custom_metadata(custom);
    }
    message.add_header(header);
    message.add_version(MetadataVersion::V5);
    message.add_header_type(header_type);
    let root = message.finish();
    fbb.finish(root, None);
}

/// Appends continuation, padded metadata length, metadata, padding and body.
fn frame(out: &mut Vec<u8>, meta: &[u8], body: &[u8]) {
    let padded = (meta.len() + 8).next_multiple_of(8) - 8;
    out.reserve(8 + padded + body.len());
    out.extend_from_slice(&CONTINUATION);
    // Flatbuffer metadata is tiny compared to i32::MAX; the cast cannot truncate.
    out.extend_from_slice(&(padded as i32).to_le_bytes());
    out.extend_from_slice(meta);
    out.resize(out.len() + (padded - meta.len()), 0);
    out.extend_from_slice(body);
}

//! Large batches out without copying their column data.
//!
//! arrow's own [`arrow_ipc::writer::StreamEncoder`] hands back an encoded stream as a
//! list of buffers in which every column buffer is the array's own memory (plus
//! padding slices). [`encode_parts`] walks that list message by message: the small
//! prefix and flatbuffer of each message are copied out (so the caller can re-frame the
//! batch message with its custom metadata), the batch body stays a list of slices of
//! the arrays' buffers, which the writer then sends with one vectored write. Copying a
//! large body into one contiguous buffer first cost a copy per byte and, since that
//! buffer is new each time, a page fault per 4 KiB.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::IpcWriteOptions;
use std::sync::Arc;

use arrow_schema::{DataType, Schema, SchemaRef};

use crate::{Error, Result};

/// One encoded message: its flatbuffer (without prefix or padding) and its body as
/// slices of arrow's buffers (padding included).
pub(super) struct Part {
    pub meta: Vec<u8>,
    pub body: Vec<Buffer>,
}

/// arrow's encoder of the last schema a [`super::StreamEncoder`] split batches of,
/// kept for the next batch of that schema: a fresh one encodes the schema message again
/// (then dropped) on every batch, a third of encoding a producer's batch header.
pub(super) type ArrowEncoder = Option<(SchemaRef, arrow_ipc::writer::StreamEncoder)>;

/// Encodes `batch` (of a dictionary-free schema) into its batch message, with `kept`
/// as the encoder when it is for the same schema.
pub(super) fn encode_parts(
    batch: &RecordBatch,
    options: &IpcWriteOptions,
    kept: &mut ArrowEncoder,
) -> Result<Part> {
    let schema = batch.schema();
    let encoder = match kept {
        Some((known, encoder)) if Arc::ptr_eq(known, &schema) || **known == *schema => encoder,
        _ => {
            let encoder =
                arrow_ipc::writer::StreamEncoder::try_new_with_options(&schema, options.clone())?;
            &mut kept.insert((schema, encoder)).1
        }
    };
    let parts = match encoder.encode(batch) {
        Ok(parts) => parts,
        Err(e) => {
            *kept = None;
            return Err(e.into());
        }
    };
    let mut rope = Rope {
        parts,
        at: 0,
        offset: 0,
    };
    let mut last = None;
    while let Some(meta) = rope.next_meta()? {
        let body_len = arrow_ipc::root_as_message(&meta)
            .map_err(|e| Error::protocol(format!("arrow produced an invalid message: {e}")))?
            .bodyLength();
        let body_len = usize::try_from(body_len)
            .map_err(|_| Error::protocol("arrow produced a negative body length"))?;
        let body = rope.take(body_len)?;
        // A fresh encoder's schema message comes first, which the caller wrote already.
        last = Some(Part { meta, body });
    }
    last.ok_or_else(|| Error::protocol("arrow encoded no batch message"))
}

/// A cursor over a list of buffers read as one byte sequence.
struct Rope {
    parts: Vec<Buffer>,
    at: usize,
    offset: usize,
}

impl Rope {
    fn exhausted(&mut self) -> bool {
        while self.at < self.parts.len() && self.offset == self.parts[self.at].len() {
            self.at += 1;
            self.offset = 0;
        }
        self.at == self.parts.len()
    }

    /// Copies the next `n` bytes out.
    fn copy(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        for slice in self.take(n)? {
            out.extend_from_slice(&slice);
        }
        Ok(out)
    }

    /// The next `n` bytes as slices of the underlying buffers (no copy).
    fn take(&mut self, mut n: usize) -> Result<Vec<Buffer>> {
        let mut out = Vec::new();
        while n > 0 {
            if self.exhausted() {
                return Err(Error::protocol("arrow's encoded stream ended early"));
            }
            let part = &self.parts[self.at];
            let len = n.min(part.len() - self.offset);
            out.push(part.slice_with_length(self.offset, len));
            self.offset += len;
            n -= len;
        }
        Ok(out)
    }

    /// The next message's flatbuffer (prefix and padding skipped); `None` at the end.
    fn next_meta(&mut self) -> Result<Option<Vec<u8>>> {
        if self.exhausted() {
            return Ok(None);
        }
        let prefix = self.copy(8)?;
        if prefix[..4] != [0xff; 4] {
            return Err(Error::protocol(
                "arrow wrote a message without continuation",
            ));
        }
        let len = i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        let len = usize::try_from(len)
            .map_err(|_| Error::protocol("arrow wrote a negative metadata length"))?;
        if len == 0 {
            return Ok(None);
        }
        // The block includes arrow's padding; the flatbuffer reads the same with it.
        self.copy(len).map(Some)
    }
}

/// Whether any field of `schema`, at any depth, is dictionary-encoded (such batches take
/// the encoder's own path, which tracks dictionaries across the stream).
pub(crate) fn has_dictionary(schema: &Schema) -> bool {
    fn walk(dt: &DataType) -> bool {
        match dt {
            DataType::Dictionary(..) => true,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::LargeListView(f)
            | DataType::FixedSizeList(f, _)
            | DataType::Map(f, _) => walk(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| walk(f.data_type())),
            DataType::Union(fields, _) => fields.iter().any(|(_, f)| walk(f.data_type())),
            DataType::RunEndEncoded(a, b) => walk(a.data_type()) || walk(b.data_type()),
            _ => false,
        }
    }
    schema.fields().iter().any(|f| walk(f.data_type()))
}

//! Whole streams seen before.
//!
//! On a request/response transport (HTTP) every request and every unary answer is a
//! complete IPC stream in one buffer. A parameterless request or a void result is the
//! same stream, byte for byte, call after call, and decoding it again (the schema
//! message, the batch and the end marker, each framed and verified) is a good part of
//! such a call. A [`Repeat`] keeps the last such stream with the batch it decoded to, and
//! answers the same bytes with that batch again.
//!
//! Only streams of exactly one plain data batch without columns are kept: such a batch
//! has no body, so the bytes say everything it holds (row count, schema, metadata), and
//! equal bytes decode to an equal batch. Logs, errors and pointers are never kept (each
//! must act again), nor streams over [`CACHED_MESSAGE_MAX`], and a stream decoded under
//! other [`Limits`] is decoded afresh. A hit emits the wire events a decode would.
//!
//! A byte stream (pipe, socket) has no body boundary to compare, but a stream read whole
//! is self-delimiting: when the bytes read ahead begin with the kept stream, decoding
//! them would end exactly there and yield the kept batch. So a connection first asks
//! [`Repeat::take_from`], which takes the kept stream off the reader or notes the bytes
//! read ahead, decodes the stream otherwise, and then keeps its prefix of the noted bytes
//! ([`Repeat::keep_noted`]).
//!
//! A traced caller's requests differ in their `traceparent` alone; a kept stream that
//! carries one also answers a stream that differs from it only there ([`TraceSlot`]), with
//! the new value in the batch's metadata.

use std::io::BufRead;

use arrow_array::RecordBatch;

use super::reuse::CACHED_MESSAGE_MAX;
use super::trace::{self, Direction};
use super::{BatchKind, Limits, Metadata, TraceSlot, keys};

/// The last whole stream kept, and its one column-less batch (see the module docs).
#[derive(Default)]
pub(crate) struct Repeat {
    bytes: Vec<u8>,
    kept: Option<Kept>,
    /// The bytes read ahead before the stream being decoded ([`Repeat::take_from`]).
    noted: Vec<u8>,
}

#[cfg(test)]
thread_local! {
    /// Streams answered from a [`Repeat`], for tests that it is used.
    pub(crate) static HITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

struct Kept {
    limits: Limits,
    batch: RecordBatch,
    metadata: Metadata,
    /// Where the kept stream carries its `traceparent`, if it has one ([`TraceSlot`]).
    slot: Option<TraceSlot>,
}

impl Repeat {
    /// The batch `body` decoded to under `limits` before, if it is the kept stream.
    pub(crate) fn get(&self, body: &[u8], limits: &Limits) -> Option<(RecordBatch, Metadata)> {
        if body.len() != self.bytes.len() {
            return None;
        }
        self.hit(body, limits)
    }

    /// The kept stream's batch, taken off `reader` (a byte stream's read-ahead), when the
    /// bytes read ahead begin with it (decoded under the same `limits`); otherwise those
    /// bytes are noted (as many as a kept stream may hold) for [`Repeat::keep_noted`],
    /// and nothing is consumed.
    ///
    /// # Errors
    /// A failed read (an interrupted one counts as nothing read ahead).
    pub(crate) fn take_from(
        &mut self,
        reader: &mut impl BufRead,
        limits: &Limits,
    ) -> std::io::Result<Option<(RecordBatch, Metadata)>> {
        let buffered = match reader.fill_buf() {
            Ok(buffered) => buffered,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => &[],
            Err(e) => return Err(e),
        };
        if !self.bytes.is_empty()
            && let Some(hit) = self.hit(buffered, limits)
        {
            reader.consume(self.bytes.len());
            return Ok(Some(hit));
        }
        self.noted.clear();
        self.noted
            .extend_from_slice(&buffered[..buffered.len().min(CACHED_MESSAGE_MAX)]);
        Ok(None)
    }

    /// [`Repeat::keep`] for a stream of `len` bytes decoded from where the last
    /// [`Repeat::take_from`] noted the bytes read ahead, when all of them were noted.
    pub(crate) fn keep_noted(
        &mut self,
        len: usize,
        limits: &Limits,
        batch: &RecordBatch,
        metadata: &Metadata,
    ) {
        if len == 0 || len > self.noted.len() || !keepable(len, batch, metadata) {
            return;
        }
        self.noted.truncate(len);
        std::mem::swap(&mut self.bytes, &mut self.noted);
        self.set_kept(limits, batch, metadata);
    }

    /// The kept batch when `bytes` begin with the kept stream (apart from its trace
    /// context's slot, whose value the answer's metadata then carries).
    fn hit(&self, bytes: &[u8], limits: &Limits) -> Option<(RecordBatch, Metadata)> {
        let kept = self.kept.as_ref()?;
        if kept.limits != *limits {
            return None;
        }
        let traceparent = match kept.slot {
            Some(slot) => Some(slot.value_in(&self.bytes, bytes)?),
            None if bytes.starts_with(&self.bytes) => None,
            None => return None,
        };
        let mut metadata = kept.metadata.clone();
        if let Some(value) = traceparent
            && !metadata.overwrite(keys::TRACEPARENT, value)
        {
            return None;
        }
        #[cfg(test)]
        HITS.set(HITS.get() + 1);
        trace::stream_start(Direction::In, kept.batch.schema_ref());
        trace::batch(Direction::In, &kept.batch, &metadata, 0);
        trace::stream_end(Direction::In);
        Some((kept.batch.clone(), metadata))
    }

    /// Keeps `body`, a whole stream whose only batch was `batch` with `metadata`, when
    /// it is one this cache holds (see the module docs); otherwise forgets nothing.
    pub(crate) fn keep(
        &mut self,
        body: &[u8],
        limits: &Limits,
        batch: &RecordBatch,
        metadata: &Metadata,
    ) {
        if !keepable(body.len(), batch, metadata) {
            return;
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(body);
        self.set_kept(limits, batch, metadata);
    }

    fn set_kept(&mut self, limits: &Limits, batch: &RecordBatch, metadata: &Metadata) {
        self.kept = Some(Kept {
            limits: limits.clone(),
            batch: batch.clone(),
            metadata: metadata.clone(),
            slot: TraceSlot::find(&self.bytes, metadata),
        });
    }
}

/// Whether a stream of `len` bytes whose only batch was `batch` may be kept.
fn keepable(len: usize, batch: &RecordBatch, metadata: &Metadata) -> bool {
    batch.num_columns() == 0
        && len <= CACHED_MESSAGE_MAX
        && BatchKind::of(batch, metadata) == BatchKind::Data
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow_array::RecordBatchOptions;
    use arrow_schema::Schema;

    use super::*;

    /// A column-less batch of `rows` rows (a parameterless request's, a void result's).
    pub(crate) fn void(rows: usize) -> RecordBatch {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::empty()), Vec::new(), &options)
            .expect("a column-less batch")
    }

    #[test]
    fn the_same_bytes_under_the_same_limits_are_answered_again() {
        let limits = Limits::default();
        let mut metadata = Metadata::new();
        metadata.insert("k", "v");
        let mut repeat = Repeat::default();
        assert!(repeat.get(b"stream", &limits).is_none());
        repeat.keep(b"stream", &limits, &void(1), &metadata);
        let (batch, md) = repeat.get(b"stream", &limits).expect("kept");
        assert_eq!((batch.num_rows(), batch.num_columns()), (1, 0));
        assert_eq!(md, metadata);
        assert!(repeat.get(b"streaM", &limits).is_none());
        assert!(repeat.get(b"stream!", &limits).is_none());
        let mut other = limits.clone();
        other.max_metadata -= 1;
        assert!(repeat.get(b"stream", &other).is_none());
    }

    /// A whole column-less stream of one batch of `rows` rows with `metadata`.
    pub(crate) fn stream(rows: usize, metadata: &Metadata) -> Vec<u8> {
        let schema = Arc::new(Schema::empty());
        let mut out = Vec::new();
        let mut encoder = crate::wire::StreamEncoder::new();
        encoder.schema(&mut out, &schema);
        encoder
            .batch(&mut out, &void(rows), metadata)
            .expect("encodes");
        encoder.eos(&mut out);
        out
    }

    #[test]
    fn the_server_reads_a_repeated_request_from_its_repeat() {
        let limits = Limits::default();
        let mut metadata = Metadata::new();
        metadata.insert(keys::METHOD, "noop");
        let body = stream(1, &metadata);
        let (first, read) = crate::server::oneshot::read_body(&body, &limits).expect("reads");
        let hits = HITS.get();
        let (again, read_again) = crate::server::oneshot::read_body(&body, &limits).expect("reads");
        assert_eq!(HITS.get(), hits + 1, "the second read is a hit");
        assert_eq!(
            (again.num_rows(), again.num_columns()),
            (first.num_rows(), 0)
        );
        assert_eq!(read_again, read);
        // Another request is decoded, and is what is kept next.
        let other = stream(2, &metadata);
        let (batch, _) = crate::server::oneshot::read_body(&other, &limits).expect("reads");
        assert_eq!((batch.num_rows(), HITS.get()), (2, hits + 1));
        // A truncated stream is an error, never a hit.
        assert!(crate::server::oneshot::read_body(&other[..other.len() - 1], &limits).is_err());
        assert_eq!(HITS.get(), hits + 1);
    }

    #[test]
    fn a_stream_differing_only_in_its_traceparent_is_the_kept_batch_with_that_context() {
        let limits = Limits::default();
        let traced = |tp: &str| {
            Metadata::new()
                .with(keys::METHOD, "noop")
                .with(keys::TRACEPARENT, tp)
        };
        let a = traced("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let b = traced("00-1234567890abcdef1234567890abcdef-0123456789abcdef-00");
        let mut repeat = Repeat::default();
        repeat.keep(&stream(1, &a), &limits, &void(1), &a);
        let (batch, md) = repeat.get(&stream(1, &b), &limits).expect("a hit");
        assert_eq!((batch.num_rows(), md), (1, b.clone()));
        // From a byte stream, with the next request read ahead behind it.
        let mut ahead = stream(1, &b);
        let len = ahead.len();
        ahead.extend_from_slice(&stream(1, &a));
        let mut reader = std::io::Cursor::new(ahead);
        let (_, md) = repeat
            .take_from(&mut reader, &limits)
            .unwrap()
            .expect("a hit");
        assert_eq!((md, reader.position()), (b, len as u64));
        // Another method, or a traceparent of another length, is decoded afresh.
        let other = Metadata::new().with(keys::METHOD, "nope").with(
            keys::TRACEPARENT,
            "00-1234567890abcdef1234567890abcdef-0123456789abcdef-00",
        );
        assert!(repeat.get(&stream(1, &other), &limits).is_none());
        let short = traced("00-short");
        assert!(repeat.get(&stream(1, &short), &limits).is_none());
    }

    #[test]
    fn logs_errors_pointers_columns_and_large_streams_are_not_kept() {
        let limits = Limits::default();
        let mut repeat = Repeat::default();
        let mut log = Metadata::new();
        log.insert(keys::LOG_LEVEL, "INFO");
        log.insert(keys::LOG_MESSAGE, "hello");
        repeat.keep(b"log", &limits, &void(0), &log);
        assert!(repeat.get(b"log", &limits).is_none());
        let mut error = Metadata::new();
        error.insert(keys::LOG_LEVEL, "EXCEPTION");
        error.insert(keys::LOG_MESSAGE, "boom");
        repeat.keep(b"error", &limits, &void(0), &error);
        assert!(repeat.get(b"error", &limits).is_none());
        let mut pointer = Metadata::new();
        pointer.insert(keys::LOCATION, "https://example.invalid/x");
        repeat.keep(b"pointer", &limits, &void(0), &pointer);
        assert!(repeat.get(b"pointer", &limits).is_none());
        let columns = RecordBatch::try_from_iter([(
            "x",
            Arc::new(arrow_array::Int64Array::from(vec![1])) as arrow_array::ArrayRef,
        )])
        .expect("a batch");
        repeat.keep(b"columns", &limits, &columns, &Metadata::new());
        assert!(repeat.get(b"columns", &limits).is_none());
        let large = vec![0u8; CACHED_MESSAGE_MAX + 1];
        repeat.keep(&large, &limits, &void(1), &Metadata::new());
        assert!(repeat.get(&large, &limits).is_none());
    }
}

//! Batch messages without columns, sent and read once per distinct bytes on a thread.
//!
//! A parameterless request and a void result are batches without columns: a row count
//! and custom metadata, and for a given method the same bytes on every call. Building
//! such a message (a flatbuffer) and verifying and decoding it on the other side were
//! most of what a small call costs in user time besides the system calls. So each thread
//! keeps the last few distinct ones in both directions: the framed message sent for a
//! row count and metadata, and the row count and metadata read from exact flatbuffer
//! bytes (equal bytes decode to an equal result; a batch without columns has no body
//! to check).
//!
//! A message enters a cache on its second sighting, not its first: messages that never
//! repeat (a traced request, whose `traceparent` changes every call; a shared-memory
//! pointer) would otherwise be copied in on every call and push the repeating ones out.
//! A sighting is a 64-bit hash of the bytes in a small ring; a collision only admits a
//! message early.

use std::cell::RefCell;

use super::metadata::Metadata;
use super::reuse::{CACHED_MESSAGE_MAX, Ring};

thread_local! {
    /// Read: exact flatbuffer bytes → row count and metadata.
    static READ: RefCell<Ring<(Vec<u8>, usize, Metadata)>> = const { RefCell::new(Ring::new()) };
    static READ_SEEN: RefCell<Ring<u64>> = const { RefCell::new(Ring::new()) };
    /// Sent: row count and metadata → framed message.
    static SENT: RefCell<Ring<(usize, Metadata, Vec<u8>)>> = const { RefCell::new(Ring::new()) };
    static SENT_SEEN: RefCell<Ring<u64>> = const { RefCell::new(Ring::new()) };
}

#[cfg(test)]
thread_local! {
    /// Decodes answered from the cache, for tests that it is used.
    pub(super) static HITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The row count and metadata identical bytes decoded to before, on this thread (the
/// metadata copied into `metadata`'s buffers).
pub(super) fn cached_read(meta: &[u8], metadata: &mut Metadata) -> Option<usize> {
    READ.try_with(|cache| {
        let cache = cache.borrow();
        let (_, rows, cached) = cache.entries().iter().find(|(bytes, ..)| bytes == meta)?;
        metadata.clone_from(cached);
        #[cfg(test)]
        HITS.set(HITS.get() + 1);
        Some(*rows)
    })
    .ok()
    .flatten()
}

/// Remembers what the message `meta` decoded to, if it has been seen before.
pub(super) fn remember_read(meta: &[u8], rows: usize, metadata: &Metadata) {
    if meta.len() > CACHED_MESSAGE_MAX || !second_sighting(&READ_SEEN, meta) {
        return;
    }
    let _ = READ.try_with(|cache| {
        cache
            .borrow_mut()
            .push((meta.to_vec(), rows, metadata.clone()));
    });
}

/// Appends the framed message sent before on this thread for a batch of `rows` rows
/// with `metadata`; `false` when there is none.
pub(super) fn write_sent(rows: usize, metadata: &Metadata, out: &mut Vec<u8>) -> bool {
    SENT.try_with(|cache| {
        let cache = cache.borrow();
        let found = cache
            .entries()
            .iter()
            .find(|(n, cached, _)| *n == rows && cached == metadata);
        found
            .map(|(.., framed)| out.extend_from_slice(framed))
            .is_some()
    })
    .unwrap_or(false)
}

/// Remembers the framed message of a batch of `rows` rows with `metadata`, if it has
/// been sent before.
pub(super) fn remember_sent(rows: usize, metadata: &Metadata, framed: &[u8]) {
    if framed.len() > CACHED_MESSAGE_MAX || !second_sighting(&SENT_SEEN, framed) {
        return;
    }
    let _ = SENT.try_with(|cache| {
        cache
            .borrow_mut()
            .push((rows, metadata.clone(), framed.to_vec()));
    });
}

/// Whether `bytes` were among the recent sightings; records them when not.
fn second_sighting(seen: &'static std::thread::LocalKey<RefCell<Ring<u64>>>, bytes: &[u8]) -> bool {
    let hash = quick_hash(bytes);
    seen.try_with(|seen| {
        let mut seen = seen.borrow_mut();
        let again = seen.entries().contains(&hash);
        if !again {
            seen.push(hash);
        }
        again
    })
    .unwrap_or(false)
}

/// A fast 64-bit hash (eight bytes a step): it only decides admission.
fn quick_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default());
        hash = (hash ^ word).wrapping_mul(K).rotate_left(29);
    }
    for byte in words.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(K);
    }
    hash
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{RecordBatch, RecordBatchOptions};
    use arrow_schema::Schema;

    use super::{HITS, READ};
    use crate::wire::{Limits, Metadata, StreamDecoder, StreamEncoder, read_message};

    /// A column-less stream of `rows` rows with `metadata`, as bytes.
    fn stream(schema: &Arc<Schema>, rows: usize, metadata: &Metadata) -> Vec<u8> {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(schema.clone(), vec![], &options).unwrap();
        let mut out = Vec::new();
        let mut encoder = StreamEncoder::new();
        encoder.schema(&mut out, schema);
        encoder.batch(&mut out, &batch, metadata).unwrap();
        out
    }

    fn decode(bytes: &[u8]) -> (RecordBatch, Metadata) {
        let mut input = bytes;
        let limits = Limits::default();
        let schema = read_message(&mut input, &limits, true).unwrap().unwrap();
        let mut decoder = StreamDecoder::from_schema_message(&schema).unwrap();
        let batch = read_message(&mut input, &limits, false).unwrap().unwrap();
        decoder.decode(&batch).unwrap().unwrap()
    }

    #[test]
    fn columnless_batches_seen_twice_are_sent_and_read_from_the_caches_unchanged() {
        let mut metadata = Metadata::new();
        metadata.insert("vgi_rpc.method", "noop");
        let plain = Arc::new(Schema::empty());
        let first = stream(&plain, 1, &metadata);
        // The encoder's cache gives the same bytes as building the message afresh.
        for _ in 0..3 {
            assert_eq!(stream(&plain, 1, &metadata), first);
        }
        let hits = HITS.get();
        for (round, expected_hits) in [(1, hits), (2, hits), (3, hits + 1), (4, hits + 2)] {
            let (batch, read) = decode(&first);
            assert_eq!((batch.num_rows(), &read), (1, &metadata));
            assert_eq!(HITS.get(), expected_hits, "decode {round}");
        }
        // Other rows or metadata are other messages.
        let (batch, _) = decode(&stream(&plain, 3, &metadata));
        assert_eq!(batch.num_rows(), 3);
        let (_, read) = decode(&stream(&plain, 1, &Metadata::new()));
        assert!(read.is_empty());
        // A cached answer carries the decoding stream's own schema.
        let tagged = Arc::new(
            plain.as_ref().clone().with_metadata(
                [("k".to_owned(), "v".to_owned())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
        );
        let (batch, _) = decode(&stream(&tagged, 1, &metadata));
        assert_eq!(
            batch.schema().metadata().get("k").map(String::as_str),
            Some("v")
        );
        assert_eq!(HITS.get(), hits + 3);
    }

    #[test]
    fn messages_that_never_repeat_stay_out_of_the_caches() {
        let plain = Arc::new(Schema::empty());
        let hits = HITS.get();
        for call in 0..20 {
            let mut metadata = Metadata::new();
            metadata.insert("traceparent", format!("00-{call:032x}-{call:016x}-01"));
            let (_, read) = decode(&stream(&plain, 1, &metadata));
            assert_eq!(read, metadata);
        }
        assert_eq!(HITS.get(), hits);
        let cached = READ.with_borrow(|cache| {
            cache
                .entries()
                .iter()
                .filter(|(_, _, m)| m.get("traceparent").is_some())
                .count()
        });
        assert_eq!(cached, 0, "no unique message was copied in");
    }
}

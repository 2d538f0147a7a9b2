//! Property tests: the decoder never panics or over-allocates on arbitrary or corrupted
//! bytes, and round-trips what the encoder writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use proptest::prelude::*;
use vgi_rpc::wire::{self, Metadata, StreamEncoder};

fn sample_stream() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec!["x", "yy", "zzz"])),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &schema);
    enc.batch(&mut out, &batch, &Metadata::new().with("k", "v"))
        .unwrap();
    enc.eos(&mut out);
    out
}

#[test]
fn round_trip_keeps_metadata() {
    let bytes = sample_stream();
    let mut cursor = &bytes[..];
    let limits = wire::Limits::default();
    let mut dec = wire::read_stream_start(&mut cursor, &limits).unwrap();
    match wire::read_stream_item(&mut cursor, &mut dec, &limits).unwrap() {
        wire::StreamItem::Batch(batch, md) => {
            assert_eq!(batch.num_rows(), 3);
            assert_eq!(md.get("k"), Some("v"));
        }
        wire::StreamItem::End => panic!("expected a batch"),
    }
    assert!(matches!(
        wire::read_stream_item(&mut cursor, &mut dec, &limits).unwrap(),
        wire::StreamItem::End
    ));
    assert!(cursor.is_empty(), "reader must stop exactly at EOS");
}

#[test]
fn absurd_lengths_are_rejected_without_allocating() {
    // Continuation + metadata length of 2 GiB - 1.
    let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let err = wire::decode_stream(&bytes).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
    // Negative length.
    let bytes = [0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80];
    assert!(wire::decode_stream(&bytes).is_err());
    // Truncated message.
    let stream = sample_stream();
    for cut in [4, 9, 40, stream.len() - 9] {
        assert!(wire::decode_stream(&stream[..cut]).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::decode_stream(&bytes);
        let _ = wire::decode_schema_message(&bytes);
    }

    #[test]
    fn corrupted_streams_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = sample_stream();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = wire::decode_stream(&bytes);
    }
}

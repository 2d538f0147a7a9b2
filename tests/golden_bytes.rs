//! Golden byte tests: our encoder against captures from the Python reference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgi_rpc::wire::{Metadata, StreamEncoder};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const EMPTY_SCHEMA: &str = "ffffffff30000000100000000000 0a000c000600050008000a000000000104000c00000008000800000004000800000004000000 00000000";
const EMPTY_BATCH: &str = "ffffffff40000000100000000000 0a000e000600050008000a000000000304001000000000000a000c000000040008000a0000000c00000004000000000000000000000000000000";

#[test]
fn empty_schema_message_is_byte_identical() {
    let mut out = Vec::new();
    StreamEncoder::new().schema(&mut out, &Schema::empty());
    assert_eq!(out, unhex(EMPTY_SCHEMA), "{:02x?}", out);
}

#[test]
fn void_response_is_byte_identical() {
    let schema = Arc::new(Schema::empty());
    let batch = RecordBatch::try_new_with_options(
        schema.clone(),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(0)),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &schema);
    enc.batch(&mut out, &batch, &Metadata::new()).unwrap();
    enc.eos(&mut out);
    let mut want = unhex(EMPTY_SCHEMA);
    want.extend(unhex(EMPTY_BATCH));
    want.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(out.len(), 136);
    assert_eq!(out, want, "\n{}\n{}", hex(&out), hex(&want));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol");

/// Decodes every capture, checking stream count and per-stream batch counts against the
/// reference's decoded listing (`*.index.txt`).
#[test]
fn every_capture_decodes_like_the_reference_listing() {
    let mut seen = 0;
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bin") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let stem = name.split('.').next().unwrap();
        let listing = std::fs::read_to_string(format!("{FIXTURES}/{stem}.index.txt")).unwrap();
        let section = listing
            .split("##### ")
            .find(|s| s.starts_with(&name))
            .unwrap_or_else(|| panic!("{name} missing from its listing"));
        let want_streams = section.matches("== IPC stream").count();
        let want_batches = section.matches("   batch ").count();

        let bytes = std::fs::read(&path).unwrap();
        let limits = vgi_rpc::wire::Limits::default();
        let mut cursor = &bytes[..];
        let (mut streams, mut batches) = (0, 0);
        while !cursor.is_empty() {
            let mut dec = vgi_rpc::wire::read_stream_start(&mut cursor, &limits).unwrap();
            streams += 1;
            while let vgi_rpc::wire::StreamItem::Batch(..) =
                vgi_rpc::wire::read_stream_item(&mut cursor, &mut dec, &limits).unwrap()
            {
                batches += 1;
            }
        }
        assert_eq!((streams, batches), (want_streams, want_batches), "{name}");
        seen += 1;
    }
    assert!(seen >= 8, "expected every .bin capture, saw {seen}");
}

#[test]
fn pointer_batches_are_classified_as_pointers() {
    use vgi_rpc::wire::{BatchKind, Limits, StreamItem, read_stream_item, read_stream_start};
    for (file, kind) in [
        ("shm_pointer_response.s2c.bin", BatchKind::ShmPointer),
        (
            "pipe_external_pointer_response.s2c.bin",
            BatchKind::ExternalPointer,
        ),
    ] {
        let bytes = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
        let mut cursor = &bytes[..];
        let mut dec = read_stream_start(&mut cursor, &Limits::default()).unwrap();
        match read_stream_item(&mut cursor, &mut dec, &Limits::default()).unwrap() {
            StreamItem::Batch(batch, md) => assert_eq!(BatchKind::of(&batch, &md), kind, "{file}"),
            StreamItem::End => panic!("{file}: no batch"),
        }
    }
}

#[test]
fn split_batch_bytes_equal_the_whole_message() {
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..50_000));
    let labels: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..50_000).map(|i| format!("label-{i}")),
    ));
    let batch = RecordBatch::try_from_iter([("id", ids), ("label", labels)]).unwrap();
    let mut md = Metadata::new();
    md.insert("k", "v");

    // Below the threshold the batch goes through arrow's generator, body copied.
    let mut whole = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut whole, &batch.schema());
    assert!(
        enc.batch_split(&mut whole, &batch, &md, usize::MAX)
            .unwrap()
            .is_none()
    );

    // Over it, the body comes back as the arrays' own buffers: the same bytes.
    let mut split = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut split, &batch.schema());
    let body = enc.batch_split(&mut split, &batch, &md, 1024).unwrap();
    let body = body.expect("a body over the threshold comes back separately");
    let body_len: usize = body.iter().map(|b| b.len()).sum();
    assert!(body_len > 400_000);
    let ids_values = batch.column(0).to_data().buffers()[0].as_ptr();
    assert!(
        body.iter().any(|part| part.as_ptr() == ids_values),
        "the id column's buffer itself is one of the parts (no copy)"
    );
    for part in &body {
        split.extend_from_slice(part);
    }
    assert_eq!(split, whole);

    // `batch` (one contiguous buffer) copies from the arrays: the same bytes again.
    let mut contiguous = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut contiguous, &batch.schema());
    enc.batch(&mut contiguous, &batch, &md).unwrap();
    assert_eq!(contiguous, whole);

    let mut small = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut small, &batch.schema());
    assert!(
        enc.batch_split(&mut small, &batch, &md, usize::MAX)
            .unwrap()
            .is_none()
    );
    assert_eq!(small, whole);
}

#[test]
fn split_batches_of_one_encoder_equal_fresh_encodings_across_schemas() {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    let mixed = |n: i64| {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(n..n + 20_000));
        let labels: ArrayRef = Arc::new(StringArray::from_iter_values(
            (n..n + 20_000).map(|i| format!("row-{i}")),
        ));
        RecordBatch::try_from_iter([("id", ids), ("label", labels)]).unwrap()
    };
    let floats = |n: usize| {
        let values: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| i as f64 * 0.5),
        ));
        RecordBatch::try_from_iter([("x", values)]).unwrap()
    };
    let mut md = Metadata::new();
    md.insert("k", "v");
    let one = |enc: &mut StreamEncoder, batch: &RecordBatch| {
        let mut out = Vec::new();
        let body = enc
            .batch_split(&mut out, batch, &md, 1024)
            .unwrap()
            .unwrap();
        for part in &body {
            out.extend_from_slice(part);
        }
        out
    };
    // One encoder, the way a producer's stream uses it (the schema the same, the data
    // not; then another schema and back): each message equals a fresh encoder's.
    let mut kept = StreamEncoder::new();
    for batch in [mixed(0), mixed(7), floats(30_000), mixed(3), floats(9_000)] {
        assert_eq!(
            one(&mut kept, &batch),
            one(&mut StreamEncoder::new(), &batch)
        );
    }
}

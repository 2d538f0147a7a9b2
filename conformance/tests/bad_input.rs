//! Bad bytes from a client: truncated messages, absurd lengths, garbage flatbuffers and
//! random corruption of real request captures. The server must answer with a typed error
//! or end the connection cleanly — never panic, never hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vgi_rpc::server::serve_connection;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/protocol");

fn server() -> vgi_rpc::Server {
    vgi_rpc_conformance::server_builder().build().unwrap()
}

fn capture() -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/pipe_unary.c2s.bin")).unwrap()
}

/// Serves `input` in-process; returns whether the connection ended with an error.
fn serve(input: &[u8]) -> bool {
    let mut out = Vec::new();
    serve_connection(&server(), input, &mut out).is_err()
}

#[test]
fn truncated_request_is_a_typed_error() {
    let bytes = capture();
    for cut in [3, 8, 20, 100, 551] {
        assert!(
            serve(&bytes[..cut]),
            "cut at {cut} should end the connection with an error"
        );
    }
}

#[test]
fn absurd_lengths_are_refused() {
    // 2 GiB - 1 of metadata, and a negative length.
    assert!(serve(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    assert!(serve(&[0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80]));
}

#[test]
fn garbage_flatbuffer_is_refused() {
    let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0];
    bytes.extend([0xab; 16]);
    assert!(serve(&bytes));
}

#[test]
fn worker_process_survives_garbage_on_stdin() {
    let worker = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
    for input in [
        vec![0u8; 3],
        vec![0xff; 64],
        b"hello, not arrow".to_vec(),
        capture()[..300].to_vec(),
    ] {
        let mut child = Command::new(worker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "worker hung on bad input"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "worker panicked: {stderr}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_captures_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = capture();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = serve(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serve(&bytes);
    }
}

mod in_step {
    //! Requests that are framed correctly but cannot be decoded get a typed error, and
    //! the next call on the same connection is answered normally.

    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::rpc_error_from_metadata;
    use vgi_rpc::server::serve_connection;
    use vgi_rpc::wire::{
        Limits, Metadata, StreamEncoder, StreamItem, keys, read_stream_item, read_stream_start,
    };

    fn metadata(method: &str) -> Metadata {
        Metadata::new()
            .with(keys::METHOD, method)
            .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
            .with(keys::PROTOCOL, "ConformanceService")
            .with(keys::PROTOCOL_VERSION, "2.0.0")
    }

    /// `add_floats` request bytes: the schema message of `schema`, then `batch`.
    fn request(schema: &Schema, batch: &RecordBatch, method: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut out, schema);
        enc.batch(&mut out, batch, &metadata(method)).unwrap();
        enc.eos(&mut out);
        out
    }

    fn floats(nullable: bool, a: Option<f64>) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Float64, nullable),
            Field::new("b", DataType::Float64, nullable),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Float64Array::from(vec![a])),
                Arc::new(Float64Array::from(vec![2.5])),
            ],
        )
        .unwrap()
    }

    fn valid() -> Vec<u8> {
        let batch = floats(false, Some(1.25));
        request(&batch.schema(), &batch, "add_floats")
    }

    /// Serves `bad` then a valid `add_floats`; expects a ProtocolError then 3.75.
    fn rejected_then_served(bad: Vec<u8>) {
        let mut input = bad;
        input.extend(valid());
        let mut output = Vec::new();
        serve_connection(&super::server(), &input[..], &mut output).unwrap();

        let mut cursor = &output[..];
        let limits = Limits::default();
        let mut answers = Vec::new();
        while !cursor.is_empty() {
            let mut decoder = read_stream_start(&mut cursor, &limits).unwrap();
            while let StreamItem::Batch(batch, md) =
                read_stream_item(&mut cursor, &mut decoder, &limits).unwrap()
            {
                answers.push((batch, md));
            }
        }
        assert_eq!(answers.len(), 2, "{answers:?}");
        let error = rpc_error_from_metadata(&answers[0].1);
        assert_eq!(error.error_type, "ProtocolError", "{error:?}");
        let sum = answers[1]
            .0
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>();
        assert_eq!(sum.unwrap().value(0), 3.75);
    }

    /// The reference's `non_utf8_method` probe: the method name is not UTF-8, which
    /// fails flatbuffer verification although the message is framed correctly.
    #[test]
    fn non_utf8_metadata() {
        let batch = floats(false, Some(1.25));
        // Same length as "add_floats", then patched to invalid UTF-8 in place.
        let mut bad = request(&batch.schema(), &batch, "zz_nonutf8");
        let at = bad.windows(10).position(|w| w == b"zz_nonutf8").unwrap();
        bad[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
        rejected_then_served(bad);
    }

    /// A null in a column the request schema declares non-nullable (what the reference
    /// CLI sends for an omitted argument).
    #[test]
    fn null_in_a_non_nullable_column() {
        let declared = floats(false, Some(1.0)).schema();
        rejected_then_served(request(&declared, &floats(true, None), "add_floats"));
    }
}

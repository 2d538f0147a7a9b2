//! Bad bytes from a client, sent raw (below the client engine) through every transport to
//! our worker: exactly what it answers, that it neither panics nor hangs, and that it
//! keeps serving. The in-process decoder checks and property tests are
//! `conformance/tests/bad_input.rs`.
//!
//! Only our worker: the reference answers some of these differently (an `ArrowInvalid`
//! error for a truncated or empty request, where ours hangs up without answering a peer
//! that is gone; nothing for a negative length, where ours answers `ProtocolError`).

use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgi_rpc::wire::{Metadata, StreamEncoder, keys};
use vgi_rpc::{ErrorCode, RpcError};
use vgi_rpc_conformance::matrix::{Answer, read_answers};

use crate::harness::{Backend, echo};

matrix!(ours: garbage_is_refused, undecodable_requests_keep_the_connection);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/protocol");

/// Sends `input` on a new raw connection, ends the sending direction, and reads every
/// answer until the worker closes the connection.
fn send_raw(b: &Backend, input: &[u8]) -> Vec<Answer> {
    let mut raw = b.endpoint.open_raw().unwrap();
    raw.writer.write_all(input).unwrap();
    raw.close_write().unwrap();
    read_answers(&mut raw.reader).unwrap_or_else(|e| panic!("a malformed answer: {e}"))
}

/// The one answer, a `ProtocolError`.
fn protocol_error(answers: &[Answer]) -> &RpcError {
    match answers {
        [Err(e)] => {
            assert_eq!(e.error_type, "ProtocolError", "{e:?}");
            assert_eq!(e.code, ErrorCode::Unknown, "{e:?}");
            e
        }
        other => panic!("expected one ProtocolError, got {other:?}"),
    }
}

/// Bytes that break the framing: a request the worker cannot have read whole ends the
/// connection without an answer (the peer is gone); one it can tell is not a request is
/// answered with a `ProtocolError` before the worker hangs up (it has lost the stream
/// boundary).
fn garbage_is_refused(b: &mut Backend) {
    let capture = std::fs::read(format!("{FIXTURES}/pipe_unary.c2s.bin")).unwrap();
    let mut bad_flatbuffer = vec![0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0];
    bad_flatbuffer.extend([0xab; 16]);
    let cases: [(&str, Vec<u8>, Option<&str>); 7] = [
        ("nothing", vec![], None),
        ("3 zero bytes", vec![0; 3], None),
        ("a truncated request", capture[..300].to_vec(), None),
        (
            "a negative length",
            vec![0xff; 64],
            Some("negative IPC metadata length -1"),
        ),
        (
            "a 2 GiB length",
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            Some("IPC metadata length 2147483647 exceeds the limit"),
        ),
        (
            "text",
            b"hello, not arrow".to_vec(),
            Some("not an Arrow IPC stream (bad continuation marker 68656c6c)"),
        ),
        (
            "a garbage flatbuffer",
            bad_flatbuffer,
            Some("invalid IPC message flatbuffer"),
        ),
    ];
    for (what, input, refusal) in cases {
        let answers = send_raw(b, &input);
        match refusal {
            None => assert!(answers.is_empty(), "{what}: {answers:?}"),
            Some(says) => {
                let e = protocol_error(&answers);
                assert!(e.message.contains(says), "{what}: {e:?}");
            }
        }
    }
    let stderr = b.endpoint.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the worker panicked: {stderr}"
    );
    echo(&mut b.connect(), "still serving");
}

/// Requests that are framed correctly but cannot be decoded are answered with a
/// `ProtocolError`, and the next request on the same connection is served.
fn undecodable_requests_keep_the_connection(b: &mut Backend) {
    // The reference's `non_utf8_method` probe: the method name is not UTF-8, which fails
    // flatbuffer verification although the message is framed correctly. Same length as
    // "add_floats", then patched in place.
    let batch = floats(false, Some(1.25));
    let mut non_utf8 = request(&batch.schema(), &batch, "zz_nonutf8");
    let at = non_utf8
        .windows(10)
        .position(|w| w == b"zz_nonutf8")
        .unwrap();
    non_utf8[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    // A null in a column the request schema declares non-nullable (what the reference
    // CLI sends for an omitted argument).
    let declared = floats(false, Some(1.0)).schema();
    let null_in_non_nullable = request(&declared, &floats(true, None), "add_floats");

    for (what, mut input) in [
        ("a non-UTF-8 method name", non_utf8),
        ("a null in a non-nullable column", null_in_non_nullable),
    ] {
        let valid = floats(false, Some(1.25));
        input.extend(request(&valid.schema(), &valid, "add_floats"));
        let answers = send_raw(b, &input);
        assert_eq!(answers.len(), 2, "{what}: {answers:?}");
        protocol_error(&answers[..1]);
        let sum = answers[1].as_ref().unwrap();
        let value = sum[0].column(0).as_primitive::<Float64Type>().value(0);
        assert_eq!(value, 3.75, "{what}");
    }
}

fn metadata(method: &str) -> Metadata {
    Metadata::new()
        .with(keys::METHOD, method)
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
        .with(keys::PROTOCOL, "ConformanceService")
        .with(keys::PROTOCOL_VERSION, "2.0.0")
}

/// Request bytes: the schema message of `schema`, then `batch`.
fn request(schema: &Schema, batch: &RecordBatch, method: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, schema);
    enc.batch(&mut out, batch, &metadata(method)).unwrap();
    enc.eos(&mut out);
    out
}

/// `add_floats` parameters `a` (nullable or not) and `b` = 2.5.
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

//! Replays the reference client's captured request bytes through our server and compares
//! every response stream with what the Python reference wrote for the same requests:
//! same number of streams, same schemas, same batch kinds and row counts, equal data
//! (except nested-IPC binary values, whose schema bytes legitimately differ), and the
//! same error type, code and kind for every EXCEPTION batch. Because each capture keeps
//! going after its errors, this also proves the connection stays in sync.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use vgi_rpc::client::rpc_error_from_metadata;
use vgi_rpc::server::serve_connection;
use vgi_rpc::wire::{self, BatchKind, Limits, Metadata, StreamItem};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/protocol");

struct Stream {
    schema: SchemaRef,
    batches: Vec<(RecordBatch, Metadata)>,
}

fn split_streams(bytes: &[u8]) -> Vec<Stream> {
    let limits = Limits::default();
    let mut cursor = bytes;
    let mut streams = Vec::new();
    while !cursor.is_empty() {
        let mut decoder = wire::read_stream_start(&mut cursor, &limits).unwrap();
        let mut batches = Vec::new();
        while let StreamItem::Batch(b, md) =
            wire::read_stream_item(&mut cursor, &mut decoder, &limits).unwrap()
        {
            batches.push((b, md));
        }
        streams.push(Stream {
            schema: decoder.schema().clone(),
            batches,
        });
    }
    streams
}

fn serve(requests: &[u8]) -> Vec<u8> {
    let server = vgi_rpc_conformance::server_builder().build().unwrap();
    let mut out = Vec::new();
    serve_connection(&server, requests, &mut out).unwrap();
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn has_binary(schema: &SchemaRef) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Binary))
}

fn compare(capture: &str) {
    let ours = split_streams(&serve(&fixture(&format!("{capture}.c2s.bin"))));
    let theirs = split_streams(&fixture(&format!("{capture}.s2c.bin")));
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{capture}: number of response streams"
    );
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let ctx = format!("{capture} stream #{i}");
        assert_eq!(o.schema.fields(), t.schema.fields(), "{ctx}: schema");
        assert_eq!(o.batches.len(), t.batches.len(), "{ctx}: batch count");
        for (j, ((ob, omd), (tb, tmd))) in o.batches.iter().zip(&t.batches).enumerate() {
            let ctx = format!("{ctx} batch {j}");
            let kind = BatchKind::of(tb, tmd);
            assert_eq!(
                BatchKind::of(ob, omd),
                kind,
                "{ctx}: kind ({omd:?} vs {tmd:?})"
            );
            assert_eq!(ob.num_rows(), tb.num_rows(), "{ctx}: rows");
            match kind {
                BatchKind::Exception => {
                    let (oe, te) = (rpc_error_from_metadata(omd), rpc_error_from_metadata(tmd));
                    assert_eq!(oe.error_type, te.error_type, "{ctx}: error type");
                    assert_eq!(oe.code, te.code, "{ctx}: error code");
                    assert_eq!(oe.kind, te.kind, "{ctx}: error kind");
                    assert_eq!(oe.details, te.details, "{ctx}: error details");
                    assert_eq!(oe.message, te.message, "{ctx}: error message");
                }
                BatchKind::Log => {
                    for key in [
                        "vgi_rpc.log_level",
                        "vgi_rpc.log_message",
                        "vgi_rpc.log_extra",
                    ] {
                        assert_eq!(omd.get(key), tmd.get(key), "{ctx}: {key}");
                    }
                }
                _ if has_binary(&t.schema) => {}
                _ => {
                    assert_eq!(ob, tb, "{ctx}: data");
                    let keys =
                        |md: &Metadata| md.iter().map(|(k, _)| k.to_owned()).collect::<Vec<_>>();
                    assert_eq!(keys(omd), keys(tmd), "{ctx}: metadata keys");
                }
            }
        }
    }
}

#[test]
fn unary_capture_matches_reference() {
    compare("pipe_unary");
}

#[test]
fn stream_capture_matches_reference() {
    compare("pipe_streams");
}

#[test]
fn reflection_and_error_capture_matches_reference() {
    compare("pipe_reflection_errors");
}

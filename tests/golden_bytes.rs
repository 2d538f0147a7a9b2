//! Golden byte tests: our encoder against captures from the Python reference.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgi_rpc::wire::{Metadata, StreamEncoder};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
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
    let batch = RecordBatch::try_new_with_options(schema.clone(), vec![], &RecordBatchOptions::new().with_row_count(Some(0))).unwrap();
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

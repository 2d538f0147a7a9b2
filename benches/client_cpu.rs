//! The client's CPU work per call, without I/O: encoding a request and decoding a void
//! response from memory. Transport round trips (pipe, unix, tcp, against raw baselines
//! and the Python reference, pinned per placement) live in the `vgi-rpc-bench` package:
//! `cargo bench -p vgi-rpc-bench --bench transports`.
//!
//! `cargo bench --bench client_cpu`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/client_support/mod.rs"]
mod client_support;

use arrow_schema::Schema;
use criterion::{Criterion, criterion_group, criterion_main};
use vgi_rpc::private::RequestEncoder;
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem};

use client_support::{no_params, primary};

/// The client's CPU work per call without any I/O: encoding the request, and decoding a
/// void response (empty-schema stream with one zero-column batch) from memory.
fn client_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_cpu");
    let params = no_params();
    let target = primary();
    let empty = Metadata::new();
    group.bench_function("encode_request_oneshot", |b| {
        b.iter(|| {
            RequestEncoder::new()
                .encode(&target, "void_noop", &params, &empty, None)
                .unwrap()
                .len()
        })
    });
    let mut reused = RequestEncoder::new();
    group.bench_function("encode_request_reused", |b| {
        b.iter(|| {
            reused
                .encode(&target, "void_noop", &params, &empty, None)
                .unwrap()
                .len()
        })
    });
    let mut response = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut response, &Schema::empty());
    encoder.batch(&mut response, &params, &empty).unwrap();
    encoder.eos(&mut response);
    let limits = Limits::default();
    group.bench_function("decode_void_response", |b| {
        b.iter(|| {
            let mut cursor = &response[..];
            let mut decoder = wire::read_stream_start(&mut cursor, &limits).unwrap();
            while let StreamItem::Batch(..) =
                wire::read_stream_item(&mut cursor, &mut decoder, &limits).unwrap()
            {}
        })
    });
    group.finish();
}

criterion_group!(benches, client_cpu);
criterion_main!(benches);

//! The client's CPU work per call, without I/O: encoding a request and decoding a void
//! response from memory. Transport round trips (pipe, unix, tcp, against raw baselines
//! and the Python reference, pinned per placement) live in the `vgi-rpc-bench` package:
//! `cargo bench -p vgi-rpc-bench --bench transports`.
//!
//! Also the price of checks and logging on the client's read path: decoding a 3 MB
//! utf8-heavy batch at each [`Validation`] level, and a void call's encode + decode with no
//! `tracing` subscriber, with one installed but `vgi_rpc::wire` disabled, and enabled.
//!
//! `cargo bench --bench client_cpu`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/client_support/mod.rs"]
mod client_support;

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::Schema;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use vgi_rpc::private::RequestEncoder;
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem, Validation};

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

/// One void call's client work: encode the request, decode the answer.
fn void_call(encoder: &mut RequestEncoder, response: &[u8], limits: &Limits) -> usize {
    let params = no_params();
    let request = encoder
        .encode(&primary(), "void_noop", &params, &Metadata::new(), None)
        .unwrap()
        .len();
    let mut cursor = response;
    let mut decoder = wire::read_stream_start(&mut cursor, limits).unwrap();
    while let StreamItem::Batch(..) =
        wire::read_stream_item(&mut cursor, &mut decoder, limits).unwrap()
    {}
    request
}

/// The void call with no subscriber, a subscriber whose filter disables
/// `vgi_rpc::wire`, and one that enables it (events go to a sink).
fn wire_logging(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire_logging");
    let mut response = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut response, &Schema::empty());
    encoder
        .batch(&mut response, &no_params(), &Metadata::new())
        .unwrap();
    encoder.eos(&mut response);
    let limits = Limits::default();
    let mut requests = RequestEncoder::new();
    group.bench_function("void_call/no_subscriber", |b| {
        b.iter(|| void_call(&mut requests, &response, &limits))
    });
    for (name, level) in [
        ("void_call/subscriber_wire_off", LevelFilter::OFF),
        ("void_call/subscriber_wire_debug", LevelFilter::DEBUG),
    ] {
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_ansi(false),
            )
            .with(Targets::new().with_target(wire::trace::TARGET, level));
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function(name, |b| {
                b.iter(|| void_call(&mut requests, &response, &limits))
            });
        });
    }
    group.finish();
}

/// A 3 MB batch of short strings (plus an int64 column), as one IPC stream.
fn utf8_heavy_stream() -> Vec<u8> {
    let rows = 100_000;
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("row-{i:06}-ünïcode-text")),
    ));
    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let batch = RecordBatch::try_from_iter([("text", text), ("n", ints)]).unwrap();
    wire::encode_stream(&batch.schema(), &[batch]).unwrap()
}

/// Decoding the utf8-heavy batch at each validation level.
fn validation_levels(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_3mb_utf8");
    let bytes = utf8_heavy_stream();
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    for level in [Validation::Full, Validation::Standard, Validation::None] {
        // SAFETY: the stream is ours and well-formed.
        #[allow(unsafe_code)]
        let limits = unsafe { Limits::default().with_validation(level) };
        group.bench_function(level.as_str(), |b| {
            b.iter(|| {
                let mut cursor = &bytes[..];
                let mut decoder = wire::read_stream_start(&mut cursor, &limits).unwrap();
                match wire::read_stream_item(&mut cursor, &mut decoder, &limits).unwrap() {
                    StreamItem::Batch(batch, _) => batch.num_rows(),
                    StreamItem::End => 0,
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, client_cpu, wire_logging, validation_levels);
criterion_main!(benches);

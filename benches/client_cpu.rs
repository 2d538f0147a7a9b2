//! Unary round trip over a subprocess pipe: our [`Client`] calling the conformance
//! worker's `void_noop`, beside a raw 1-byte ping-pong with a `cat` child measured in the
//! same run, so the ratio (ours / raw) shows what the framework adds to the pipe's cost.
//!
//! Placement dominates on small machines: waking a process on another core costs tens of
//! microseconds. Run the bench pinned, e.g.
//! `cargo bench --bench client_pipe --no-run` then
//! `taskset -c 0 target/release/deps/client_pipe-* --bench`: children inherit the
//! affinity (`same_core`). The `cpu1` variants start the child under `taskset -c 1`, so
//! client and worker sit on different cores.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/client_support/mod.rs"]
mod client_support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use arrow_schema::Schema;
use criterion::{Criterion, criterion_group, criterion_main};
use vgi_rpc::client::{CallOptions, Client, RequestEncoder, encode_request};
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem};

use client_support::{no_params, our_worker, primary};

/// `(label, command prefix)`: the child inherits our affinity, or is moved to CPU 1.
const PLACEMENTS: [(&str, &[&str]); 2] = [("same_core", &[]), ("cpu1", &["taskset", "-c", "1"])];

fn raw_pipe(c: &mut Criterion) {
    let mut group = c.benchmark_group("raw_pipe_pingpong_1byte");
    for (label, prefix) in PLACEMENTS {
        let argv: Vec<&str> = prefix.iter().copied().chain(["cat"]).collect();
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut to = child.stdin.take().unwrap();
        let mut from = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        group.bench_function(label, |b| {
            b.iter(|| {
                to.write_all(b"x").unwrap();
                from.read_exact(&mut byte).unwrap();
            })
        });
        drop(to);
        let _ = child.wait();
    }
    group.finish();
}

fn unary_noop(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_unary_void_noop");
    let worker = our_worker();
    let params = no_params();
    let options = CallOptions::default();
    for (label, prefix) in PLACEMENTS {
        let address = format!("exec:{} {} --pipe", prefix.join(" "), worker.display());
        let mut client = Client::connect(&address).unwrap();
        group.bench_function(label, |b| {
            b.iter(|| {
                client
                    .call(&primary(), "void_noop", &params, &options)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The client's CPU work per call without any I/O: encoding the request, and decoding a
/// void response (empty-schema stream with one zero-column batch) from memory.
fn client_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_cpu");
    let params = no_params();
    let target = primary();
    let empty = Metadata::new();
    group.bench_function("encode_request_oneshot", |b| {
        b.iter(|| encode_request(&target, "void_noop", &params, &empty).unwrap())
    });
    let mut reused = RequestEncoder::new();
    group.bench_function("encode_request_reused", |b| {
        b.iter(|| {
            reused
                .encode(&target, "void_noop", &params, &empty)
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

criterion_group!(benches, client_cpu, raw_pipe, unary_noop);
criterion_main!(benches);

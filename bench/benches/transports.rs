//! Criterion matrix over every transport in [`TRANSPORTS`] and both placements
//! (client and worker on one core, or on two; `VGI_BENCH_PLACEMENT=same|split` runs one):
//!
//! - `baseline`: raw 1-byte ping-pong and raw bulk bytes over the same transport
//!   (against `vgi-rpc-bench raw-server`), memcpy of the same bytes;
//! - `unary`: `void_noop`, `echo_string` (small args), `echo_bytes` 1 MiB;
//! - `producer`: `produce_mixed` (int64 + float64 + utf8) from 1-row to ~3 MB batches;
//! - `exchange`: one `exchange_scale` round trip;
//! - `large`: ~3 MB batches (int64 + float64 + utf8) on every transport, produced
//!   (`produce_mixed`) and echoed (`exchange_mixed`, bytes counted both ways), beside a
//!   memcpy of the same bytes in the same run and placement; on `exec:` rows also with
//!   both ends validating at `standard` (`*-standard`, the opt-in for a trusted worker);
//! - `concurrent`: 1, 4 and 16 clients calling `void_noop` (calls/s);
//! - `python`: the same conformance calls against the Python reference worker, when
//!   its venv exists (`VGI_VENV`, default `target/py-venv` of this workspace).
//!
//! The `shm` transport is the pipe with a 64 MiB shared-memory segment beside it (its
//! byte-stream baselines are the pipe's). Each benchmark id is
//! `<placement>/<group>/<transport>/...` (`<placement>/large/<what>/<transport>`);
//! compare only ids of the same placement. Workers start outside the timed loops. The HTML report (with plots)
//! lands in `target/criterion/report/index.html`.
//!
//! `cargo bench -p vgi-rpc-bench --bench transports [-- FILTER]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use vgi_rpc::client::Client;
use vgi_rpc::wire::Validation;
use vgi_rpc_bench::placement::{self, Placement};
use vgi_rpc_bench::raw::{Baseline as _, READ_CHUNK, memcpy};
use vgi_rpc_bench::scenario::{self, ExchangeSession, MixedExchange, Params};
use vgi_rpc_bench::service::MIXED_ROW_BYTES;
use vgi_rpc_bench::transport::{self, TRANSPORTS, Transport, WorkerProgram};

/// Producer batch sizes in bytes of payload (1 row ... ~3 MB).
const BATCH_SIZES: [usize; 5] = [MIXED_ROW_BYTES, 1 << 10, 64 << 10, 1 << 20, 3_000_000];

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vgi-rpc-bench"))
}

/// Batches per producer iteration: about 8 MB, at least 1, at most 1000 batches.
fn batches_for(rows: usize) -> usize {
    (8_000_000 / (rows * MIXED_ROW_BYTES)).clamp(1, 1000)
}

fn baseline(c: &mut Criterion, place: &Placement, t: &Transport) {
    let end = transport::start(&transport::raw_server(exe()), t, place).unwrap();
    let mut stream = end.open_raw().unwrap();
    let mut g = c.benchmark_group(format!("{}/baseline/{}", place.name, t.name));
    g.throughput(Throughput::Elements(1));
    g.bench_function("pingpong-1B", |b| b.iter(|| stream.ping().unwrap()));
    let mut buf = vec![0u8; READ_CHUNK];
    let src = vec![1u8; 3_000_000];
    let mut dst = vec![0u8; 3_000_000];
    for size in BATCH_SIZES {
        let rows = scenario::mixed_rows_for(size);
        let total = (rows * batches_for(rows) * MIXED_ROW_BYTES) as u64;
        g.throughput(Throughput::Bytes(total));
        g.bench_with_input(BenchmarkId::new("raw-bytes", size), &total, |b, &n| {
            b.iter(|| stream.bulk(n, &mut buf).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("memcpy", size), &total, |b, &n| {
            let chunk = (rows * MIXED_ROW_BYTES).min(src.len());
            b.iter(|| memcpy(&src[..chunk], &mut dst[..chunk], n))
        });
    }
    g.finish();
}

fn ours(c: &mut Criterion, place: &Placement, t: &Transport) {
    let end = transport::start(&transport::rust_worker(exe()), t, place).unwrap();
    let p = Params::new().unwrap();
    let mut client = end.connect().unwrap();

    let mut g = c.benchmark_group(format!("{}/unary/{}", place.name, t.name));
    g.throughput(Throughput::Elements(1));
    g.bench_function("noop", |b| {
        b.iter(|| scenario::noop(&mut client, &p).unwrap())
    });
    g.bench_function("small-args", |b| {
        b.iter(|| scenario::small_args(&mut client, &p).unwrap())
    });
    g.throughput(Throughput::Bytes(2 * scenario::ECHO_BYTES as u64));
    g.bench_function("echo-1MiB", |b| {
        b.iter(|| scenario::echo_mib(&mut client, &p).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{}/producer/{}", place.name, t.name));
    for size in BATCH_SIZES {
        let rows = scenario::mixed_rows_for(size);
        let batches = batches_for(rows);
        g.throughput(Throughput::Bytes((rows * batches * MIXED_ROW_BYTES) as u64));
        g.bench_with_input(BenchmarkId::new("mixed", size), &rows, |b, &rows| {
            b.iter(|| scenario::produce_mixed(&mut client, rows, batches).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("{}/exchange/{}", place.name, t.name));
    g.throughput(Throughput::Elements(1));
    let mut ex = ExchangeSession::open(&mut client, &p).unwrap();
    g.bench_function("round-trip", |b| b.iter(|| ex.round_trip().unwrap()));
    ex.close().unwrap();
    g.finish();
    drop(client);

    let mut g = c.benchmark_group(format!("{}/concurrent/{}", place.name, t.name));
    for n in [1usize, 4, 16] {
        let clients: Vec<Mutex<Client>> =
            (0..n).map(|_| Mutex::new(end.connect().unwrap())).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("noop-clients", n), &n, |b, &n| {
            b.iter_custom(|iters| concurrent(&clients, &p, iters, n))
        });
    }
    g.finish();
}

/// `n` clients each make `iters` calls; the time until the last one finishes.
fn concurrent(clients: &[Mutex<Client>], p: &Params, iters: u64, n: usize) -> Duration {
    let barrier = Barrier::new(n + 1);
    std::thread::scope(|s| {
        for client in clients {
            let barrier = &barrier;
            s.spawn(move || {
                let mut client = client.lock().unwrap();
                barrier.wait();
                for _ in 0..iters {
                    scenario::noop(&mut client, p).unwrap();
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins every client thread.
        start
    })
    .elapsed()
}

fn python(c: &mut Criterion, place: &Placement, t: &Transport, py: &WorkerProgram) {
    let p = Params::new().unwrap();
    let mut g = c.benchmark_group(format!("{}/python-vs-rust/{}", place.name, t.name));
    let (rows, batches) = (131_072usize, 8usize);
    for program in [transport::rust_worker(exe()), py.clone()] {
        let end = transport::start(&program, t, place).unwrap();
        let mut client = end.connect().unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{}/noop", program.label), |b| {
            b.iter(|| scenario::noop(&mut client, &p).unwrap())
        });
        g.throughput(Throughput::Bytes((rows * batches * 8) as u64));
        g.bench_function(
            format!("{}/produce_large_batches-1MiB", program.label),
            |b| b.iter(|| scenario::produce_int64(&mut client, rows, batches).unwrap()),
        );
    }
    g.finish();
}

/// Batch size of the `large` group.
const LARGE_BATCH: usize = 3_000_000;
/// Batches per `large` producer iteration, round trips per `large` exchange iteration.
const LARGE_BATCHES: usize = 8;

/// ~3 MB batches on every transport beside a memcpy of the same bytes, one group per
/// placement so they read side by side.
fn large(c: &mut Criterion, place: &Placement) {
    let rows = scenario::mixed_rows_for(LARGE_BATCH);
    let batch = (rows * MIXED_ROW_BYTES) as u64;
    let mut g = c.benchmark_group(format!("{}/large", place.name));
    let src = vec![1u8; batch as usize];
    let mut dst = vec![0u8; batch as usize];
    g.throughput(Throughput::Bytes(batch * LARGE_BATCHES as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| memcpy(&src, &mut dst, batch * LARGE_BATCHES as u64))
    });
    for t in TRANSPORTS {
        let end = transport::start(&transport::rust_worker(exe()), t, place).unwrap();
        large_rows(&mut g, "", &mut end.connect().unwrap(), t, rows);
        if !t.announced {
            let level = Validation::Standard;
            let worker = transport::rust_worker_at(exe(), level);
            let end = transport::start(&worker, t, place).unwrap();
            let mut client = end.connect_with(transport::trusted_options(level)).unwrap();
            large_rows(&mut g, "-standard", &mut client, t, rows);
        }
    }
    g.finish();
}

/// `producer{suffix}/<t>` and `exchange{suffix}/<t>` of the `large` group on `client`.
fn large_rows(
    g: &mut BenchmarkGroup<'_, WallTime>,
    suffix: &str,
    client: &mut Client,
    t: &Transport,
    rows: usize,
) {
    let batch = (rows * MIXED_ROW_BYTES) as u64;
    g.throughput(Throughput::Bytes(batch * LARGE_BATCHES as u64));
    g.bench_function(BenchmarkId::new(format!("producer{suffix}"), t.name), |b| {
        b.iter(|| scenario::produce_mixed(client, rows, LARGE_BATCHES).unwrap())
    });
    g.throughput(Throughput::Bytes(2 * batch * LARGE_BATCHES as u64));
    let mut ex = MixedExchange::open(client, rows).unwrap();
    g.bench_function(BenchmarkId::new(format!("exchange{suffix}"), t.name), |b| {
        b.iter(|| {
            for _ in 0..LARGE_BATCHES {
                ex.round_trip().unwrap();
            }
        })
    });
    ex.close().unwrap();
    assert_eq!(
        client.side_channel().is_some(),
        t.shm.is_some(),
        "{}: shared memory in use",
        t.name
    );
}

fn matrix(c: &mut Criterion) {
    let py = transport::python_worker();
    if py.is_none() {
        eprintln!("Python reference venv not found (set VGI_VENV): skipping python-vs-rust");
    }
    for place in placement::selected() {
        placement::pin_current_thread(place.client).unwrap();
        large(c, &place);
        for t in TRANSPORTS {
            // A shared-memory transport's byte stream is another row's (the pipe's).
            if t.shm.is_none() {
                baseline(c, &place, t);
            }
            ours(c, &place, t);
            if let Some(py) = &py {
                python(c, &place, t, py);
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = matrix
}
criterion_main!(benches);

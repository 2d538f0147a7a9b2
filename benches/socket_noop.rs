//! Unary no-op round trip over Unix and TCP sockets, beside a raw 1-byte ping-pong over
//! the same socket type in the same run, so our overhead reads as a ratio.
//!
//! Placement decides latency on small machines (waking another core costs tens of µs),
//! so every thread is pinned: `VGI_BENCH_PLACEMENT=same` (default) puts client and
//! server on core 0, `split` puts the client on core 0 and the server on core 1. The
//! placement is part of each benchmark's name.
//!
//! `cargo bench --bench socket_noop`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;

use arrow_array::RecordBatch;
use criterion::{Criterion, criterion_group, criterion_main};
use rustix::thread::{CpuSet, sched_setaffinity};
use vgi_rpc::client::{Connection, Target};
use vgi_rpc::prelude::*;
use vgi_rpc::transport::{
    ServeOptions, Shutdown, TcpSocketListener, UnixSocketListener, serve_listener,
};

#[vgi_rpc::service(protocol = "Bench", version = "1.0.0")]
pub trait Bench: Send + Sync + 'static {
    /// Does nothing.
    fn noop(&self) -> Result<()>;
}

struct BenchImpl;

impl Bench for BenchImpl {
    fn noop(&self) -> Result<()> {
        Ok(())
    }
}

/// Which cores the client and the server run on.
#[derive(Clone, Copy)]
struct Placement {
    name: &'static str,
    client: usize,
    server: usize,
}

fn placement() -> Placement {
    match std::env::var("VGI_BENCH_PLACEMENT").as_deref() {
        Ok("split") => Placement {
            name: "different-cores",
            client: 0,
            server: 1,
        },
        _ => Placement {
            name: "same-core",
            client: 0,
            server: 0,
        },
    }
}

fn pin(core: usize) {
    let mut set = CpuSet::new();
    set.set(core);
    sched_setaffinity(None, &set).expect("pinning a thread");
}

/// Runs `serve` on a pinned thread (connection threads it spawns inherit the pin).
fn spawn_pinned(core: usize, serve: impl FnOnce() + Send + 'static) {
    thread::spawn(move || {
        pin(core);
        serve();
    });
}

fn echo_bytes(mut stream: impl Read + Write) {
    let mut byte = [0u8; 1];
    while stream.read_exact(&mut byte).is_ok() {
        if stream.write_all(&byte).is_err() {
            return;
        }
    }
}

fn ping(stream: &mut (impl Read + Write)) {
    let mut byte = [7u8; 1];
    stream.write_all(&byte).unwrap();
    stream.read_exact(&mut byte).unwrap();
}

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vgi-bench-{}-{name}.sock", std::process::id()))
}

fn server() -> Server {
    Server::builder()
        .service(BenchServer::new(BenchImpl))
        .build()
        .unwrap()
}

fn serve_forever<L: vgi_rpc::transport::Listener + Send + 'static>(core: usize, listener: L) {
    spawn_pinned(core, move || {
        let shutdown = Shutdown::new().unwrap();
        let options = ServeOptions::default().threaded(true);
        serve_listener(&server(), &listener, &options, &shutdown).unwrap();
    });
}

fn noop_loop<R: Read, W: Write>(conn: &mut Connection<R, W>, target: &Target, empty: &RecordBatch) {
    let result = conn.call(target, "noop", empty).unwrap();
    assert!(result.batch.is_none());
}

fn benches(c: &mut Criterion) {
    let place = placement();
    pin(place.client);
    let target = Target::new("Bench", Some("1.0.0"));
    let empty = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
    let mut group = c.benchmark_group(format!("socket/{}", place.name));

    // Unix: raw ping-pong, then the no-op call.
    let raw_path = socket_path("raw");
    let _ = std::fs::remove_file(&raw_path);
    let raw = UnixListener::bind(&raw_path).unwrap();
    spawn_pinned(place.server, move || echo_bytes(raw.accept().unwrap().0));
    let mut raw_client = UnixStream::connect(&raw_path).unwrap();
    group.bench_function("unix/raw-pingpong-1B", |b| b.iter(|| ping(&mut raw_client)));

    let path = socket_path("noop");
    serve_forever(place.server, UnixSocketListener::bind(&path).unwrap());
    let stream = UnixStream::connect(&path).unwrap();
    let mut conn = Connection::new(stream.try_clone().unwrap(), stream);
    group.bench_function("unix/noop", |b| {
        b.iter(|| noop_loop(&mut conn, &target, &empty))
    });

    // TCP over loopback, Nagle off on both ends.
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let raw_addr = raw.local_addr().unwrap();
    spawn_pinned(place.server, move || {
        let (stream, _) = raw.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        echo_bytes(stream);
    });
    let mut raw_client = TcpStream::connect(raw_addr).unwrap();
    raw_client.set_nodelay(true).unwrap();
    group.bench_function("tcp/raw-pingpong-1B", |b| b.iter(|| ping(&mut raw_client)));

    let listener = TcpSocketListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    serve_forever(place.server, listener);
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut conn = Connection::new(stream.try_clone().unwrap(), stream);
    group.bench_function("tcp/noop", |b| {
        b.iter(|| noop_loop(&mut conn, &target, &empty))
    });
    group.finish();
    let _ = std::fs::remove_file(&raw_path);
}

criterion_group!(socket, benches);
criterion_main!(socket);

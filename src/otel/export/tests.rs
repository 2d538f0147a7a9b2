//! The export thread: batching, flushing, shutting down, and a slow exporter.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Instant;

use opentelemetry::trace::{SpanKind, Status};

use super::testing::Collect;
use super::thread::Batching;
use super::*;

fn root(n: usize) -> impl Iterator<Item = Finished> {
    (0..n).map(|_| Finished {
        name: "vgi_rpc/noop".into(),
        kind: SpanKind::Server,
        parent: Context::new(),
        identity: None,
        start: std::time::SystemTime::now(),
        end: std::time::SystemTime::now(),
        attributes: Vec::new(),
        events: Vec::new(),
        status: Status::Ok,
    })
}

/// A collecting export with `batching`.
fn collecting(batching: Batching) -> (Collect, Arc<SpanExport>) {
    let collect = Collect::default();
    let export = SpanExport::start_with(
        collect.clone(),
        &Resource::builder_empty().build(),
        batching,
    );
    (collect, export)
}

/// How many spans `collect` holds once it holds `n` (or after 10 s).
fn exported_once(collect: &Collect, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while exported(collect) != n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    exported(collect)
}

fn exported(collect: &Collect) -> usize {
    collect.0.lock().unwrap().len()
}

/// An exporter that waits for a go-ahead before each batch and reports batch sizes.
#[derive(Debug)]
struct Gated {
    go: Mutex<mpsc::Receiver<()>>,
    sizes: mpsc::Sender<usize>,
}

impl SpanExporter for Gated {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let _ = self.go.lock().unwrap().recv();
        let _ = self.sizes.send(batch.len());
        Ok(())
    }
}

#[test]
fn spans_gather_into_batches_and_a_flush_exports_the_rest() {
    let (collect, export) = collecting(Batching {
        delay: Duration::from_secs(3600),
        max_batch: 100,
        max_queue: 10_000,
    });
    export.record(root(250));
    // Two full batches go at once; the other 50 wait for the delay or a flush.
    assert_eq!(exported_once(&collect, 200), 200);
    export.flush();
    assert_eq!(exported(&collect), 250);
    export.shutdown();
    export.record(root(3));
    assert_eq!(exported(&collect), 250);
    assert_eq!(
        export.dropped(),
        3,
        "after shutdown, spans are dropped and counted"
    );
}

#[test]
fn the_delay_exports_a_partial_batch() {
    let (collect, export) = collecting(Batching {
        delay: Duration::from_millis(20),
        max_batch: 512,
        max_queue: 2048,
    });
    export.record(root(7));
    assert_eq!(exported_once(&collect, 7), 7);
}

#[test]
fn a_slow_exporter_drops_what_overflows_the_queue_and_never_blocks_the_recorder() {
    let (go, gate) = mpsc::channel();
    let (sizes, sized) = mpsc::channel();
    let exporter = Gated {
        go: Mutex::new(gate),
        sizes,
    };
    let batching = Batching {
        delay: Duration::from_secs(3600),
        max_batch: 10,
        max_queue: 30,
    };
    let export = SpanExport::start_with(exporter, &Resource::builder_empty().build(), batching);
    // The first batch reaches the exporter, which holds it: the thread is stuck.
    export.record(root(10));
    std::thread::sleep(Duration::from_millis(50));
    // 30 more fit in the queue; the next 25 do not, and recording returns at once.
    for _ in 0..3 {
        export.record(root(10));
    }
    let started = Instant::now();
    export.record(root(25));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(export.dropped(), 25);
    for _ in 0..4 {
        go.send(()).unwrap();
    }
    let total: usize = (0..4)
        .map(|_| sized.recv_timeout(Duration::from_secs(10)).unwrap())
        .sum();
    assert_eq!(total, 40, "everything queued was exported");
    drop(go);
    export.shutdown();
}

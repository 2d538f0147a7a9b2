//! Graceful shutdown of an in-process socket server, made deterministic with a slow
//! producer: the batch being produced when shutdown fires is delivered whole, the stream
//! then ends, idle connections are closed, the accept loop returns within the grace
//! period and dropping the listener removes the socket file.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use vgi_rpc::Server;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::prelude::*;
use vgi_rpc::transport::{ServeOptions, Shutdown, UnixSocketListener, serve_listener};

#[vgi_rpc::service(protocol = "Slow", version = "1.0.0")]
pub trait Slow: Send + Sync + 'static {
    /// Counts up forever, taking `delay_ms` per batch.
    fn crawl(&self, delay_ms: i64) -> Result<Producer<Crawl>>;
    /// Returns its argument.
    fn echo(&self, value: i64) -> Result<i64>;
}

#[derive(Debug, ArrowRecord)]
pub struct Step {
    pub n: i64,
}

pub struct Crawl {
    delay: Duration,
    n: i64,
}

impl ProducerState for Crawl {
    fn output_schema(&self) -> SchemaRef {
        Step::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        thread::sleep(self.delay);
        turn.emit_rows(vec![Step { n: self.n }])?;
        self.n += 1;
        Ok(())
    }
}

struct SlowImpl;

impl Slow for SlowImpl {
    fn crawl(&self, delay_ms: i64) -> Result<Producer<Crawl>> {
        Ok(Producer::new(Crawl {
            delay: Duration::from_millis(delay_ms.unsigned_abs()),
            n: 0,
        }))
    }

    fn echo(&self, value: i64) -> Result<i64> {
        Ok(value)
    }
}

fn one_int(name: &str, value: i64) -> RecordBatch {
    RecordBatch::try_from_iter([(name, Arc::new(Int64Array::from(vec![value])) as ArrayRef)])
        .unwrap()
}

fn connect(path: &std::path::Path) -> Client {
    let stream = UnixStream::connect(path).unwrap();
    let link = Link::new(stream.try_clone().unwrap(), stream);
    Client::from_link(link, ConnectOptions::default())
}

#[test]
fn shutdown_finishes_the_batch_in_flight_then_closes_everything() {
    let path = std::env::temp_dir().join(format!("vgi-shutdown-{}.sock", std::process::id()));
    let server = Server::builder()
        .service(SlowServer::new(SlowImpl))
        .build()
        .unwrap();
    let listener = UnixSocketListener::bind(&path).unwrap();
    let shutdown = Shutdown::new().unwrap();
    let options = ServeOptions::default()
        .threaded(true)
        .shutdown_grace(Duration::from_secs(5));
    let serving = {
        let shutdown = shutdown.clone();
        thread::spawn(move || {
            let result = serve_listener(&server, &listener, &options, &shutdown);
            drop(listener);
            result
        })
    };
    let target = Target::new("Slow", Some("1.0.0"));

    let mut idle = connect(&path);
    let echoed = idle
        .call(
            &target,
            "echo",
            &one_int("value", 7),
            &CallOptions::default(),
        )
        .unwrap();
    assert_eq!(
        echoed
            .batch
            .unwrap()
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        7
    );

    let mut conn = connect(&path);
    let mut stream = conn
        .open_stream(
            &target,
            "crawl",
            &one_int("delay_ms", 400),
            &CallOptions::default(),
        )
        .unwrap();
    let first = stream.tick().unwrap().unwrap();
    assert_eq!(first.column(0).as_primitive::<Int64Type>().value(0), 0);

    // Fire shutdown while the server sleeps inside the second batch.
    let trigger = {
        let shutdown = shutdown.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            shutdown.trigger();
        })
    };
    let started = Instant::now();
    let second = stream
        .tick()
        .unwrap()
        .expect("the batch in flight was lost");
    assert_eq!(second.column(0).as_primitive::<Int64Type>().value(0), 1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    trigger.join().unwrap();

    // The server no longer reads: the next tick fails instead of hanging.
    assert!(stream.tick().is_err());
    serving.join().unwrap().unwrap();
    assert!(!path.exists(), "socket file left behind");
    assert!(
        idle.call(
            &target,
            "echo",
            &one_int("value", 8),
            &CallOptions::default()
        )
        .is_err()
    );
}

//! The worker on every socket transport of the shared table, run for real: many
//! concurrent clients with mixed calls, a client dying mid-stream, the connection limit,
//! and SIGTERM during a stream. (Server-side behaviour of sockets; what a client sees on
//! every transport is the test matrix, `conformance/tests/matrix`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Client as VgiClient, ConnectOptions, Link, Target};
use vgi_rpc::transport::Address;
use vgi_rpc::{Error, ErrorCode};
use vgi_rpc_conformance::matrix::{Endpoint, TRANSPORTS, Transport, WorkerProgram};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
const CLIENTS: usize = 16;
const CALLS_PER_CLIENT: usize = 1000;

/// Our worker with `extra` flags on a socket transport of the shared table; killed (if
/// still running) on drop.
struct Worker {
    endpoint: Endpoint,
}

impl Worker {
    fn start(transport: &Transport, extra: &[&str]) -> Result<Worker> {
        let mut argv = vec![WORKER.to_owned()];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let endpoint = Endpoint::start(&WorkerProgram::new("ours", argv), transport)?;
        // The announcement names what the table's flags asked for.
        let flags = (transport.flags)(std::path::Path::new(""));
        match Address::parse(endpoint.address())? {
            Address::Unix(path) => ensure!(path.exists() && flags.iter().any(|f| f == "--unix")),
            Address::Tcp(host, port) => {
                ensure!(host == "127.0.0.1" && port != 0 && flags.iter().any(|f| f == "--tcp"))
            }
            other => bail!("{} announced {other}", transport.name),
        }
        Ok(Worker { endpoint })
    }

    fn connect(&self) -> Result<Box<dyn Socket>> {
        match Address::parse(self.endpoint.address())? {
            Address::Unix(path) => Ok(Box::new(UnixStream::connect(path)?)),
            Address::Tcp(host, port) => {
                let stream = TcpStream::connect((host.as_str(), port))?;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            other => bail!("not a socket address: {other}"),
        }
    }

    fn sigterm(&self) -> Result<()> {
        let pid = self.endpoint.pid().context("a socket worker")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        ensure!(status.success());
        Ok(())
    }

    /// Waits for the process to exit, failing after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.endpoint.try_wait()? {
                return Ok(status);
            }
            ensure!(
                start.elapsed() < limit,
                "worker still running after {limit:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The socket rows of the shared transport table.
fn socket_transports() -> impl Iterator<Item = &'static Transport> {
    TRANSPORTS.iter().filter(|t| t.announced)
}

/// A connected socket, either kind.
trait Socket: std::io::Read + std::io::Write + Send {
    fn duplicate(&self) -> Result<Box<dyn Socket>>;
    fn hang_up(&self);
}

impl Socket for UnixStream {
    fn duplicate(&self) -> Result<Box<dyn Socket>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn hang_up(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Socket for TcpStream {
    fn duplicate(&self) -> Result<Box<dyn Socket>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn hang_up(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

type Client = VgiClient;

fn client(worker: &Worker) -> Result<(Client, Box<dyn Socket>)> {
    let socket = worker.connect()?;
    let handle = socket.duplicate()?;
    let link = Link::new(socket.duplicate()?, socket);
    Ok((
        VgiClient::from_link(link, ConnectOptions::default()),
        handle,
    ))
}

fn target() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// A one-column batch; the column is nullable only where the schema says so.
fn batch_of(name: &str, column: ArrayRef, nullable: bool) -> Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter_with_nullable([(
        name, column, nullable,
    )])?)
}

fn batch(name: &str, column: ArrayRef) -> Result<RecordBatch> {
    batch_of(name, column, false)
}

/// One call of a rotating mix; checks the answer exactly.
fn mixed_call(conn: &mut Client, client: usize, i: usize) -> Result<()> {
    let tag = format!("c{client}-{i}");
    match i % 5 {
        0 => {
            let params = batch("value", Arc::new(StringArray::from(vec![tag.as_str()])))?;
            let result = conn.call(&target(), "echo_string", &params, &CallOptions::default())?;
            let got = result.batch.context("no result")?;
            ensure!(got.column(0).as_string::<i32>().value(0) == tag);
        }
        1 => {
            let count = (i % 7) as i64 + 1;
            let params = batch("count", Arc::new(Int64Array::from(vec![count])))?;
            let mut stream =
                conn.open_stream(&target(), "produce_n", &params, &CallOptions::default())?;
            let mut seen = Vec::new();
            while let Some(b) = stream.tick()? {
                seen.push(b.column(1).as_primitive::<Int64Type>().value(0));
            }
            let want: Vec<i64> = (0..count).map(|k| k * 10).collect();
            ensure!(seen == want, "{tag}: {seen:?}");
        }
        2 => {
            let factor = (client + 1) as f64;
            let params = batch("factor", Arc::new(Float64Array::from(vec![factor])))?;
            let mut stream = conn.open_stream(
                &target(),
                "exchange_scale",
                &params,
                &CallOptions::default(),
            )?;
            for k in 0..3 {
                let values = Float64Array::from(vec![k as f64, 1.5]);
                let input = batch_of("value", Arc::new(values), true)?;
                let out = stream.exchange(&input)?;
                let values = out.column(0).as_primitive::<Float64Type>();
                ensure!(values.values() == &[k as f64 * factor, 1.5 * factor][..]);
            }
            stream.close()?;
        }
        3 => {
            let params = batch("message", Arc::new(StringArray::from(vec![tag.as_str()])))?;
            match conn.call(
                &target(),
                "raise_value_error",
                &params,
                &CallOptions::default(),
            ) {
                Err(Error::Rpc(e)) => {
                    ensure!(
                        e.error_type == "ValueError" && e.message.contains(&tag),
                        "{e:?}"
                    )
                }
                other => bail!("{tag}: expected a ValueError, got {other:?}"),
            }
        }
        _ => {
            let value = (client * 1_000_000 + i) as i64;
            let params = batch("value", Arc::new(Int64Array::from(vec![value])))?;
            let got = conn
                .call(&target(), "echo_int", &params, &CallOptions::default())?
                .batch
                .context("none")?;
            ensure!(got.column(0).as_primitive::<Int64Type>().value(0) == value);
        }
    }
    Ok(())
}

/// 16 clients x 1,000 mixed calls, while other clients keep dying in the middle of
/// producer streams.
fn many_clients(worker: &Worker) -> Result<()> {
    let worker = Arc::new(worker);
    thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let worker = worker.clone();
                scope.spawn(move || -> Result<()> {
                    let (mut conn, _) = client(&worker)?;
                    for i in 0..CALLS_PER_CLIENT {
                        mixed_call(&mut conn, c, i)
                            .with_context(|| format!("client {c} call {i}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let vandal = scope.spawn(|| -> Result<()> {
            for _ in 0..20 {
                let (mut conn, socket) = client(&worker)?;
                let params = batch("count", Arc::new(Int64Array::from(vec![1_000_000_i64])))?;
                let mut stream =
                    conn.open_stream(&target(), "produce_n", &params, &CallOptions::default())?;
                for _ in 0..5 {
                    stream.tick()?;
                }
                socket.hang_up();
            }
            Ok(())
        });
        for handle in handles {
            handle.join().expect("client thread panicked")?;
        }
        vandal.join().expect("vandal thread panicked")
    })
}

#[test]
fn sixteen_concurrent_clients_over_every_socket_transport() -> Result<()> {
    for transport in socket_transports() {
        let worker = Worker::start(transport, &[])?;
        many_clients(&worker).with_context(|| transport.name)?;
    }
    Ok(())
}

fn echo_int(conn: &mut Client, value: i64) -> vgi_rpc::Result<i64> {
    let params = RecordBatch::try_from_iter([(
        "value",
        Arc::new(Int64Array::from(vec![value])) as ArrayRef,
    )])?;
    let result = conn.call(&target(), "echo_int", &params, &CallOptions::default())?;
    let batch = result.batch.ok_or(Error::protocol("no result"))?;
    Ok(batch.column(0).as_primitive::<Int64Type>().value(0))
}

fn connection_limit(worker: &Worker) -> Result<()> {
    let mut held = Vec::new();
    for k in 0..4 {
        let (mut conn, socket) = client(worker)?;
        ensure!(echo_int(&mut conn, k)? == k);
        held.push((conn, socket));
    }
    let (mut fifth, _) = client(worker)?;
    match echo_int(&mut fifth, 5) {
        Err(Error::Rpc(e)) => {
            ensure!(e.code == ErrorCode::ResourceExhausted, "{e:?}");
            ensure!(e.message.contains("limit of 4"), "{e:?}");
            ensure!(
                e.is_retryable(),
                "a connection-limit refusal should be retryable"
            );
        }
        other => bail!("the fifth client was not refused: {other:?}"),
    }
    // The four keep working; once one leaves, the fifth gets in.
    for (k, (conn, _)) in held.iter_mut().enumerate() {
        ensure!(echo_int(conn, k as i64 + 10)? == k as i64 + 10);
    }
    drop(held.pop());
    let start = Instant::now();
    loop {
        let (mut retry, _) = client(worker)?;
        match echo_int(&mut retry, 55) {
            Ok(v) => {
                ensure!(v == 55);
                return Ok(());
            }
            Err(e) if start.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => bail!("the fifth client was never served: {e}"),
        }
    }
}

#[test]
fn connection_limit_refuses_the_fifth_client_with_a_typed_error_on_every_socket_transport()
-> Result<()> {
    for transport in socket_transports() {
        let worker = Worker::start(transport, &["--max-connections", "4"])?;
        connection_limit(&worker).with_context(|| transport.name)?;
    }
    Ok(())
}

/// Unix-specific: the worker removes its socket file on the way out.
#[test]
fn sigterm_during_a_producer_stream_exits_zero_and_removes_the_socket() -> Result<()> {
    let unix = vgi_rpc_conformance::matrix::transport("unix").context("the unix row")?;
    let mut worker = Worker::start(unix, &[])?;
    let Address::Unix(path) = Address::parse(worker.endpoint.address())? else {
        bail!("not a unix address: {}", worker.endpoint.address());
    };
    ensure!(path.exists());
    let (mut idle, _) = client(&worker)?;
    ensure!(echo_int(&mut idle, 1)? == 1);
    let (mut conn, _) = client(&worker)?;
    let params = batch("count", Arc::new(Int64Array::from(vec![1_000_000_i64])))?;
    let mut stream = conn.open_stream(&target(), "produce_n", &params, &CallOptions::default())?;
    for k in 0..10 {
        let b = stream.tick()?.context("stream ended early")?;
        ensure!(b.column(1).as_primitive::<Int64Type>().value(0) == k * 10);
    }
    worker.sigterm()?;
    // Every batch that arrives is whole and in order; then the stream ends with an
    // error (not a hang) because the server stopped reading.
    let mut k = 10;
    let end = loop {
        match stream.tick() {
            Ok(Some(b)) => {
                ensure!(b.column(1).as_primitive::<Int64Type>().value(0) == k * 10);
                k += 1;
                ensure!(k < 1_000_000, "the stream ran to completion after SIGTERM");
            }
            Ok(None) => bail!("the stream ended as if complete"),
            Err(e) => break e,
        }
    };
    ensure!(
        !matches!(end, Error::Rpc(_)),
        "expected a transport end, got {end:?}"
    );
    let status = worker.wait_exit(Duration::from_secs(10))?;
    ensure!(status.success(), "worker exited with {status}");
    ensure!(!path.exists(), "socket file {} left behind", path.display());
    // The idle connection was closed too.
    ensure!(echo_int(&mut idle, 2).is_err());
    Ok(())
}

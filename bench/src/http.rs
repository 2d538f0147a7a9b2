//! HTTP rows (`vgi-rpc-bench http`): our client against our HTTP worker, the same calls
//! against the Python reference's HTTP worker, and the floor any HTTP framework pays —
//! a bare axum handler answered by a reqwest client doing the same body round trips on
//! the same kind of runtime (a multi-thread tokio server; a current-thread client runtime
//! in the caller's thread, as our client uses).
//!
//! Rows: unary noop (our `void_noop` request against a bare POST of the same body size,
//! echoed), 1 MiB echo (`echo_bytes` against a bare 1 MiB POST echoed), and producer
//! throughput (`produce_mixed` ~3 MB batches, one request per batch as HTTP streams go,
//! against a bare GET of the same bytes per request). Every server is pinned to the
//! placement's worker core, the client to its client core. Compression is off on both
//! sides of every row (the bare floor has none); our default (zstd) is a separate row.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use vgi_rpc::client::{Client, ConnectOptions};

use crate::measure::Latency;
use crate::placement::{Placement, pin_current_thread};
use crate::scenario::{self, Params};

/// Calls per latency figure.
const ITERS: usize = 2000;
/// Requests per producer-throughput run.
const PRODUCER_BATCHES: usize = 24;
/// Bytes per producer batch (and per bare bulk request).
const PRODUCER_BATCH_BYTES: usize = 3 << 20;
/// Connections whose best producer median counts, for the floor and for us alike:
/// loopback TCP settles per connection into a fast or a slow state (receive-buffer
/// autotuning; 2.1 against 3.6 GB/s for the floor here), so one connection would compare
/// whichever states the two happened to get.
const PRODUCER_CONNECTIONS: usize = 3;

/// A server process started for the rows, killed on drop.
struct Process {
    child: Child,
    port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(placement: &Placement, argv: &[String]) -> anyhow::Result<Process> {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(placement.worker.to_string()).args(argv);
    let (child, port) = vgi_rpc_conformance::announce::spawn_announcing(
        cmd.stdin(Stdio::null()).stderr(Stdio::null()),
    )
    .with_context(|| format!("starting {argv:?}"))?;
    Ok(Process { child, port })
}

/// One server's figures.
#[derive(Debug, Clone, Copy)]
pub struct HttpRow {
    /// Unary noop p50.
    pub noop: Duration,
    /// 1 MiB echo p50.
    pub echo: Duration,
    /// Producer (or bare bulk) GB/s, median of runs.
    pub producer: f64,
}

/// Runs the bare axum echo/bulk server (the `http-bare-server` subcommand): `POST /echo`
/// answers the body, `GET /bulk/N` answers N bytes. Prints `PORT:<n>`.
///
/// # Errors
/// Binding failed.
pub fn run_bare_server() -> anyhow::Result<()> {
    use axum::body::Bytes;
    use axum::extract::Path;
    use axum::routing::{get, post};
    let payload = Bytes::from(vec![7u8; 64 << 20]);
    let app = axum::Router::new()
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/bulk/{n}",
            get(move |Path(n): Path<usize>| {
                let payload = payload.clone();
                async move { payload.slice(..n.min(payload.len())) }
            }),
        );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("PORT:{}", listener.local_addr()?.port());
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

/// The bare floor: reqwest on a current-thread runtime against [`run_bare_server`].
fn bare_row(port: u16, noop_body: usize) -> anyhow::Result<HttpRow> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://127.0.0.1:{port}");
    let round_trip = |body: Vec<u8>| -> anyhow::Result<u64> {
        runtime.block_on(async {
            let answer = client
                .post(format!("{base}/echo"))
                .header("content-type", "application/vnd.apache.arrow.stream")
                .body(body)
                .send()
                .await?
                .bytes()
                .await?;
            anyhow::Ok(answer.len() as u64)
        })
    };
    let small_body = vec![1u8; noop_body];
    let noop = Latency::measure(50, ITERS, || round_trip(small_body.clone()).map(|_| ()))?;
    let mib = vec![7u8; 1 << 20];
    let echo = Latency::measure(5, ITERS / 10, || round_trip(mib.clone()).map(|_| ()))?;
    let mut producer = 0f64;
    for _ in 0..PRODUCER_CONNECTIONS {
        // A client of its own: a connection of its own (see `PRODUCER_CONNECTIONS`).
        let client = reqwest::Client::builder().no_proxy().build()?;
        producer = producer.max(crate::measure::median_throughput(7, || {
            let mut total = 0u64;
            for _ in 0..PRODUCER_BATCHES {
                total += runtime.block_on(async {
                    let answer = client
                        .get(format!("{base}/bulk/{PRODUCER_BATCH_BYTES}"))
                        .send()
                        .await?
                        .bytes()
                        .await?;
                    anyhow::Ok(answer.len() as u64)
                })?;
            }
            anyhow::Ok(total)
        })?);
    }
    Ok(HttpRow {
        noop: noop.quantile(0.5),
        echo: echo.quantile(0.5),
        producer,
    })
}

/// `drive-bare PORT N`: N bare noop round trips (the floor's client) against an
/// `http-bare-server` on `port`, a fixed load for `perf`/`strace` beside `drive`.
///
/// # Errors
/// A request failed.
pub fn drive_bare(port: u16, n: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://127.0.0.1:{port}/echo");
    let body = vec![1u8; noop_request_bytes()?];
    let start = std::time::Instant::now();
    for _ in 0..n {
        runtime.block_on(async {
            client
                .post(&url)
                .header("content-type", "application/vnd.apache.arrow.stream")
                .body(body.clone())
                .send()
                .await?
                .bytes()
                .await
        })?;
    }
    println!("bare noop x{n}: {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Our client against a vgi-rpc HTTP worker on `port`.
fn client_row(port: u16, options: ConnectOptions, mixed: bool) -> anyhow::Result<HttpRow> {
    let p = Params::new()?;
    let mut client = Client::connect_with(
        &format!("http://127.0.0.1:{port}").parse()?,
        options.clone(),
    )?;
    scenario::noop(&mut client, &p)?;
    let noop = Latency::measure(50, ITERS, || scenario::noop(&mut client, &p))?;
    let echo = Latency::measure(5, ITERS / 10, || {
        scenario::echo_mib(&mut client, &p).map(|_| ())
    })?;
    let rows = scenario::mixed_rows_for(PRODUCER_BATCH_BYTES);
    let mut producer = 0f64;
    // Our rows as the floor's: the best of a few connections. The reference (slow, and
    // not a producer target) gets one.
    for connection in 0..if mixed { PRODUCER_CONNECTIONS } else { 1 } {
        if connection > 0 {
            client = Client::connect_with(
                &format!("http://127.0.0.1:{port}").parse()?,
                options.clone(),
            )?;
        }
        producer = producer.max(crate::measure::median_throughput(7, || {
            if mixed {
                scenario::produce_mixed(&mut client, rows, PRODUCER_BATCHES)
            } else {
                // The reference has no `VgiBench`: its int64 producer, same bytes per batch.
                scenario::produce_int64(&mut client, PRODUCER_BATCH_BYTES / 8, PRODUCER_BATCHES)
            }
        })?);
    }
    Ok(HttpRow {
        noop: noop.quantile(0.5),
        echo: echo.quantile(0.5),
        producer,
    })
}

/// Client options with compression off both ways (the floor has none).
fn plain() -> ConnectOptions {
    let mut options = ConnectOptions::default();
    options.http.compression_level = None;
    options.http.accept_compressed = false;
    options
}

/// Measures every row on `placement`; `python` adds the reference.
///
/// # Errors
/// A server failed to start or a call failed.
pub fn measure(
    exe: &std::path::Path,
    placement: &Placement,
    python: bool,
) -> anyhow::Result<String> {
    pin_current_thread(placement.client)?;
    let exe = exe.display().to_string();
    let bare = start(placement, &[exe.clone(), "http-bare-server".into()])?;
    let ours = start(
        placement,
        &[exe.clone(), "worker".into(), "--http".into(), "0".into()],
    )?;
    let noop_body = noop_request_bytes()?;
    let floor = bare_row(bare.port, noop_body)?;
    drop(bare);
    let our_row = client_row(ours.port, plain(), true)?;
    let our_default = client_row(ours.port, ConnectOptions::default(), true)?;
    drop(ours);
    let reference = match python
        .then(vgi_rpc_conformance::matrix::python_venv)
        .flatten()
    {
        Some(venv) => {
            let bin = venv.join("bin/vgi-rpc-conformance").display().to_string();
            let server = start(placement, &[bin, "--http".into(), "0".into()])?;
            Some(client_row(server.port, plain(), false)?)
        }
        None => None,
    };
    Ok(render(
        placement,
        &floor,
        &our_row,
        &our_default,
        reference.as_ref(),
    ))
}

/// The size of a `void_noop` request body, so the bare noop moves as many bytes.
fn noop_request_bytes() -> anyhow::Result<usize> {
    let p = Params::new()?;
    let body = vgi_rpc::wire::encode_stream(&p.noop.schema(), std::slice::from_ref(&p.noop))?;
    Ok(body.len() + 200)
}

fn render(
    placement: &Placement,
    floor: &HttpRow,
    ours: &HttpRow,
    ours_default: &HttpRow,
    reference: Option<&HttpRow>,
) -> String {
    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mut out = format!(
        "| HTTP ({p}) | noop p50 | 1 MiB echo p50 | producer GB/s |\n|---|---|---|---|\n",
        p = placement.name
    );
    let mut row = |name: &str, r: &HttpRow| {
        out.push_str(&format!(
            "| {name} | {} | {} | {:.2} |\n",
            us(r.noop),
            us(r.echo),
            r.producer
        ));
    };
    row("bare axum + reqwest (floor)", floor);
    row("vgi-rpc client → vgi-rpc worker", ours);
    row("same, default zstd compression", ours_default);
    if let Some(r) = reference {
        row("vgi-rpc client → Python reference", r);
    }
    out.push_str(&format!(
        "\nnoop {:.2}× the floor (target ≤ 1.5×); producer {:.2}× the floor's bulk (target ≥ 0.7×)",
        ratio(ours.noop, floor.noop),
        ours.producer / floor.producer
    ));
    if let Some(r) = reference {
        out.push_str(&format!(
            "; noop {:.1}× faster than the reference (target ≥ 20×)",
            ratio(r.noop, ours.noop)
        ));
    }
    out.push('\n');
    out
}

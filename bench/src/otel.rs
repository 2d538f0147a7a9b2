//! `vgi-rpc-bench otel`: what OpenTelemetry instrumentation adds to a unary call.
//!
//! Each row measures the `void_noop` median three ways in the same run and placement:
//! no instrumentation; our worker with `ServerTelemetry` (`worker --otel`); and that
//! worker plus `ClientTelemetry` on the client. Both processes use the pipeline of
//! `otlp::install` with exporters that drop what they get (`otlp::install_discarding`:
//! the export thread and the SDK's metric aggregation, i.e. the real per-call path
//! minus the network).
//! The three are measured in alternation, several rounds, each round with freshly started
//! workers, and each reported figure is the median of the rounds' medians, so drift on a
//! shared machine and the luck of one process's memory layout hit all three alike.
//!
//! The medians miss what the recorder threads do: they build spans and points in
//! batches, between calls, so on one core a few calls in a few hundred wait for them and
//! the median call does not. The mean call time (all calls of a round, the median round)
//! counts that work too, and is reported beside the medians for "off" and "server +
//! client".

use std::fmt::Write as _;
use std::sync::Arc;

use vgi_rpc::client::Client;
use vgi_rpc::otel::otlp::OtlpGuard;

use crate::measure::{Latency, us};
use crate::placement::{self, Placement};
use crate::scenario::{self, Params};
use crate::transport::{self, TRANSPORTS, Transport, WorkerProgram};

/// Rounds of the three measurements (the median round is reported), unless
/// `VGI_BENCH_ROUNDS` says otherwise (more rounds, steadier medians).
const ROUNDS: usize = 5;

fn rounds() -> usize {
    std::env::var("VGI_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS)
}
/// Calls per measurement.
const ITERS: usize = 2000;

/// One row: a placement and transport, the three medians.
#[derive(Debug, Clone)]
pub struct OtelRow {
    /// `same-core` or `split-cores`.
    pub placement: &'static str,
    /// The transport's name.
    pub transport: &'static str,
    /// No instrumentation.
    pub off: std::time::Duration,
    /// Server instrumented.
    pub server: std::time::Duration,
    /// Server and client instrumented.
    pub both: std::time::Duration,
    /// Mean call time, no instrumentation.
    pub off_mean: std::time::Duration,
    /// Mean call time, server and client instrumented.
    pub both_mean: std::time::Duration,
}

fn added(on: std::time::Duration, off: std::time::Duration) -> f64 {
    (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
}

/// The rows as a markdown table.
pub fn markdown(rows: &[OtelRow]) -> String {
    let mut md = String::from(
        "| placement | transport | noop p50 µs, otel off | server otel | added | server + client otel | added | mean µs, off | mean, server + client | added |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:+.1} % | {} | {:+.1} % | {} | {} | {:+.1} % |",
            r.placement,
            r.transport,
            us(r.off),
            us(r.server),
            added(r.server, r.off),
            us(r.both),
            added(r.both, r.off),
            us(r.off_mean),
            us(r.both_mean),
            added(r.both_mean, r.off_mean)
        );
    }
    md
}

fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The median and the mean call time of one round.
fn noop_round(
    client: &mut Client,
    p: &Params,
) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
    let latency = Latency::measure(200, ITERS, || scenario::noop(client, p))?;
    let mean = std::time::Duration::from_secs_f64(1.0 / latency.per_second().max(1e-9));
    Ok((latency.p50(), mean))
}

fn measure(
    guard: &OtlpGuard,
    plain: &WorkerProgram,
    instrumented: &WorkerProgram,
    t: &Transport,
    place: &Placement,
) -> anyhow::Result<OtelRow> {
    let p = Params::new()?;
    let observer = Arc::new(guard.client_telemetry());
    let (mut off, mut server, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let (mut off_mean, mut both_mean) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        // Fresh worker processes (and connections) every round: where a process's
        // buffers and stacks fall in their pages moves a noop by several percent from
        // one process to the next, so one pair of processes measured for all rounds
        // compared their layouts as much as the instrumentation.
        let off_end = transport::start(plain, t, place)?;
        let on_end = transport::start(instrumented, t, place)?;
        let mut off_client = off_end.connect()?;
        let mut server_client = on_end.connect()?;
        let mut both_client = on_end.connect_with(t.with_options(
            vgi_rpc::client::ConnectOptions::default().with_observer(observer.clone()),
        ))?;
        let (p50, mean) = noop_round(&mut off_client, &p)?;
        off.push(p50);
        off_mean.push(mean);
        server.push(noop_round(&mut server_client, &p)?.0);
        let (p50, mean) = noop_round(&mut both_client, &p)?;
        both.push(p50);
        both_mean.push(mean);
    }
    Ok(OtelRow {
        placement: place.name,
        transport: t.name,
        off: median(off),
        server: median(server),
        both: median(both),
        off_mean: median(off_mean),
        both_mean: median(both_mean),
    })
}

/// Measures every selected placement on the pipe and Unix-socket transports and prints
/// the table.
///
/// # Errors
/// A worker failed to start or a call failed.
pub fn run(exe: &std::path::Path) -> anyhow::Result<()> {
    let guard = vgi_rpc::otel::otlp::install_discarding();
    let plain = transport::rust_worker(exe);
    let instrumented = WorkerProgram::new(
        "rust-otel",
        vec![exe.display().to_string(), "worker".into(), "--otel".into()],
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average at start: {}", load.trim());
    let mut rows = Vec::new();
    for place in placement::selected() {
        placement::pin_current_thread(place.client)?;
        for t in TRANSPORTS
            .iter()
            .filter(|t| t.name == "pipe" || t.name == "unix")
        {
            eprintln!("measuring {} / {} ...", place.name, t.name);
            rows.push(measure(&guard, &plain, &instrumented, t, &place)?);
        }
    }
    println!("{}", markdown(&rows));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
    Ok(())
}

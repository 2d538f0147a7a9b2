//! `vgi-rpc-bench otel`: what OpenTelemetry instrumentation adds to a unary call.
//!
//! Each row measures the `void_noop` median three ways in the same run and placement:
//! no instrumentation; our worker with `ServerTelemetry` (`worker --otel`); and that
//! worker plus `ClientTelemetry` on the client. Both processes use the pipeline of
//! `otlp::install` with exporters that drop what they get (`otlp::install_discarding`:
//! the export thread and the SDK's metric aggregation, i.e. the real per-call path
//! minus the network).
//! The three are measured in alternation, several rounds, each round with freshly started
//! workers and a fresh client process per measurement (`drive ADDRESS latency`), so
//! the luck of one process's memory layout hits all three alike (a client that lived
//! through a whole run put its one layout into every round). The times reported are
//! the medians of the rounds' medians; what is "added" is the median of each round's
//! own ratio to that round's "off": the machine drifts between fast and slow spells
//! (the "off" median of a run moved between 15.5 and 19.7 µs in one session), and a
//! ratio within a round compares measurements made a fraction of a second apart. The
//! order of the three rotates from round to round, so that none always goes first.
//!
//! The medians miss what the recorder threads do: they build spans and points in
//! batches, between calls, so on one core a few calls in a few hundred wait for them and
//! the median call does not. The mean call time (all calls of a round, the median round)
//! counts that work too, and is reported beside the medians for "off" and "server +
//! client".

use std::fmt::Write as _;

use anyhow::Context as _;

use vgi_rpc::client::Client;

use crate::measure::{Latency, us};
use crate::placement::{self, Placement};
use crate::scenario::{self, Params};
use crate::transport::{self, Endpoint, TRANSPORTS, Transport, WorkerProgram};

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
    /// Percent added by the server's instrumentation (median of the rounds' ratios).
    pub server_added: f64,
    /// Percent added by both ends' (median of the rounds' ratios).
    pub both_added: f64,
    /// Percent added to the mean by both ends' (median of the rounds' ratios).
    pub both_mean_added: f64,
}

fn added(on: std::time::Duration, off: std::time::Duration) -> f64 {
    (on.as_secs_f64() / off.as_secs_f64() - 1.0) * 100.0
}

/// The median of the rounds' percentages added (`on[i]` against `off[i]`).
fn median_added(on: &[std::time::Duration], off: &[std::time::Duration]) -> f64 {
    let mut ratios: Vec<f64> = on.iter().zip(off).map(|(&a, &b)| added(a, b)).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
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
            r.server_added,
            us(r.both),
            r.both_added,
            us(r.off_mean),
            us(r.both_mean),
            r.both_mean_added
        );
    }
    md
}

fn median(v: &[std::time::Duration]) -> std::time::Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// The median and the mean call time of `iters` noops (after 200 untimed).
///
/// # Errors
/// A call failed.
pub fn noop_round(
    client: &mut Client,
    p: &Params,
    iters: usize,
) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
    let latency = Latency::measure(200, iters, || scenario::noop(client, p))?;
    let mean = std::time::Duration::from_secs_f64(1.0 / latency.per_second().max(1e-9));
    Ok((latency.p50(), mean))
}

/// One round's client: a fresh process (`drive [--otel] ADDRESS latency`) on the
/// placement's client core, so that no process lives through two rounds.
fn client_round(
    exe: &std::path::Path,
    end: &Endpoint,
    otel: bool,
    place: &Placement,
) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
    let mut command = std::process::Command::new("taskset");
    command
        .args(["-c", &place.client.to_string()])
        .arg(exe)
        .arg("drive");
    if otel {
        command.arg("--otel");
    }
    let out = command
        .args([end.address(), "latency", &ITERS.to_string()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "round client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let field = |name: &str| -> anyhow::Result<std::time::Duration> {
        let value = text
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .with_context(|| format!("no {name} in {text:?}"))?;
        Ok(std::time::Duration::from_nanos(value.parse()?))
    };
    Ok((field("p50_ns=")?, field("mean_ns=")?))
}

fn measure(
    exe: &std::path::Path,
    plain: &WorkerProgram,
    instrumented: &WorkerProgram,
    t: &Transport,
    place: &Placement,
) -> anyhow::Result<OtelRow> {
    let (mut off, mut server, mut both) = (Vec::new(), Vec::new(), Vec::new());
    let (mut off_mean, mut both_mean) = (Vec::new(), Vec::new());
    for round in 0..rounds() {
        // Fresh processes every round, workers and clients: where a process's buffers
        // and stacks fall in their pages moves a noop by up to a fifth from one process
        // to the next, so processes that lived through all rounds compared their
        // layouts as much as the instrumentation.
        let off_end = transport::start(plain, t, place)?;
        let on_end = transport::start(instrumented, t, place)?;
        for which in (0..3).map(|i| (i + round) % 3) {
            match which {
                0 => {
                    let (p50, mean) = client_round(exe, &off_end, false, place)?;
                    off.push(p50);
                    off_mean.push(mean);
                }
                1 => server.push(client_round(exe, &on_end, false, place)?.0),
                _ => {
                    let (p50, mean) = client_round(exe, &on_end, true, place)?;
                    both.push(p50);
                    both_mean.push(mean);
                }
            }
        }
    }
    Ok(OtelRow {
        placement: place.name,
        transport: t.name,
        off: median(&off),
        server: median(&server),
        both: median(&both),
        off_mean: median(&off_mean),
        both_mean: median(&both_mean),
        server_added: median_added(&server, &off),
        both_added: median_added(&both, &off),
        both_mean_added: median_added(&both_mean, &off_mean),
    })
}

/// Measures every selected placement on the pipe and Unix-socket transports and prints
/// the table.
///
/// # Errors
/// A worker failed to start or a call failed.
pub fn run(exe: &std::path::Path) -> anyhow::Result<()> {
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
            rows.push(measure(exe, &plain, &instrumented, t, &place)?);
        }
    }
    println!("{}", markdown(&rows));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
    Ok(())
}

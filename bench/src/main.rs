//! `vgi-rpc-bench`: the summary benchmark (a short fixed matrix over every transport and
//! both placements, printing markdown tables and writing an SVG chart), plus the worker
//! processes it starts (`worker`, `raw-server`).
//!
//! ```text
//! vgi-rpc-bench [--out DIR] [--no-python]      # summary (VGI_BENCH_PLACEMENT=same|split)
//! vgi-rpc-bench worker [--otel|--otel-tracer] [--pipe | --unix PATH | --tcp HOST:PORT] [--threaded] [--validation LEVEL]
//! vgi-rpc-bench raw-server [--pipe | --unix PATH | --tcp HOST:PORT]
//! vgi-rpc-bench external                        # 256 MiB inline vs via S3 (moto), fetch paths
//! vgi-rpc-bench otel                           # noop latency with OpenTelemetry off / on (VGI_BENCH_ROUNDS)
//! vgi-rpc-bench drive [--otel|--otel-tracer] [--plain] [--shm SIZE] [--validation full|standard|none] ADDRESS noop|latency|echo|produce|exchange N [BATCH_BYTES]
//!                                                # a fixed load, for strace/perf
//! vgi-rpc-bench drive-bare PORT N              # N bare noop POSTs to an http-bare-server
//! ```
//!
//! Besides the main table, the summary measures ~3 MB batches on every transport (the
//! `produce_mixed` producer and the `exchange_mixed` echo) beside a memcpy of the same
//! bytes in the same run and placement, and the worker's peak RSS and the segment's
//! occupancy after a 1 GB producer over shared memory.

mod commands;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vgi_rpc::wire::Validation;
use vgi_rpc_bench::bulk;
use vgi_rpc_bench::measure::{Latency, best_throughput, median_throughput, us};
use vgi_rpc_bench::placement::{self, Placement, SAME_CORE, SPLIT_CORES};
use vgi_rpc_bench::raw::{Baseline as _, PageAligned, memcpy};
use vgi_rpc_bench::report::{TransportRow, large_markdown, markdown, svg};
use vgi_rpc_bench::scenario::{self, ExchangeSession, MixedExchange, Params};
use vgi_rpc_bench::transport::{self, TRANSPORTS, Transport, WorkerProgram};
use vgi_rpc_bench::worker::{parse_listen, run_raw_server};

/// Batch size of the summary's producer (bytes of payload per batch): ~3 MB, the size
/// issue 16's target names (the `drive` default stays 1 MiB).
const PRODUCER_BATCH: usize = 3_000_000;
/// Batches per producer run.
const PRODUCER_BATCHES: usize = 32;
/// Batch size of the large-batch rows (where shared memory pays off).
const LARGE_BATCH: usize = 3_000_000;
/// Batches per large-batch producer run, and round trips per large exchange run.
const LARGE_BATCHES: usize = 32;
/// Runs of each large-batch figure (the median is reported).
const LARGE_RUNS: usize = 7;
/// Latency iterations (per placement and transport).
const LATENCY_ITERS: usize = 2000;
/// The raw ping-pong and our noop alternate in this many blocks of [`LATENCY_ITERS`]
/// each: their ratio is a target, so both see the same spells of machine noise.
const PAIRED_ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => commands::worker(&args[1..]),
        Some("otel") => vgi_rpc_bench::otel::run(&std::env::current_exe()?),
        Some("raw-server") => run_raw_server(&parse_listen(&args[1..])?),
        Some("drive") => commands::drive(&args[1..]),
        Some("http-bare-server") => vgi_rpc_bench::http::run_bare_server(),
        Some("drive-bare") => match &args[1..] {
            [port, n] => vgi_rpc_bench::http::drive_bare(port.parse()?, n.parse()?),
            _ => anyhow::bail!("usage: vgi-rpc-bench drive-bare PORT N"),
        },
        Some("http") => http_rows(&args[1..]),
        Some("external") => external_rows(),
        _ => summary(&args),
    }
}

/// `http [--no-python]`: the HTTP rows on each selected placement (markdown on stdout).
fn http_rows(args: &[String]) -> anyhow::Result<()> {
    let python = !args.iter().any(|a| a == "--no-python");
    let exe = std::env::current_exe()?;
    for placement in vgi_rpc_bench::placement::selected() {
        println!(
            "{}",
            vgi_rpc_bench::http::measure(&exe, &placement, python)?
        );
    }
    Ok(())
}

/// `external`: the external-storage rows on each selected placement (markdown).
fn external_rows() -> anyhow::Result<()> {
    let venv = vgi_rpc_conformance::matrix::python_venv()
        .context("the reference venv (with moto) is needed: run scripts/python-venv.sh")?;
    for placement in vgi_rpc_bench::placement::selected() {
        println!("{}", vgi_rpc_bench::external::measure(&placement, &venv)?);
    }
    Ok(())
}

struct Options {
    out: PathBuf,
    python: bool,
}

fn summary(args: &[String]) -> anyhow::Result<()> {
    let mut options = Options {
        out: PathBuf::from("target/vgi-bench"),
        python: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "summary" => {}
            "--out" => options.out = PathBuf::from(it.next().context("--out DIR")?),
            "--no-python" => options.python = false,
            other => anyhow::bail!("unknown argument {other:?} (see the module docs)"),
        }
    }
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let ours = transport::rust_worker(&exe);
    let trusted = transport::rust_worker_at(&exe, Validation::Standard);
    let raw = transport::raw_server(&exe);
    let python = if options.python {
        transport::python_worker()
    } else {
        None
    };
    if options.python && python.is_none() {
        eprintln!("note: Python reference venv not found (set VGI_VENV); skipping the comparison");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average at start: {}", load.trim());
    let mut rows = Vec::new();
    for place in placement::selected() {
        placement::pin_current_thread(place.client)?;
        for t in TRANSPORTS {
            eprintln!("measuring {} / {} ...", place.name, t.name);
            let mut row = measure_transport(&ours, &raw, t, &place)?;
            if !t.announced {
                measure_trusted(&mut row, &trusted, t, &place)?;
            }
            if let Some(py) = &python {
                compare_python(&mut row, &ours, py, t, &place)?;
            }
            rows.push(row);
        }
    }
    let memory = memory_checks(&ours)?;
    let md = format!("{}\n{}", markdown(&rows), large_markdown(&rows));
    let chart = svg(&rows);
    std::fs::create_dir_all(&options.out)?;
    let svg_path = options.out.join("summary.svg");
    std::fs::write(&svg_path, &chart)?;
    std::fs::write(options.out.join("summary.md"), format!("{md}\n{memory}"))?;
    println!("{md}");
    println!("{memory}");
    println!("{}", targets(&rows));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "wall time {:.1} s; load average at end: {}; chart: {}",
        started.elapsed().as_secs_f64(),
        load.trim(),
        svg_path.display()
    );
    Ok(())
}

fn measure_transport(
    ours: &WorkerProgram,
    raw: &WorkerProgram,
    t: &Transport,
    place: &Placement,
) -> anyhow::Result<TransportRow> {
    let mut row = TransportRow {
        placement: place.name,
        transport: t.name,
        ..TransportRow::default()
    };
    let rows = scenario::mixed_rows_for(PRODUCER_BATCH);
    let total = (rows * PRODUCER_BATCHES * vgi_rpc_bench::service::MIXED_ROW_BYTES) as u64;

    let raw_end = transport::start(raw, t, place)?;
    let mut stream = raw_end.open_raw()?;
    let end = transport::start(ours, t, place)?;
    let p = Params::new()?;
    let mut client = end.connect()?;
    let (ping, noop) = Latency::measure_pair(
        PAIRED_ROUNDS,
        200,
        LATENCY_ITERS,
        || stream.ping(),
        || scenario::noop(&mut client, &p).map_err(std::io::Error::other),
    )?;
    row.ping_p50 = ping.p50();
    row.noop_p50 = noop.p50();
    row.noop_p99 = noop.p99();
    row.calls_per_s = noop.per_second();
    // Pipes and Unix sockets take lent pages (`vmsplice`, and `splice` for sockets), as
    // our worker lends its answers there.
    let lend = matches!(t.name, "pipe" | "unix");
    let bulk = bulk::producer_against_raw(
        &raw_end,
        stream,
        &end,
        &mut client,
        rows,
        PRODUCER_BATCHES,
        lend,
    )?;
    row.raw_gbps = bulk.raw;
    row.raw_landed_gbps = bulk.raw_landed;
    row.raw_lent_gbps = bulk.raw_lent;
    row.producer_gbps = bulk.producer;
    let src = PageAligned::filled(PRODUCER_BATCH, 1);
    let mut dst = PageAligned::zeroed(PRODUCER_BATCH);
    row.memcpy_gbps = best_throughput(3, || Ok::<_, anyhow::Error>(memcpy(&src, &mut dst, total)))?;

    let large_rows = scenario::mixed_rows_for(LARGE_BATCH);
    let large_bytes = large_rows * vgi_rpc_bench::service::MIXED_ROW_BYTES;
    let large_src = PageAligned::filled(large_bytes, 1);
    let mut large_dst = PageAligned::zeroed(large_bytes);
    row.memcpy_large_gbps = median_throughput(LARGE_RUNS, || {
        let total = (large_bytes * LARGE_BATCHES) as u64;
        Ok::<_, anyhow::Error>(memcpy(&large_src, &mut large_dst, total))
    })?;

    row.small_p50 = Latency::measure(50, LATENCY_ITERS / 4, || {
        scenario::small_args(&mut client, &p)
    })?
    .p50();
    row.echo_gbps = best_throughput(20, || scenario::echo_mib(&mut client, &p))?;
    row.producer_large_gbps = median_throughput(LARGE_RUNS, || {
        scenario::produce_mixed(&mut client, large_rows, LARGE_BATCHES)
    })?;
    let mut ex = MixedExchange::open(&mut client, large_rows)?;
    row.exchange_large_gbps = median_throughput(LARGE_RUNS, || {
        (0..LARGE_BATCHES).try_fold(0, |bytes, _| {
            Ok::<_, vgi_rpc::Error>(bytes + ex.round_trip()?)
        })
    })?;
    ex.close()?;
    if t.shm.is_some() && client.side_channel().is_none() {
        anyhow::bail!("{}: the worker declined shared memory", t.name);
    }
    let mut ex = ExchangeSession::open(&mut client, &p)?;
    row.exchange_p50 = Latency::measure(50, LATENCY_ITERS / 2, || ex.round_trip())?.p50();
    ex.close()?;
    drop(client);
    for n in [1, 4, 16] {
        let rate = scenario::concurrent_noop(&end, n, Duration::from_millis(400))?;
        row.concurrent.push((n, rate));
    }
    Ok(row)
}

/// The large-batch figures again with both ends checking received batches only at
/// `standard` (the `unsafe` opt-in for an `exec:` worker the client trusts).
fn measure_trusted(
    row: &mut TransportRow,
    trusted: &WorkerProgram,
    t: &Transport,
    place: &Placement,
) -> anyhow::Result<()> {
    let rows = scenario::mixed_rows_for(LARGE_BATCH);
    let end = transport::start(trusted, t, place)?;
    let mut client = end.connect_with(transport::trusted_options(Validation::Standard))?;
    row.producer_large_std_gbps = Some(median_throughput(LARGE_RUNS, || {
        scenario::produce_mixed(&mut client, rows, LARGE_BATCHES)
    })?);
    let mut ex = MixedExchange::open(&mut client, rows)?;
    row.exchange_large_std_gbps = Some(median_throughput(LARGE_RUNS, || {
        (0..LARGE_BATCHES).try_fold(0, |bytes, _| {
            Ok::<_, vgi_rpc::Error>(bytes + ex.round_trip()?)
        })
    })?);
    ex.close()?;
    Ok(())
}

/// Same calls against our worker and the Python reference: `void_noop`,
/// `exchange_scale`, and `produce_large_batches` (int64; the reference has no mixed
/// producer).
fn compare_python(
    row: &mut TransportRow,
    ours: &WorkerProgram,
    py: &WorkerProgram,
    t: &Transport,
    place: &Placement,
) -> anyhow::Result<()> {
    const ROWS: usize = 131_072; // 1 MiB of int64 per batch
    const BATCHES: usize = 16;
    let p = Params::new()?;
    let end = transport::start(ours, t, place)?;
    let mut client = end.connect()?;
    row.rust_int64_gbps = Some(best_throughput(3, || {
        scenario::produce_int64(&mut client, ROWS, BATCHES)
    })?);
    drop(client);
    let end = transport::start(py, t, place)?;
    let mut client = end.connect()?;
    row.py_noop_p50 = Some(Latency::measure(50, 300, || scenario::noop(&mut client, &p))?.p50());
    let mut ex = ExchangeSession::open(&mut client, &p)?;
    row.py_exchange_p50 = Some(Latency::measure(20, 200, || ex.round_trip())?.p50());
    ex.close()?;
    row.py_producer_gbps = Some(best_throughput(2, || {
        scenario::produce_int64(&mut client, ROWS, BATCHES)
    })?);
    Ok(())
}

fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{key} in /proc/{pid}/status"))
}

/// Worker RSS with 16 idle connections (unix), and the worker's peak RSS while
/// producing 1 GB in 3 MB batches over a pipe and over shared memory, against the batch
/// size; for shared memory also the segment's occupancy after the run.
fn memory_checks(ours: &WorkerProgram) -> anyhow::Result<String> {
    placement::pin_current_thread(SAME_CORE.client)?;
    let mut out = String::from("Memory (same-core):\n");
    let end = transport::start(ours, row_named("unix")?, &SAME_CORE)?;
    let pid = end.pid().context("socket worker pid")?;
    let p = Params::new()?;
    let mut clients = Vec::new();
    for _ in 0..16 {
        let mut c = end.connect()?;
        scenario::noop(&mut c, &p)?;
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(100));
    let rss = status_kib(pid, "VmRSS:")?;
    let _ = writeln!(
        out,
        "- worker with 16 idle unix connections: VmRSS {:.1} MiB (target < 16 MiB)",
        rss as f64 / 1024.0
    );
    drop(clients);
    drop(end);
    for name in ["pipe", "shm"] {
        out.push_str(&producer_memory(ours, row_named(name)?)?);
    }
    Ok(out)
}

fn row_named(name: &str) -> anyhow::Result<&'static Transport> {
    TRANSPORTS
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("the {name} transport"))
}

/// One line: the `exec:` worker's RSS before and peak after producing 1 GB in 3 MB
/// batches over `t`; over shared memory also its shared pages and the segment's
/// allocation table after the run (read at the next turn boundary, when this client
/// has freed every region it was sent).
fn producer_memory(ours: &WorkerProgram, t: &Transport) -> anyhow::Result<String> {
    let p = Params::new()?;
    let end = transport::start(ours, t, &SAME_CORE)?;
    let mut client = end.connect()?;
    scenario::noop(&mut client, &p)?;
    let pid = client.worker_pid().context("exec: worker pid")?;
    let before = status_kib(pid, "VmRSS:")?;
    let rows = scenario::mixed_rows_for(LARGE_BATCH);
    let batch_bytes = rows * vgi_rpc_bench::service::MIXED_ROW_BYTES;
    let batches = 1_000_000_000usize.div_ceil(batch_bytes);
    let start = Instant::now();
    let bytes = scenario::produce_mixed(&mut client, rows, batches)?;
    let secs = start.elapsed().as_secs_f64();
    let hwm = status_kib(pid, "VmHWM:")?;
    let growth = (hwm.saturating_sub(before) * 1024) as f64;
    let mut line = format!(
        "- 1 GB producer over {} ({batches} batches of {:.2} MB, {:.2} GB/s): worker VmRSS before {:.1} MiB, VmHWM after {:.1} MiB, growth = {:.2} batches (target <= ~2)",
        t.name,
        batch_bytes as f64 / 1e6,
        bytes as f64 / secs / 1e9,
        before as f64 / 1024.0,
        hwm as f64 / 1024.0,
        growth / batch_bytes as f64,
    );
    if let Some(size) = t.shm {
        let shared = status_kib(pid, "RssShmem:")?;
        scenario::noop(&mut client, &p)?;
        let table = scenario::segment_allocations(&client)
            .context("the worker declined shared memory")??;
        let _ = write!(
            line,
            "; segment pages mapped by the worker (RssShmem, after) {:.1} MiB of {} MiB; segment after the run: {} allocation entries ({} bytes)",
            shared as f64 / 1024.0,
            size >> 20,
            table.len(),
            table.iter().map(|(_, len)| len).sum::<u64>(),
        );
    }
    line.push('\n');
    Ok(line)
}

/// The issue's targets, each with how far off it is.
fn targets(rows: &[TransportRow]) -> String {
    let mut s = String::from("Targets (medians, same placement):\n");
    for r in rows {
        let noop = r.noop_p50.as_secs_f64() / r.ping_p50.as_secs_f64().max(1e-12);
        let prod = r.producer_gbps / r.raw_gbps.max(1e-12);
        let mut line = format!(
            "- {} {}: noop p50 {} µs = {:.2}x ping-pong{}; producer {:.0}% of raw (target >= 85%: {}), {:.0}% of raw landed",
            r.placement,
            r.transport,
            us(r.noop_p50),
            noop,
            if r.placement == SAME_CORE.name {
                format!(" (target <= 1.5x: {})", verdict(noop <= 1.5))
            } else {
                String::new()
            },
            prod * 100.0,
            verdict(prod >= 0.85),
            r.producer_gbps / r.raw_landed_gbps.max(1e-12) * 100.0,
        );
        if r.raw_lent_gbps > 0.0 {
            line.push_str(&format!(
                ", {:.0}% of raw lent (a raw server lending its bytes, as our worker does: the tightest raw transfer here)",
                r.producer_gbps / r.raw_lent_gbps * 100.0
            ));
        }
        if let (Some(py), Some(ri), Some(pi)) =
            (r.py_noop_p50, r.rust_int64_gbps, r.py_producer_gbps)
        {
            let n = py.as_secs_f64() / r.noop_p50.as_secs_f64().max(1e-12);
            let q = ri / pi.max(1e-12);
            line.push_str(&format!(
                "; vs python noop {n:.1}x (target >= 30x: {}), producer {q:.2}x (target >= 1.5x: {})",
                verdict(n >= 30.0),
                verdict(q >= 1.5)
            ));
        }
        s.push_str(&line);
        s.push('\n');
    }
    for placement in [SAME_CORE.name, SPLIT_CORES.name] {
        let echo = |transport: &str| {
            rows.iter()
                .find(|r| r.placement == placement && r.transport == transport)
                .map(|r| r.echo_gbps)
        };
        if let (Some(pipe), Some(unix)) = (echo("pipe"), echo("unix")) {
            // Same bytes both ways: the time ratio is the throughput ratio inverted.
            let ratio = unix / pipe.max(1e-12);
            s.push_str(&format!(
                "- {placement}: 1 MiB echo over stdio takes {ratio:.2}x its unix time{}\n",
                if placement == SAME_CORE.name {
                    format!(" (target <= 1.5x: {})", verdict(ratio <= 1.5))
                } else {
                    String::new()
                }
            ));
        }
    }
    for r in rows.iter().filter(|r| r.transport == "shm") {
        let memcpy = r.memcpy_large_gbps.max(1e-12);
        let unix = rows
            .iter()
            .find(|u| u.placement == r.placement && u.transport == "unix")
            .map_or(0.0, |u| u.producer_large_gbps)
            .max(1e-12);
        let figures = [
            (
                "full",
                Some(r.producer_large_gbps),
                Some(r.exchange_large_gbps),
            ),
            (
                "standard",
                r.producer_large_std_gbps,
                r.exchange_large_std_gbps,
            ),
        ];
        for (level, producer, exchange) in figures {
            let (Some(producer), Some(exchange)) = (producer, exchange) else {
                continue;
            };
            let (prod, vs_unix, ex) = (producer / memcpy, producer / unix, exchange / memcpy);
            let _ = writeln!(
                s,
                "- {} shm, ~3 MB batches, validation {level}: producer {producer:.2} GB/s = {prod:.2}x memcpy (target >= 0.8x: {}), {vs_unix:.2}x the unix producer (full; target >= 3x: {}); exchange {exchange:.2} GB/s both ways = {ex:.2}x memcpy (target >= 0.5x: {})",
                r.placement,
                verdict(prod >= 0.8),
                verdict(vs_unix >= 3.0),
                verdict(ex >= 0.5),
            );
        }
    }
    s
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

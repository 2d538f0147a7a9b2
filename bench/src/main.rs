//! `vgi-rpc-bench`: the summary benchmark (a short fixed matrix over every transport and
//! both placements, printing markdown tables and writing an SVG chart), plus the worker
//! processes it starts (`worker`, `raw-server`).
//!
//! ```text
//! vgi-rpc-bench [--out DIR] [--no-python]      # summary (VGI_BENCH_PLACEMENT=same|split)
//! vgi-rpc-bench worker [--pipe | --unix PATH | --tcp HOST:PORT] [--threaded]
//! vgi-rpc-bench raw-server [--pipe | --unix PATH | --tcp HOST:PORT]
//! vgi-rpc-bench drive [--shm SIZE] ADDRESS noop|produce N [BATCH_BYTES]   # a fixed load, for strace/perf
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vgi_rpc::client::{Client, ConnectOptions};
use vgi_rpc_bench::measure::{Latency, best_throughput, us};
use vgi_rpc_bench::placement::{self, Placement, SAME_CORE};
use vgi_rpc_bench::raw::{READ_CHUNK, memcpy};
use vgi_rpc_bench::report::{TransportRow, markdown, svg};
use vgi_rpc_bench::scenario::{self, ExchangeSession, Params};
use vgi_rpc_bench::transport::{Endpoint, TRANSPORTS, Transport, WorkerProgram};
use vgi_rpc_bench::worker::{parse_listen, run_raw_server, run_worker};

/// Batch size of the summary's producer (bytes of payload per batch).
const PRODUCER_BATCH: usize = 1 << 20;
/// Batch size of the summary's large-batch producer (where shared memory pays off).
const LARGE_BATCH: usize = 3_000_000;
/// Batches per large-batch producer run.
const LARGE_BATCHES: usize = 32;
/// Batches per producer run.
const PRODUCER_BATCHES: usize = 64;
/// Latency iterations (per placement and transport).
const LATENCY_ITERS: usize = 2000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => run_worker(&parse_listen(&args[1..])?),
        Some("raw-server") => run_raw_server(&parse_listen(&args[1..])?),
        Some("drive") => drive(&args[1..]),
        _ => summary(&args),
    }
}

/// `drive ADDRESS noop N` makes N `void_noop` calls; `drive ADDRESS produce N` drains
/// N mixed batches of BATCH_BYTES (default 1 MiB). `--shm SIZE` (first) adds a
/// shared-memory segment of SIZE bytes. Prints the elapsed time.
fn drive(args: &[String]) -> anyhow::Result<()> {
    let (shm, args) = match args {
        [flag, size, rest @ ..] if flag == "--shm" => (Some(size.parse::<usize>()?), rest),
        rest => (None, rest),
    };
    let (address, what, n, batch) = match args {
        [a, w, n] => (a, w, n, PRODUCER_BATCH),
        [a, w, n, b] => (a, w, n, b.parse()?),
        _ => anyhow::bail!(
            "usage: vgi-rpc-bench drive [--shm SIZE] ADDRESS noop|produce N [BATCH_BYTES]"
        ),
    };
    let n: usize = n.parse()?;
    let p = Params::new()?;
    let mut options = ConnectOptions::default();
    if let Some(size) = shm {
        options = options.with_shm(size);
    }
    let mut client = Client::connect_with(&address.parse()?, options)?;
    let start = Instant::now();
    match what.as_str() {
        "noop" => (0..n).try_for_each(|_| scenario::noop(&mut client, &p))?,
        "produce" => {
            scenario::produce_mixed(&mut client, scenario::mixed_rows_for(batch), n)?;
        }
        other => anyhow::bail!("unknown load {other:?}"),
    }
    println!("{what} x{n}: {:.3} s", start.elapsed().as_secs_f64());
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
    let ours = WorkerProgram::rust(&exe);
    let raw = WorkerProgram::raw(&exe);
    let python = if options.python {
        WorkerProgram::python()
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
            if let Some(py) = &python {
                compare_python(&mut row, &ours, py, t, &place)?;
            }
            rows.push(row);
        }
    }
    let memory = memory_checks(&ours)?;
    let md = markdown(&rows);
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

    let raw_end = Endpoint::start(raw, t, place)?;
    let mut stream = raw_end.connect_raw()?;
    row.ping_p50 = Latency::measure(200, LATENCY_ITERS, || stream.ping())?.p50();
    let mut buf = vec![0u8; READ_CHUNK];
    row.raw_gbps = best_throughput(3, || stream.bulk(total, &mut buf))?;
    let src = vec![1u8; PRODUCER_BATCH];
    let mut dst = vec![0u8; PRODUCER_BATCH];
    row.memcpy_gbps = best_throughput(3, || Ok::<_, anyhow::Error>(memcpy(&src, &mut dst, total)))?;
    drop(stream);

    let large_rows = scenario::mixed_rows_for(LARGE_BATCH);
    let large_total = (large_rows * LARGE_BATCHES * vgi_rpc_bench::service::MIXED_ROW_BYTES) as u64;
    let large_src = vec![1u8; large_rows * vgi_rpc_bench::service::MIXED_ROW_BYTES];
    let mut large_dst = vec![0u8; large_src.len()];
    row.memcpy_large_gbps = best_throughput(3, || {
        Ok::<_, anyhow::Error>(memcpy(&large_src, &mut large_dst, large_total))
    })?;

    let end = Endpoint::start(ours, t, place)?;
    let p = Params::new()?;
    let mut client = end.connect()?;
    let noop = Latency::measure(200, LATENCY_ITERS, || scenario::noop(&mut client, &p))?;
    row.noop_p50 = noop.p50();
    row.noop_p99 = noop.p99();
    row.calls_per_s = noop.per_second();
    row.small_p50 = Latency::measure(50, LATENCY_ITERS / 4, || {
        scenario::small_args(&mut client, &p)
    })?
    .p50();
    row.echo_gbps = best_throughput(20, || scenario::echo_mib(&mut client, &p))?;
    row.producer_gbps = best_throughput(3, || {
        scenario::produce_mixed(&mut client, rows, PRODUCER_BATCHES)
    })?;
    row.producer_large_gbps = best_throughput(3, || {
        scenario::produce_mixed(&mut client, large_rows, LARGE_BATCHES)
    })?;
    if t.shm.is_some() && client.side_channel().is_none() {
        anyhow::bail!("{}: the worker declined shared memory", t.name);
    }
    let mut ex = ExchangeSession::open(&mut client, &p)?;
    row.exchange_p50 = Latency::measure(50, LATENCY_ITERS / 2, || ex.round_trip())?.p50();
    ex.close()?;
    drop(client);
    for n in [1, 4, 16] {
        let rate = scenario::concurrent_noop(&|| end.connect(), n, Duration::from_millis(400))?;
        row.concurrent.push((n, rate));
    }
    Ok(row)
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
    let end = Endpoint::start(ours, t, place)?;
    let mut client = end.connect()?;
    row.rust_int64_gbps = Some(best_throughput(3, || {
        scenario::produce_int64(&mut client, ROWS, BATCHES)
    })?);
    drop(client);
    let end = Endpoint::start(py, t, place)?;
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
/// producing 1 GB in 3 MB batches over a pipe, against the batch size.
fn memory_checks(ours: &WorkerProgram) -> anyhow::Result<String> {
    placement::pin_current_thread(SAME_CORE.client)?;
    let mut out = String::from("Memory (same-core):\n");
    let unix = TRANSPORTS
        .iter()
        .find(|t| t.name == "unix")
        .context("unix transport")?;
    let end = Endpoint::start(ours, unix, &SAME_CORE)?;
    let pid = end.pid().context("socket worker pid")?;
    let p = Params::new()?;
    let mut clients = Vec::new();
    for _ in 0..16 {
        let mut c = Client::connect(&end.address)?;
        scenario::noop(&mut c, &p)?;
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(100));
    let rss = status_kib(pid, "VmRSS:")?;
    let _ = std::fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "- worker with 16 idle unix connections: VmRSS {:.1} MiB (target < 16 MiB)\n",
            rss as f64 / 1024.0
        ),
    );
    drop(clients);
    drop(end);

    let pipe = TRANSPORTS
        .iter()
        .find(|t| t.name == "pipe")
        .context("pipe transport")?;
    let end = Endpoint::start(ours, pipe, &SAME_CORE)?;
    let mut client = Client::connect(&end.address)?;
    scenario::noop(&mut client, &p)?;
    let pid = client.worker_pid().context("pipe worker pid")?;
    let before = status_kib(pid, "VmRSS:")?;
    let batch = 3_000_000usize;
    let rows = scenario::mixed_rows_for(batch);
    let batches = 1_000_000_000usize.div_ceil(rows * vgi_rpc_bench::service::MIXED_ROW_BYTES);
    let start = Instant::now();
    let bytes = scenario::produce_mixed(&mut client, rows, batches)?;
    let secs = start.elapsed().as_secs_f64();
    let hwm = status_kib(pid, "VmHWM:")?;
    let growth = (hwm.saturating_sub(before) * 1024) as f64;
    let _ = std::fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "- 1 GB producer over pipe ({batches} batches of {:.2} MB, {:.2} GB/s): worker VmRSS before {:.1} MiB, VmHWM after {:.1} MiB, growth = {:.2} batches (target <= ~2)\n",
            (rows * vgi_rpc_bench::service::MIXED_ROW_BYTES) as f64 / 1e6,
            bytes as f64 / secs / 1e9,
            before as f64 / 1024.0,
            hwm as f64 / 1024.0,
            growth / (rows * vgi_rpc_bench::service::MIXED_ROW_BYTES) as f64,
        ),
    );
    Ok(out)
}

/// The issue's targets, each with how far off it is.
fn targets(rows: &[TransportRow]) -> String {
    let mut s = String::from("Targets (medians, same placement):\n");
    for r in rows {
        let noop = r.noop_p50.as_secs_f64() / r.ping_p50.as_secs_f64().max(1e-12);
        let prod = r.producer_gbps / r.raw_gbps.max(1e-12);
        let mut line = format!(
            "- {} {}: noop p50 {} µs = {:.2}x ping-pong{}; producer {:.0}% of raw (target >= 85%: {})",
            r.placement,
            r.transport,
            us(r.noop_p50),
            noop,
            if r.placement == SAME_CORE.name {
                format!(" (target <= 2.5x: {})", verdict(noop <= 2.5))
            } else {
                String::new()
            },
            prod * 100.0,
            verdict(prod >= 0.85),
        );
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
    s
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

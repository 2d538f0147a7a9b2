//! The subcommands that serve or load one worker by hand (`worker`, `drive`): what the
//! summary and the `otel` rows start, and fixed loads for `strace` / `perf`.

use std::sync::Arc;
use std::time::Instant;

use vgi_rpc::client::{Client, ConnectOptions};
use vgi_rpc::otel::otlp::{self, OtlpGuard};
use vgi_rpc::otel::{ClientTelemetry, ServerTelemetry, ServerTelemetryConfig};
use vgi_rpc::server::CallHook;
use vgi_rpc_bench::scenario::{self, MixedExchange, Params};
use vgi_rpc_bench::worker::{parse_worker, run_worker};

/// Batch size `drive ADDRESS produce N` makes without BATCH_BYTES.
const DRIVE_BATCH: usize = 1 << 20;

/// `--otel` / `--otel-tracer`: pipeline set up with exporters that drop what they get,
/// and whether the telemetry goes straight to its exporter (`--otel`, the guard's) or
/// through the global tracer (`--otel-tracer`).
fn discarding(flag: &str) -> (OtlpGuard, bool) {
    (otlp::install_discarding(), flag == "--otel")
}

/// `worker [--otel|--otel-tracer] LISTEN...`: our worker, instrumented (recording,
/// exporting nothing) for the `otel` rows when asked.
pub(crate) fn worker(args: &[String]) -> anyhow::Result<()> {
    let otel = args
        .iter()
        .find(|a| *a == "--otel" || *a == "--otel-tracer");
    let rest: Vec<String> = args.iter().filter(|a| Some(*a) != otel).cloned().collect();
    let (listen, validation) = parse_worker(&rest)?;
    let Some(flag) = otel else {
        return run_worker(&listen, validation, None);
    };
    let (guard, direct) = discarding(flag);
    let config = ServerTelemetryConfig::default();
    let hook: Arc<dyn CallHook> = if direct {
        Arc::new(guard.server_telemetry(config))
    } else {
        Arc::new(ServerTelemetry::with_config(config))
    };
    run_worker(&listen, validation, Some(hook))
}

/// `drive ADDRESS noop N` makes N `void_noop` calls (`latency N`: times each and prints
/// the median and mean), `drive ADDRESS echo N` N 1 MiB
/// `echo_bytes` calls; `drive ADDRESS produce N` drains
/// N mixed batches of BATCH_BYTES (default 1 MiB); `drive ADDRESS exchange N` echoes N
/// of them through `exchange_mixed`. `--otel` instruments the client (`ClientTelemetry`
/// with discarding providers). `--shm SIZE` adds a shared-memory segment of SIZE
/// bytes, `--validation LEVEL` checks received batches at LEVEL (below `full` only for
/// an `exec:` worker). `--plain` turns HTTP compression off both ways (the HTTP rows'
/// plain client). Prints the elapsed time.
pub(crate) fn drive(mut args: &[String]) -> anyhow::Result<()> {
    let mut options = ConnectOptions::default();
    let mut _providers = None;
    loop {
        match args {
            [flag, rest @ ..] if flag == "--otel" || flag == "--otel-tracer" => {
                // Instrumented like the `otel` rows' client.
                let (guard, direct) = discarding(flag);
                let telemetry = if direct {
                    guard.client_telemetry()
                } else {
                    ClientTelemetry::new()
                };
                _providers = Some(guard);
                options = options.with_observer(Arc::new(telemetry));
                args = rest;
            }
            [flag, rest @ ..] if flag == "--plain" => {
                // As the HTTP rows' plain client: compression off both ways.
                options.http.compression_level = None;
                options.http.accept_compressed = false;
                args = rest;
            }
            [flag, size, rest @ ..] if flag == "--shm" => {
                options = options.with_shm(size.parse()?);
                args = rest;
            }
            [flag, level, rest @ ..] if flag == "--validation" => {
                #[allow(unsafe_code)]
                // SAFETY: a level below full is the caller's explicit choice for a worker
                // it trusts (this binary's own, for measurement); the library applies it
                // only to `exec:` workers.
                let lowered = unsafe { options.with_validation(level.parse()?) };
                options = lowered;
                args = rest;
            }
            _ => break,
        }
    }
    let (address, what, n, batch) = match args {
        [a, w, n] => (a, w, n, DRIVE_BATCH),
        [a, w, n, b] => (a, w, n, b.parse()?),
        _ => anyhow::bail!(
            "usage: vgi-rpc-bench drive [--otel|--otel-tracer] [--plain] [--shm SIZE] [--validation LEVEL] ADDRESS noop|latency|echo|produce|exchange N [BATCH_BYTES]"
        ),
    };
    let n: usize = n.parse()?;
    let p = Params::new()?;
    let mut client = Client::connect_with(&address.parse()?, options)?;
    let rows = scenario::mixed_rows_for(batch);
    let start = Instant::now();
    match what.as_str() {
        "noop" => (0..n).try_for_each(|_| scenario::noop(&mut client, &p))?,
        "latency" => {
            // One `otel` round's client: N timed noops after 200 untimed.
            let (p50, mean) = vgi_rpc_bench::otel::noop_round(&mut client, &p, n)?;
            println!("p50_ns={} mean_ns={}", p50.as_nanos(), mean.as_nanos());
            return Ok(());
        }
        "echo" => (0..n).try_for_each(|_| scenario::echo_mib(&mut client, &p).map(drop))?,
        "produce" => {
            scenario::produce_mixed(&mut client, rows, n)?;
        }
        "exchange" => {
            let mut ex = MixedExchange::open(&mut client, rows)?;
            for _ in 0..n {
                ex.round_trip()?;
            }
            ex.close()?;
        }
        other => anyhow::bail!("unknown load {other:?}"),
    }
    println!("{what} x{n}: {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

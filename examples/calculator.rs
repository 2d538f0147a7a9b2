//! Quickstart: the `Calculator` service (in `shared/calculator.rs`), served over stdio and
//! called through its generated typed client.
//!
//! `cargo run --example calculator` starts this program again as a worker (`--worker`:
//! serve the protocol on stdin/stdout), connects `CalculatorClient` to it with an `exec:`
//! address and calls every method. Any vgi-rpc client, the Python reference included, can
//! talk to the same worker.

#[path = "shared/calculator.rs"]
mod calculator;

use anyhow::bail;
use calculator::{CalculatorClient, Sample, Tick};
use vgi_rpc::{ArrowRecord, RecordRows};

fn main() -> anyhow::Result<()> {
    if calculator::serve_if_worker()? {
        return Ok(());
    }
    let mut calc = CalculatorClient::connect(&calculator::worker_address()?)?;
    calc.client_mut().set_log_handler(|log| {
        println!("server log [{}]: {}", log.level, log.message);
    });

    println!("add(2, 3) = {}", calc.add(2.0, 3.0)?);

    match calc.divide(1.0, 0.0) {
        Err(vgi_rpc::Error::Rpc(e)) => println!(
            "divide(1, 0) failed: {}: {} ({})",
            e.error_type,
            e.message,
            e.code.as_str()
        ),
        other => bail!("divide(1, 0) should fail with a ValueError, got {other:?}"),
    }

    // `greeting` has a declared default: the `_with_defaults` variant fills it in.
    println!(
        "greet(\"Ada\") = {}",
        calc.greet_with_defaults("Ada".into())?
    );
    println!(
        "greet(\"Bob\", \"Hi\") = {}",
        calc.greet("Bob".into(), "Hi".into())?
    );

    // A producer stream read as typed records, across its batches.
    let values: Vec<i64> = calc
        .countdown(3)?
        .into_rows::<Tick>()
        .map(|tick| tick.map(|t| t.value))
        .collect::<vgi_rpc::Result<_>>()?;
    println!("countdown(3) = {values:?}");

    let mut scale = calc.scale(10.0)?;
    for input in [vec![1.0, 2.0], vec![0.5]] {
        let batch = Sample::to_batch(input.iter().map(|&value| Sample { value }).collect())?;
        let output: Vec<f64> = scale
            .exchange(&batch)?
            .rows::<Sample>()?
            .into_iter()
            .map(|s| s.value)
            .collect();
        println!("scale(10) {input:?} -> {output:?}");
    }
    scale.close()?;
    Ok(())
}

//! Drives an exchange stream: one output batch per input batch, in lockstep.
//!
//! `cargo run --example exchange` starts a `Calculator` worker (this program with
//! `--worker`), opens `scale(2.5)` through the typed client and sends three batches of
//! different sizes, printing each answer, then closes the stream. A second session is
//! cancelled mid-way; the connection then serves an ordinary call.

#[path = "shared/calculator.rs"]
mod calculator;

use calculator::{CalculatorClient, Sample};
use vgi_rpc::{ArrowRecord, RecordRows};

fn main() -> anyhow::Result<()> {
    if calculator::serve_if_worker()? {
        return Ok(());
    }
    let mut calc = CalculatorClient::connect(&calculator::worker_address()?)?;

    let mut session = calc.scale(2.5)?;
    for input in [vec![1.0], vec![2.0, 4.0], vec![-1.0, 0.0, 10.0]] {
        let batch = Sample::to_batch(input.iter().map(|&value| Sample { value }).collect())?;
        let output = session.exchange(&batch)?;
        let values: Vec<f64> = output.rows::<Sample>()?.iter().map(|s| s.value).collect();
        println!("scale(2.5): {input:?} -> {values:?}");
    }
    session.close()?;

    let mut session = calc.scale(-1.0)?;
    let batch = Sample::to_batch(vec![Sample { value: 3.0 }])?;
    let output = session.exchange(&batch)?;
    println!(
        "scale(-1): [3.0] -> {:?}, then cancel",
        output
            .rows::<Sample>()?
            .iter()
            .map(|s| s.value)
            .collect::<Vec<_>>()
    );
    session.cancel()?;

    println!("add(2, 2) = {}", calc.add(2.0, 2.0)?);
    Ok(())
}

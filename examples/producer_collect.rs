//! Streams a producer method into a `Vec<RecordBatch>`.
//!
//! `cargo run --example producer_collect` starts a `Calculator` worker (this program with
//! `--worker`), calls `countdown(5)` through the typed client and collects every batch: a `ProducerStream` is an iterator of
//! `Result<RecordBatch>`, so `collect::<Result<Vec<_>>>()` gathers the whole stream or
//! stops at the first error. A second stream is cut short with `cancel`.

#[path = "shared/calculator.rs"]
mod calculator;

use arrow_array::RecordBatch;
use calculator::{CalculatorClient, Tick};
use vgi_rpc::RecordRows;

fn main() -> anyhow::Result<()> {
    if calculator::serve_if_worker()? {
        return Ok(());
    }
    let mut calc = CalculatorClient::connect(&calculator::worker_address()?)?;

    let stream = calc.countdown(5)?;
    // `countdown` declares no header, so `header()` is `&()`; a method returning
    // `Producer<S, H>` gives a decoded `&H` here, before any batch is requested.
    let () = stream.header();
    let batches: Vec<RecordBatch> = stream.collect::<vgi_rpc::Result<_>>()?;
    let rows_total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!("collected {} batches, {rows_total} rows", batches.len());
    for (i, batch) in batches.iter().enumerate() {
        let values: Vec<i64> = batch.rows::<Tick>()?.iter().map(|t| t.value).collect();
        println!("  batch {i}: {values:?}");
    }

    // Take only what is needed, then cancel: the server stops producing.
    let mut stream = calc.countdown(1_000)?;
    let first_two: Vec<RecordBatch> = stream.by_ref().take(2).collect::<vgi_rpc::Result<_>>()?;
    stream.cancel()?;
    println!(
        "took {} batches of countdown(1000), then cancelled",
        first_two.len()
    );

    // The connection is ready for the next call.
    println!("add(1, 1) = {}", calc.add(1.0, 1.0)?);
    Ok(())
}

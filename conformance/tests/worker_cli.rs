//! The worker binary, run for real: its command line, and a few calls over its pipes
//! through the runtime's client (the full acceptance test is the reference's
//! `vgi-rpc-test --cmd <worker>`).

use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};
use vgi_rpc::transport::Address;

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");

fn run(args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(WORKER)
        .args(args)
        .stdin(Stdio::null())
        .output()?)
}

#[test]
fn help_exits_zero() -> Result<()> {
    let out = run(&["--help"])?;
    ensure!(out.status.success());
    ensure!(String::from_utf8_lossy(&out.stdout).contains("usage:"));
    Ok(())
}

#[test]
fn unknown_flags_are_refused() -> Result<()> {
    let out = run(&["--bogus"])?;
    ensure!(out.status.code() == Some(2), "{:?}", out.status);
    ensure!(String::from_utf8_lossy(&out.stderr).contains("unrecognized arguments: --bogus"));
    ensure!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn bad_flag_values_exit_two() -> Result<()> {
    let out = run(&[
        "--pipe",
        "--fake-storage",
        "http://127.0.0.1:1",
        "--externalize-threshold",
        "-1",
    ])?;
    ensure!(out.status.code() == Some(2), "{:?}", out.status);
    ensure!(String::from_utf8_lossy(&out.stderr).contains("--externalize-threshold must be >= 0"));
    let out = run(&["--http", "0", "--token-key", "abc"])?;
    ensure!(out.status.code() == Some(2), "{:?}", out.status);
    ensure!(String::from_utf8_lossy(&out.stderr).contains("expected 64 hex digits"));
    Ok(())
}

#[test]
fn stdin_eof_exits_cleanly_without_output() -> Result<()> {
    let out = run(&["--pipe", "--describe"])?;
    ensure!(out.status.success(), "{:?}", out.status);
    ensure!(out.stdout.is_empty(), "{} stray bytes", out.stdout.len());
    Ok(())
}

fn one_column(name: &str, column: ArrayRef) -> Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter([(name, column)])?)
}

fn string_result(batch: Option<&RecordBatch>) -> Result<String> {
    let batch = batch.context("no result batch")?;
    Ok(batch.column(0).as_string::<i32>().value(0).to_owned())
}

#[test]
fn serves_both_protocols_over_pipes() -> Result<()> {
    let mut worker = Client::connect_with(
        &Address::Exec(vec![WORKER.to_owned()]),
        ConnectOptions::default(),
    )?;
    let conn = &mut worker;
    let primary = Target::new("ConformanceService", Some("2.0.0"));
    let secondary = Target::new("conformance.Secondary.v1", None);
    let value = one_column("value", Arc::new(StringArray::from(vec!["hi"])))?;

    let echoed = conn.call(&primary, "echo_string", &value, &CallOptions::default())?;
    ensure!(string_result(echoed.batch.as_ref())? == "hi");
    let echoed = conn.call(&secondary, "echo_string", &value, &CallOptions::default())?;
    ensure!(string_result(echoed.batch.as_ref())? == "secondary:hi");

    let logged = conn.call(
        &primary,
        "echo_with_info_log",
        &value,
        &CallOptions::default(),
    )?;
    ensure!(logged.logs.len() == 1 && logged.logs[0].message == "info: hi");

    let count = one_column("count", Arc::new(Int64Array::from(vec![2_i64])))?;
    let mut stream = conn.open_stream(&primary, "produce_n", &count, &CallOptions::default())?;
    let mut values = Vec::new();
    while let Some(batch) = stream.tick()? {
        values.push(batch.column(1).as_primitive::<Int64Type>().value(0));
    }
    ensure!(values == [0, 10], "{values:?}");
    Ok(())
}

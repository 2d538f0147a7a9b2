//! Quickstart: a calculator service, served over stdio and called from the same binary.
//!
//! `cargo run --example calculator` starts this program again as a worker (`--worker`:
//! serve the `Calculator` protocol on stdin/stdout) and calls every method through the
//! minimal call engine in [`vgi_rpc::client`]. Any vgi-rpc client, the Python reference
//! included, can talk to the same worker.

use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use vgi_rpc::Server;
use vgi_rpc::client::{Subprocess, Target, UnaryResult};
use vgi_rpc::prelude::*;
use vgi_rpc::server::ProtocolSpec;

/// A small calculator: unary arithmetic, a greeting, a producer and an exchange stream.
#[vgi_rpc::service(protocol = "Calculator", version = "1.0.0")]
pub trait Calculator: Send + Sync + 'static {
    /// Add two numbers.
    fn add(&self, a: f64, b: f64) -> Result<f64>;
    /// Divide `a` by `b`; dividing by zero fails with a `ValueError`.
    fn divide(&self, a: f64, b: f64) -> Result<f64>;
    /// Greet `name` (the greeting defaults to "Hello"), logging the greeting too.
    fn greet(
        &self,
        ctx: &CallContext,
        name: String,
        #[vgi(default = "Hello")] greeting: String,
    ) -> Result<String>;
    /// Count down from `n` to 1, one row per tick.
    fn countdown(&self, n: i64) -> Result<Producer<Countdown>>;
    /// Multiply the `value` column of every input batch by `factor`.
    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>>;
}

/// One row of `countdown` output.
#[derive(Debug, ArrowRecord)]
pub struct Tick {
    /// The number counted.
    pub value: i64,
}

/// The rows `scale` reads and writes.
#[derive(Debug, ArrowRecord)]
pub struct Sample {
    /// The number to scale.
    pub value: f64,
}

/// The `countdown` stream: emits `next`, `next - 1`, ..., 1, then finishes.
pub struct Countdown {
    next: i64,
}

impl ProducerState for Countdown {
    fn output_schema(&self) -> SchemaRef {
        Tick::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.next <= 0 {
            turn.finish();
            return Ok(());
        }
        turn.emit_rows(vec![Tick { value: self.next }])?;
        self.next -= 1;
        Ok(())
    }
}

/// The `scale` stream: answers each input batch with its values times `factor`.
pub struct Scaler {
    factor: f64,
}

impl ExchangeState for Scaler {
    fn input_schema(&self) -> SchemaRef {
        Sample::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        Sample::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let scaled = sample_values(&input)?.into_iter().map(|v| v * self.factor);
        turn.emit_rows(scaled.map(|value| Sample { value }).collect())
    }
}

/// The `value` of every row of a [`Sample`] batch.
fn sample_values(batch: &RecordBatch) -> Result<Vec<f64>> {
    (0..batch.num_rows())
        .map(|row| Ok(Sample::from_batch(batch, row)?.value))
        .collect()
}

/// The implementation behind the worker.
struct MyCalc;

impl Calculator for MyCalc {
    fn add(&self, a: f64, b: f64) -> Result<f64> {
        Ok(a + b)
    }

    fn divide(&self, a: f64, b: f64) -> Result<f64> {
        if b == 0.0 {
            return Err(RpcError::value_error("division by zero").into());
        }
        Ok(a / b)
    }

    fn greet(&self, ctx: &CallContext, name: String, greeting: String) -> Result<String> {
        ctx.log(LogLevel::Info, format!("greeting {name}"));
        Ok(format!("{greeting}, {name}!"))
    }

    fn countdown(&self, n: i64) -> Result<Producer<Countdown>> {
        Ok(Producer::new(Countdown { next: n }))
    }

    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>> {
        Ok(Exchange::new(Scaler { factor }))
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--worker") {
        // Worker mode: stdout carries only Arrow IPC from here on.
        vgi_rpc::serve_stdio(
            Server::builder()
                .service(CalculatorServer::new(MyCalc))
                .build()?,
        )?;
        return Ok(());
    }

    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--worker");
    let mut worker = Subprocess::spawn(command)?;
    let conn = worker.connection();
    let calc = Target::new("Calculator", Some("1.0.0"));
    let spec = CalculatorServer::spec();

    let args = request(&spec, "add", vec![float(2.0), float(3.0)])?;
    let sum = conn.call(&calc, "add", &args)?;
    println!("add(2, 3) = {}", result::<f64>(&sum)?);

    let args = request(&spec, "divide", vec![float(1.0), float(0.0)])?;
    match conn.call(&calc, "divide", &args) {
        Err(vgi_rpc::Error::Rpc(e)) => {
            println!("divide(1, 0) failed: {}: {}", e.error_type, e.message)
        }
        other => bail!("divide(1, 0) should fail with a ValueError, got {other:?}"),
    }

    // This engine sends every parameter; typed clients fill in declared defaults.
    let args = request(&spec, "greet", vec![text("Ada"), text("Hello")])?;
    let greeting = conn.call(&calc, "greet", &args)?;
    for log in &greeting.logs {
        println!("server log [{}]: {}", log.level, log.message);
    }
    println!("greet(\"Ada\") = {}", result::<String>(&greeting)?);

    let args = request(&spec, "countdown", vec![int(3)])?;
    let mut countdown = conn.open_stream(&calc, "countdown", &args, false)?;
    let mut values = Vec::new();
    while let Some(batch) = countdown.tick()? {
        values.push(Tick::from_batch(&batch, 0)?.value);
    }
    countdown.close()?;
    println!("countdown(3) = {values:?}");

    let args = request(&spec, "scale", vec![float(10.0)])?;
    let mut scale = conn.open_stream(&calc, "scale", &args, false)?;
    for input in [vec![1.0, 2.0], vec![0.5]] {
        let rows = input.iter().map(|&value| Sample { value }).collect();
        let output = scale.exchange(&Sample::to_batch(rows)?)?;
        println!("scale(10) {input:?} -> {:?}", sample_values(&output)?);
    }
    scale.close()?;
    Ok(())
}

/// A one-row request batch for `method`, on the parameter schema the service declares.
fn request(
    spec: &ProtocolSpec,
    method: &str,
    columns: Vec<ArrayRef>,
) -> anyhow::Result<RecordBatch> {
    let index = spec
        .method_index(method)
        .with_context(|| format!("no method {method}"))?;
    Ok(RecordBatch::try_new(
        spec.methods[index].params.clone(),
        columns,
    )?)
}

fn int(value: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![value]))
}

fn float(value: f64) -> ArrayRef {
    Arc::new(Float64Array::from(vec![value]))
}

fn text(value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value]))
}

/// The `result` value of a unary answer.
fn result<T: ArrowValue>(answer: &UnaryResult) -> anyhow::Result<T> {
    let batch = answer
        .batch
        .as_ref()
        .context("the method returned no value")?;
    T::from_array(batch.column(0).as_ref(), 0)?.context("the result is null")
}

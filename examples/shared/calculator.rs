//! The `Calculator` service shared by the examples: the trait (from which
//! `#[vgi_rpc::service]` generates `CalculatorServer` and `CalculatorClient`), its
//! implementation, and the worker mode every example binary has.
//!
//! The Python client test (`tests/python`) mirrors this trait: change both together.
//!
//! Each example starts itself again with `--worker` as a subprocess (`exec:` address) and
//! talks to it over its stdin/stdout, so `cargo run --example NAME` needs no setup.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use vgi_rpc::Server;
use vgi_rpc::prelude::*;

/// A small calculator: unary arithmetic, a greeting, a producer and an exchange stream.
#[vgi_rpc::service(protocol = "Calculator", version = "1.0.0")]
pub(crate) trait Calculator: Send + Sync + 'static {
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
pub(crate) struct Tick {
    /// The number counted.
    pub(crate) value: i64,
}

/// The rows `scale` reads and writes.
#[derive(Debug, ArrowRecord)]
pub(crate) struct Sample {
    /// The number to scale.
    pub(crate) value: f64,
}

/// The `countdown` stream: emits `next`, `next - 1`, ..., 1, then finishes.
pub(crate) struct Countdown {
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
pub(crate) struct Scaler {
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
        let scaled = input.rows::<Sample>()?.into_iter().map(|s| Sample {
            value: s.value * self.factor,
        });
        turn.emit_rows(scaled.collect())
    }
}

/// The implementation behind the worker.
pub(crate) struct MyCalc;

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

/// Worker mode: when started with `--worker`, serves `Calculator` on stdin/stdout and
/// returns `true` once the client has gone (stdout carries only Arrow IPC meanwhile).
///
/// # Errors
/// Transport errors of the serve loop.
pub(crate) fn serve_if_worker() -> anyhow::Result<bool> {
    if !std::env::args().any(|arg| arg == "--worker") {
        return Ok(false);
    }
    let server = Server::builder()
        .service(CalculatorServer::new(MyCalc))
        .build()?;
    vgi_rpc::serve_stdio(server)?;
    Ok(true)
}

/// The `exec:` address that starts this program as a worker.
///
/// # Errors
/// When the path of the running program is unknown.
pub(crate) fn worker_address() -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    Ok(format!("exec:{} --worker", shell_quote(&exe)))
}

/// `path` in single quotes, as `exec:` command lines are split like a POSIX shell does.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

//! A typed client calling a `Calculator` worker at any address.
//!
//! `cargo run --example calculator_client` starts this program as its own worker
//! (`exec:<this program> --worker`); `cargo run --example calculator_client -- ADDRESS`
//! calls another one instead, e.g. `unix:/tmp/calc.sock` or `exec:python calc_worker.py`.
//! It shows per-call options (a timeout), the log handler, typed errors and defaults.

#[path = "shared/calculator.rs"]
mod calculator;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use calculator::CalculatorClient;
use vgi_rpc::client::CallOptions;

fn main() -> anyhow::Result<()> {
    if calculator::serve_if_worker()? {
        return Ok(());
    }
    let address = match std::env::args().nth(1) {
        Some(address) => address,
        None => calculator::worker_address()?,
    };
    println!("connecting to {address}");

    // Default options go with every call: here, a 5 s deadline per call.
    let options = CallOptions::default().with_timeout(Duration::from_secs(5));
    let mut calc = CalculatorClient::connect(&address)?.with_options(options);
    // One call may take its own options without changing the defaults.
    let quick = CallOptions::default().with_timeout(Duration::from_millis(500));
    println!(
        "add(1, 1) = {} (500 ms deadline)",
        calc.call_with(quick).add(1.0, 1.0)?
    );

    // Server logs reach a handler on the inner client, whatever method sends them.
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&logs);
    calc.client_mut().set_log_handler(move |record| {
        if let Ok(mut logs) = sink.lock() {
            logs.push(format!("[{}] {}", record.level, record.message));
        }
    });

    let sum = calc.add(0.1, 0.2)?;
    println!("add(0.1, 0.2) = {sum}");
    println!("divide(10, 4) = {}", calc.divide(10.0, 4.0)?);

    // A remote error is `Error::Rpc` with the server's type, code and message; the
    // connection stays usable.
    if let Err(vgi_rpc::Error::Rpc(e)) = calc.divide(1.0, 0.0) {
        println!(
            "divide(1, 0) -> {} [{}]: {}",
            e.error_type,
            e.code.as_str(),
            e.message
        );
    }

    println!(
        "greet_with_defaults(\"Ada\") = {}",
        calc.greet_with_defaults("Ada".into())?
    );
    println!(
        "greet(\"Ada\", \"Welcome\") = {}",
        calc.greet("Ada".into(), "Welcome".into())?
    );
    let logs = logs.lock().map(|logs| logs.clone()).unwrap_or_default();
    println!("server logs received: {logs:?}");
    Ok(())
}

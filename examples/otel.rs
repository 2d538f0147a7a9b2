//! OpenTelemetry: the `Calculator` worker and its client, both instrumented, exporting
//! spans and metrics over OTLP/HTTP (needs the `otel-otlp` feature).
//!
//! ```text
//! cargo run --example otel --features otel-otlp -- --otlp-endpoint http://localhost:4318
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 cargo run --example otel --features otel-otlp
//! ```
//!
//! The client makes a CLIENT span per call (`vgi_rpc/add`, ...) and sends its context in
//! the request's `traceparent`; the worker (this program again, started with `exec:`)
//! makes the SERVER span `vgi_rpc/add` as its child, with the reference implementation's
//! attributes, and both count calls (`rpc.client.*`, `rpc.server.*`). The telemetry
//! comes from the installed pipeline's guard, which hands spans straight to the
//! exporter's thread; export runs in batches there; dropping the guard flushes it.

#[path = "shared/calculator.rs"]
mod calculator;

#[cfg(feature = "otel-otlp")]
fn main() -> anyhow::Result<()> {
    use std::sync::Arc;

    use calculator::{CalculatorClient, CalculatorServer, MyCalc};
    use vgi_rpc::client::ConnectOptions;
    use vgi_rpc::otel::{ServerTelemetryConfig, otlp};

    // This example's worker mode is its own (it installs the exporter first).
    let _ = calculator::serve_if_worker;
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args
        .iter()
        .position(|a| a == "--otlp-endpoint")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if args.iter().any(|a| a == "--worker") {
        let guard = otlp::install(endpoint.as_deref(), "calculator-worker")?;
        let server = vgi_rpc::Server::builder()
            .service(CalculatorServer::new(MyCalc))
            .hook(Arc::new(
                guard.server_telemetry(ServerTelemetryConfig::default()),
            ))
            .build()?;
        vgi_rpc::serve_stdio(server)?;
        drop(guard);
        return Ok(());
    }
    let guard = otlp::install(endpoint.as_deref(), "calculator-client")?;
    let mut address = calculator::worker_address()?;
    if let Some(url) = &endpoint {
        address.push_str(&format!(" --otlp-endpoint '{url}'"));
    }
    let options = ConnectOptions::default().with_observer(Arc::new(guard.client_telemetry()));
    let mut calc = CalculatorClient::connect_with(&address, options)?;
    println!("add(2, 3) = {}", calc.add(2.0, 3.0)?);
    println!("divide(1, 0) fails: {}", calc.divide(1.0, 0.0).is_err());
    drop(calc);
    drop(guard);
    Ok(())
}

#[cfg(not(feature = "otel-otlp"))]
fn main() {
    let _ = (calculator::worker_address, calculator::serve_if_worker);
    eprintln!("build with --features otel-otlp");
}

//! OpenTelemetry across implementations, checked on the wire: every export goes over
//! OTLP/HTTP (protobuf) to `tests/python/otel/otlp_receiver.py`, which decodes it with
//! the official `opentelemetry-proto` messages.
//!
//! - The reference client, with the OpenTelemetry SDK active, runs one scenario (unary,
//!   producer, exchange, a failing call, a cancelled stream) against our worker and
//!   against the reference worker instrumented with `vgi_rpc.otel.instrument_server`;
//!   our server spans are children of the client's span, and the two exports — spans,
//!   attribute names and values, statuses, events and metric points — are equal once
//!   the by-nature differences are masked (`otel_summary.py` says which).
//! - Our worker does so twice: its spans straight to the exporter (the OTLP set-up's
//!   own telemetry) and through the global tracer (`ServerTelemetry::new`).
//! - Our client, with `ClientTelemetry` and the OTLP set-up of `vgi_rpc::otel::otlp`
//!   (both ways too), calls the instrumented reference worker: each of its server spans is a child of our
//!   CLIENT span for that call, and our client's spans and `rpc.client.*` points say what
//!   happened (the remote error's type and code included).
//! - Over HTTP, our client and our worker: the trace context travels in the request
//!   metadata and in the `traceparent` header, so every request of a stream (its start
//!   and each exchange turn, one server span each, as in the reference) is a child of
//!   the client's stream span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "otel/identity.rs"]
mod identity;
#[path = "otel/support.rs"]
mod support;

use support::*;
use vgi_rpc_conformance::announce::spawn_announcing;

#[test]
fn the_reference_client_parents_our_server_spans_and_both_exports_agree() {
    let python = python();
    let python = python.to_str().unwrap();

    let reference = Receiver::start(&scratch("reference"));
    let worker = script("ref_otel_worker.py");
    let (ref_span, ref_trace) = reference_client(
        &[python, &worker],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &reference.url)],
    );
    let reference_summary = reference.summary(&ref_span, &ref_trace);

    // Our worker's spans straight to the exporter (`OtlpGuard::server_telemetry`), and
    // through the global tracer (`ServerTelemetry::new`): the same export either way.
    for path in [&[][..], &["--otel-through-tracer"][..]] {
        let ours = Receiver::start(&scratch(if path.is_empty() {
            "ours"
        } else {
            "ours-tracer"
        }));
        let mut args = vec![WORKER, "--otlp-endpoint", &ours.url];
        args.extend_from_slice(path);
        let (span, trace) = reference_client(&args, &[]);
        let ours_summary = ours.summary(&span, &trace);
        agrees_with_the_reference(&ours_summary, &reference_summary);
    }
}

/// Our worker's export summary is the reference's.
fn agrees_with_the_reference(ours_summary: &Value, reference_summary: &Value) {
    let spans = ours_summary["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "vgi_rpc/echo_string",
            "vgi_rpc/produce_n",
            "vgi_rpc/exchange_scale",
            "vgi_rpc/raise_value_error",
            "vgi_rpc/cancellable_producer",
        ]
    );
    for span in spans {
        assert_eq!(span["kind"], "SPAN_KIND_SERVER");
        assert_eq!(span["trace_is_root"], true, "{span}");
        assert_eq!(span["parent_is_root"], true, "{span}");
    }
    let error = &spans[3];
    assert_eq!(error["attributes"]["rpc.vgi_rpc.error_type"], "ValueError");
    assert_eq!(error["status"]["code"], "STATUS_CODE_ERROR");
    for (i, (a, b)) in spans
        .iter()
        .zip(reference_summary["spans"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(a, b, "span {i} differs from the reference's");
    }
    let points = &ours_summary["metrics"]["rpc.server.requests"]["points"];
    assert_eq!(points.as_array().unwrap().len(), 5, "{points:#}");
    assert_eq!(ours_summary["spans"], reference_summary["spans"]);
    assert_eq!(ours_summary["metrics"], reference_summary["metrics"]);
}

#[test]
fn our_client_parents_the_reference_server_spans() {
    our_client_calls_the_reference_worker(true);
}

#[test]
fn our_client_through_the_global_tracer_parents_the_reference_server_spans() {
    our_client_calls_the_reference_worker(false);
}

/// Our client (spans straight to the exporter when `direct`, else through the global
/// tracer) calls the instrumented reference worker.
fn our_client_calls_the_reference_worker(direct: bool) {
    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};

    let _serial = GLOBAL_PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    let receiver = Receiver::start(&scratch(if direct { "client" } else { "client-tracer" }));
    let guard = vgi_rpc::otel::otlp::install(Some(&receiver.url), "otel-test-client").unwrap();
    let telemetry = if direct {
        guard.client_telemetry()
    } else {
        vgi_rpc::otel::ClientTelemetry::new()
    };
    let options = ConnectOptions::default().with_observer(Arc::new(telemetry));
    let address = format!(
        "exec:env OTEL_EXPORTER_OTLP_ENDPOINT={} {} {}",
        receiver.url,
        python().display(),
        script("ref_otel_worker.py")
    );
    let mut client = Client::connect_with(&address.parse().unwrap(), options).unwrap();
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let call = CallOptions::default();
    let one = |name: &str, ty: DataType, value: Arc<dyn arrow_array::Array>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(name, ty, false)])),
            vec![value],
        )
        .unwrap()
    };
    let text = |v: &str| Arc::new(arrow_array::StringArray::from(vec![v])) as _;
    let answer = client
        .call(
            &target,
            "echo_string",
            &one("value", DataType::Utf8, text("hi")),
            &call,
        )
        .unwrap();
    assert!(answer.batch.is_some());
    // Parameterless calls repeat their request but for the traceparent: the client
    // writes each call's own into the bytes it kept (the reference must read it).
    let void = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .unwrap();
    for _ in 0..3 {
        client.call(&target, "void_noop", &void, &call).unwrap();
    }
    let mut stream = client
        .open_stream(
            &target,
            "exchange_scale",
            &one(
                "factor",
                DataType::Float64,
                Arc::new(Float64Array::from(vec![2.0])),
            ),
            &call,
        )
        .unwrap();
    let out = stream
        .exchange(&one(
            "value",
            DataType::Float64,
            Arc::new(Float64Array::from(vec![1.0, 2.0])),
        ))
        .unwrap();
    assert_eq!(out.num_rows(), 2);
    stream.close().unwrap();
    let failed = client.call(
        &target,
        "raise_value_error",
        &one("message", DataType::Utf8, text("boom")),
        &call,
    );
    assert!(failed.is_err());
    drop(client);
    guard.flush();
    drop(guard);

    let requests = receiver.requests(Duration::from_secs(20));
    // Wait for the reference worker's export too (it flushes when its stdin closes).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut all = spans(&requests);
    while all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_SERVER")
        .count()
        < 6
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
        all = spans(&receiver.requests(Duration::ZERO));
    }
    let clients = of_kind(&all, "SPAN_KIND_CLIENT");
    let servers = of_kind(&all, "SPAN_KIND_SERVER");
    assert_eq!(clients.len(), 6, "{all:#?}");
    assert_eq!(servers.len(), 6, "{all:#?}");
    let parents: std::collections::HashSet<_> =
        servers.iter().map(|s| &s["parent_span_id"]).collect();
    assert_eq!(parents.len(), 6, "each call carries its own span: {all:#?}");
    for server in &servers {
        let parent = clients
            .iter()
            .find(|c| c["span_id"] == server["parent_span_id"])
            .unwrap_or_else(|| panic!("no client span parents {server:#}"));
        assert_eq!(parent["trace_id"], server["trace_id"]);
        assert_eq!(parent["name"], server["name"]);
    }
    let error = clients
        .iter()
        .find(|c| c["name"] == "vgi_rpc/raise_value_error")
        .unwrap();
    assert_eq!(error["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(error["status"]["message"], "boom");
    assert_eq!(
        attribute(error, "rpc.vgi_rpc.error_type").unwrap()["string_value"],
        "ValueError"
    );
    assert_eq!(
        attribute(error, "rpc.vgi_rpc.error_code").unwrap()["string_value"],
        "UNKNOWN"
    );
    let exchange = clients
        .iter()
        .find(|c| c["name"] == "vgi_rpc/exchange_scale")
        .unwrap();
    assert_eq!(exchange["status"]["code"], "STATUS_CODE_OK");
    assert_eq!(
        attribute(exchange, "rpc.vgi_rpc.method_type").unwrap()["string_value"],
        "stream"
    );

    // Our client's metric points: one per call, by method and outcome.
    let metrics: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v1/metrics")
        .flat_map(|r| r["body"]["resource_metrics"].as_array().unwrap())
        .filter(|rm| {
            rm["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["value"]["string_value"] == "otel-test-client")
        })
        .flat_map(|rm| rm["scope_metrics"].as_array().unwrap())
        .flat_map(|sm| sm["metrics"].as_array().unwrap())
        .collect();
    let requests_metric = metrics
        .iter()
        .rev()
        .find(|m| m["name"] == "rpc.client.requests")
        .expect("rpc.client.requests");
    let points = requests_metric["sum"]["data_points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    let noop_point = points
        .iter()
        .find(|p| attribute(p, "rpc.method").unwrap()["string_value"] == "void_noop")
        .unwrap();
    assert_eq!(noop_point["as_int"], "3", "{noop_point:#}");
    let error_point = points
        .iter()
        .find(|p| attribute(p, "status").unwrap()["string_value"] == "error")
        .unwrap();
    assert_eq!(
        attribute(error_point, "rpc.method").unwrap()["string_value"],
        "raise_value_error"
    );
    assert!(metrics.iter().any(|m| m["name"] == "rpc.client.duration"));
}

#[test]
fn over_http_every_turn_of_a_stream_is_a_child_of_the_client_span() {
    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};

    let _serial = GLOBAL_PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    let receiver = Receiver::start(&scratch("http"));
    let (mut worker, port) = spawn_announcing(Command::new(WORKER).args([
        "--http",
        "0",
        "--otlp-endpoint",
        &receiver.url,
    ]))
    .unwrap();

    let guard = vgi_rpc::otel::otlp::install(Some(&receiver.url), "otel-test-http-client").unwrap();
    let options = ConnectOptions::default().with_observer(Arc::new(guard.client_telemetry()));
    let address = format!("http://127.0.0.1:{port}");
    let mut client = Client::connect_with(&address.parse().unwrap(), options).unwrap();
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let call = CallOptions::default();
    let floats = |name: &str, v: Vec<f64>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                name,
                DataType::Float64,
                false,
            )])),
            vec![Arc::new(Float64Array::from(v))],
        )
        .unwrap()
    };
    let mut stream = client
        .open_stream(
            &target,
            "exchange_scale",
            &floats("factor", vec![2.0]),
            &call,
        )
        .unwrap();
    for _ in 0..2 {
        let out = stream.exchange(&floats("value", vec![1.0, 2.0])).unwrap();
        assert_eq!(out.num_rows(), 2);
    }
    stream.close().unwrap();
    drop(client);
    drop(guard);
    stop_gracefully(&mut worker);

    let all = spans(&receiver.requests(Duration::from_secs(20)));
    let clients = of_kind(&all, "SPAN_KIND_CLIENT");
    let servers = of_kind(&all, "SPAN_KIND_SERVER");
    assert_eq!(clients.len(), 1, "{all:#?}");
    // The stream's start and its two exchange turns.
    assert_eq!(servers.len(), 3, "{all:#?}");
    for server in &servers {
        assert_eq!(server["name"], "vgi_rpc/exchange_scale");
        assert_eq!(
            server["parent_span_id"], clients[0]["span_id"],
            "{server:#}"
        );
        assert_eq!(server["trace_id"], clients[0]["trace_id"]);
    }
}

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
//! - Our client, with `ClientTelemetry` and the OTLP set-up of `vgi_rpc::otel::otlp`,
//!   calls the instrumented reference worker: each of its server spans is a child of our
//!   CLIENT span for that call, and our client's spans and `rpc.client.*` points say what
//!   happened (the remote error's type and code included).
//! - Over HTTP, our client and our worker: the trace context travels in the request
//!   metadata and in the `traceparent` header, so every request of a stream (its start
//!   and each exchange turn, one server span each, as in the reference) is a child of
//!   the client's stream span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vgi_rpc_conformance::matrix::{ensure_python_venv, python_venv};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");

/// Tests that install this process's global OpenTelemetry providers run one at a time.
static GLOBAL_PROVIDERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/otel");

fn python() -> PathBuf {
    python_venv()
        .or_else(|| ensure_python_venv().ok())
        .expect("the reference venv (scripts/python-venv.sh)")
        .join("bin/python")
}

fn script(name: &str) -> String {
    format!("{SCRIPTS}/{name}")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vgi-otel-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The OTLP receiver: decodes into `capture` (one JSON request per line).
struct Receiver {
    child: Child,
    url: String,
    capture: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let capture = dir.join("capture.jsonl");
        let mut child = Command::new(python())
            .arg(script("otlp_receiver.py"))
            .arg(&capture)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT:").expect("PORT:<n>");
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            capture,
        }
    }

    /// The decoded requests, once both signals arrived (or after `timeout`).
    fn requests(&self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.capture).unwrap_or_default();
            let requests: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let has = |p: &str| requests.iter().any(|r| r["path"] == p);
            if (has("/v1/traces") && has("/v1/metrics")) || Instant::now() > deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `otel_summary.py`'s canonical summary, relative to the client's root span.
    fn summary(&self, root_span: &str, root_trace: &str) -> Value {
        self.requests(Duration::from_secs(20));
        let out = Command::new(python())
            .arg(script("otel_summary.py"))
            .args([self.capture.to_str().unwrap(), root_span, root_trace])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `py_otel_client.py` against `worker`; the client root span's ids.
fn reference_client(worker: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(python())
        .arg(script("py_otel_client.py"))
        .args(worker)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "reference client failed");
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        ids["span_id"].as_str().unwrap().to_owned(),
        ids["trace_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_reference_client_parents_our_server_spans_and_both_exports_agree() {
    let python = python();
    let python = python.to_str().unwrap();

    let ours = Receiver::start(&scratch("ours"));
    let (span, trace) = reference_client(&[WORKER, "--otlp-endpoint", &ours.url], &[]);
    let ours_summary = ours.summary(&span, &trace);

    let reference = Receiver::start(&scratch("reference"));
    let worker = script("ref_otel_worker.py");
    let (ref_span, ref_trace) = reference_client(
        &[python, &worker],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &reference.url)],
    );
    let reference_summary = reference.summary(&ref_span, &ref_trace);

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

/// The spans of a capture, flattened: `(scope span record, resource service name)`.
fn spans(requests: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in requests.iter().filter(|r| r["path"] == "/v1/traces") {
        for rs in r["body"]["resource_spans"].as_array().unwrap() {
            for ss in rs["scope_spans"].as_array().unwrap() {
                out.extend(ss["spans"].as_array().unwrap().iter().cloned());
            }
        }
    }
    out
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn our_client_parents_the_reference_server_spans() {
    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Target};

    let _serial = GLOBAL_PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    let receiver = Receiver::start(&scratch("client"));
    let guard = vgi_rpc::otel::otlp::install(Some(&receiver.url), "otel-test-client").unwrap();
    let options =
        ConnectOptions::default().with_observer(Arc::new(vgi_rpc::otel::ClientTelemetry::new()));
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
        < 3
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
        all = spans(&receiver.requests(Duration::ZERO));
    }
    let clients: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT")
        .collect();
    let servers: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_SERVER")
        .collect();
    assert_eq!(clients.len(), 3, "{all:#?}");
    assert_eq!(servers.len(), 3, "{all:#?}");
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
    assert_eq!(points.len(), 3);
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
    let mut worker = Command::new(WORKER)
        .args(["--http", "0", "--otlp-endpoint", &receiver.url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT:")
        .expect("PORT:<n>")
        .to_owned();

    let guard = vgi_rpc::otel::otlp::install(Some(&receiver.url), "otel-test-http-client").unwrap();
    let options =
        ConnectOptions::default().with_observer(Arc::new(vgi_rpc::otel::ClientTelemetry::new()));
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
    let kill = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(worker.wait().unwrap().success());

    let all = spans(&receiver.requests(Duration::from_secs(20)));
    let clients: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT")
        .collect();
    let servers: Vec<&Value> = all
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_SERVER")
        .collect();
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

/// The caller's identity on the wire, as the reference exports it: principal, domain and
/// `authenticated` on server spans, configured claims (`claim_attributes`, here the
/// worker's `--otel-claim`) on spans only, and the domain — never the principal or a
/// claim — on metric points. An anonymous call says `authenticated: "false"` and nothing
/// else.
#[test]
fn an_authenticated_callers_identity_and_claims_are_on_server_spans_only() {
    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::{CallOptions, Client, ConnectOptions, HttpConnectOptions, Target};
    use vgi_rpc_conformance::identity::{AUTH_TIME_HEADER, PRINCIPAL_HEADER};

    let receiver = Receiver::start(&scratch("identity"));
    let claim_attribute = "rpc.vgi_rpc.auth.claim.auth_time";
    let mut worker = Command::new(WORKER)
        .args([
            "--http",
            "0",
            "--sticky-auth",
            "--otlp-endpoint",
            &receiver.url,
        ])
        .args(["--otel-claim", &format!("auth_time={claim_attribute}")])
        .args(["--otel-claim", "absent=rpc.vgi_rpc.auth.claim.absent"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("PORT:").expect("PORT:<n>");
    let address = format!("http://127.0.0.1:{port}");
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let batch = |v: &str| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(vec![v]))],
        )
        .unwrap()
    };
    let authenticated = ConnectOptions::default().with_http(
        HttpConnectOptions::default()
            .with_header(PRINCIPAL_HEADER, "alice")
            .with_header(AUTH_TIME_HEADER, "1700000000"),
    );
    for (options, value) in [
        (authenticated, "as-alice"),
        (ConnectOptions::default(), "anonymous"),
    ] {
        let mut client = Client::connect_with(&address.parse().unwrap(), options).unwrap();
        let answer = client
            .call(
                &target,
                "echo_string",
                &batch(value),
                &CallOptions::default(),
            )
            .unwrap();
        assert!(answer.batch.is_some());
    }
    let kill = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(worker.wait().unwrap().success());

    let requests = receiver.requests(Duration::from_secs(20));
    let all = spans(&requests);
    assert_eq!(all.len(), 2, "{all:#?}");
    let text = |span: &Value, key: &str| {
        attribute(span, key).map(|v| v["string_value"].as_str().unwrap().to_owned())
    };
    let (alice, anonymous) = (&all[0], &all[1]);
    assert_eq!(alice["name"], "vgi_rpc/echo_string");
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.principal").as_deref(),
        Some("alice")
    );
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.domain").as_deref(),
        Some("conformance")
    );
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.authenticated").as_deref(),
        Some("true")
    );
    assert_eq!(text(alice, claim_attribute).as_deref(), Some("1700000000"));
    assert!(attribute(alice, "rpc.vgi_rpc.auth.claim.absent").is_none());
    assert!(
        text(alice, "client.address")
            .unwrap()
            .starts_with("127.0.0.1")
    );
    assert_eq!(
        text(anonymous, "rpc.vgi_rpc.auth.authenticated").as_deref(),
        Some("false")
    );
    for absent in [
        "rpc.vgi_rpc.auth.principal",
        "rpc.vgi_rpc.auth.domain",
        claim_attribute,
    ] {
        assert!(attribute(anonymous, absent).is_none(), "{absent}");
    }

    // Metric points: by domain, never by principal or claim.
    let points: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v1/metrics")
        .flat_map(|r| r["body"]["resource_metrics"].as_array().unwrap())
        .flat_map(|rm| rm["scope_metrics"].as_array().unwrap())
        .flat_map(|sm| sm["metrics"].as_array().unwrap())
        .rev()
        .find(|m| m["name"] == "rpc.server.requests")
        .expect("rpc.server.requests")["sum"]["data_points"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(points.len(), 2, "{points:#?}");
    let domains: Vec<Option<String>> = points
        .iter()
        .map(|p| text(p, "rpc.vgi_rpc.auth.domain"))
        .collect();
    assert!(
        domains.contains(&Some("conformance".to_owned())),
        "{points:#?}"
    );
    assert!(domains.contains(&None), "{points:#?}");
    for point in &points {
        assert_eq!(point["as_int"], "1", "{point:#}");
        for absent in [
            "rpc.vgi_rpc.auth.principal",
            claim_attribute,
            "client.address",
        ] {
            assert!(attribute(point, absent).is_none(), "{absent}");
        }
    }
}

//! The client driver's control protocol, op by op, against our own worker: the two error
//! channels, refusals that must not be papered over (no routing key, no method), log
//! relay, streams and shutdown. The shared suite (scripts/python-conformance.sh) is the
//! real gate; these pin the edges it does not reach.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem};

const DRIVER: &str = env!("CARGO_BIN_EXE_vgi-rpc-client-driver");
const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");

struct Driver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Driver {
    fn spawn() -> Driver {
        let mut child = Command::new(DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Driver {
            child,
            stdin,
            stdout,
        }
    }

    fn raw(&mut self, line: &str) -> Value {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
    }

    fn op(&mut self, request: Value) -> Value {
        self.raw(&request.to_string())
    }

    fn connected() -> Driver {
        let mut driver = Driver::spawn();
        let reply = driver.op(json!({
            "op": "connect", "transport": "stdio", "target": [WORKER, "--pipe"],
            "protocol": "ConformanceService",
        }));
        assert_eq!(reply, json!({"ok": true}));
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request batch as the harness builds it: one row, the RPC in its metadata.
fn request(
    method: Option<&str>,
    fields: Vec<Field>,
    columns: Vec<arrow_array::ArrayRef>,
) -> String {
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut metadata = Metadata::new()
        .with("vgi_rpc.request_version", "1")
        .with("vgi_rpc.protocol", "ConformanceService")
        .with("vgi_rpc.protocol_version", "2.0.0");
    if let Some(method) = method {
        metadata.insert("vgi_rpc.method", method);
    }
    let mut out = Vec::new();
    let mut encoder = StreamEncoder::new();
    encoder.schema(&mut out, &batch.schema());
    encoder.batch(&mut out, &batch, &metadata).unwrap();
    encoder.eos(&mut out);
    STANDARD.encode(out)
}

fn echo_string(value: &str) -> String {
    request(
        Some("echo_string"),
        vec![Field::new("value", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec![value]))],
    )
}

fn decode(b64: &Value) -> RecordBatch {
    let bytes = STANDARD.decode(b64.as_str().unwrap()).unwrap();
    let mut source = bytes.as_slice();
    let limits = Limits::default();
    let mut decoder = wire::read_stream_start(&mut source, &limits).unwrap();
    match wire::read_stream_item(&mut source, &mut decoder, &limits).unwrap() {
        StreamItem::Batch(batch, _) => batch,
        StreamItem::End => panic!("no batch"),
    }
}

#[test]
fn refusals_are_strings_and_never_defaults() {
    let mut driver = Driver::spawn();
    let before = driver.op(json!({"op": "unary", "request_b64": echo_string("x")}));
    assert_eq!(before["ok"], false);
    assert!(
        before["error"]
            .as_str()
            .unwrap()
            .contains("before `connect`")
    );

    let malformed = driver.raw("{not json");
    assert_eq!(malformed["ok"], false);
    assert!(malformed["error"].is_string());

    // No routing key: refused, never defaulted.
    let unrouted = driver.op(json!({"op": "connect", "transport": "stdio", "target": [WORKER]}));
    assert_eq!(unrouted["ok"], false);
    assert!(unrouted["error"].as_str().unwrap().contains("protocol"));

    let http = driver.op(json!({
        "op": "connect", "transport": "http", "target": "http://127.0.0.1:1",
        "protocol": "ConformanceService",
    }));
    assert_eq!(http["ok"], false);
    assert!(http["error"].as_str().unwrap().contains("http"));
}

#[test]
fn unary_results_errors_and_logs() {
    let mut driver = Driver::connected();
    let reply = driver.op(json!({"op": "unary", "request_b64": echo_string("héllo")}));
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["error"], Value::Null);
    let result = decode(&reply["result_b64"]);
    let column = result.column_by_name("result").unwrap();
    let strings = column.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(strings.value(0), "héllo");

    // A request batch without `vgi_rpc.method` is a harness bug: refused, not defaulted.
    let nameless = request(
        None,
        vec![Field::new("value", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec!["x"]))],
    );
    let reply = driver.op(json!({"op": "unary", "request_b64": nameless}));
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].as_str().unwrap().contains("vgi_rpc.method"));

    // A remote error is a call error: ok true, structured object.
    let reply = driver.op(json!({
        "op": "unary",
        "request_b64": request(
            Some("raise_value_error"),
            vec![Field::new("message", DataType::Utf8, false)],
            vec![Arc::new(StringArray::from(vec!["boom"]))],
        ),
    }));
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["result_b64"], Value::Null);
    assert_eq!(reply["error"]["error_type"], "ValueError");
    assert_eq!(reply["error"]["error_message"], "boom");
    assert!(reply["error"]["error_details"].is_array());

    // Logs arrive on the response of the op that produced them, exactly once.
    let logged = request(
        Some("echo_with_multi_logs"),
        vec![Field::new("value", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec!["v"]))],
    );
    let reply = driver.op(json!({"op": "unary", "request_b64": logged}));
    let logs = reply["logs"].as_array().unwrap();
    assert!(logs.len() >= 2, "{reply}");
    for log in logs {
        let level = log["level"].as_str().unwrap();
        assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "EXCEPTION"].contains(&level));
        assert!(log["message"].is_string() && log["extra"].is_object());
    }
    let reply = driver.op(json!({"op": "unary", "request_b64": echo_string("quiet")}));
    assert_eq!(reply["logs"], json!([]));

    let shutdown = driver.op(json!({"op": "shutdown"}));
    assert_eq!(shutdown, json!({"ok": true}));
    assert!(driver.child.wait().unwrap().success());
}

#[test]
fn streams_tick_to_done_and_describe_lists_methods() {
    let mut driver = Driver::connected();
    let open = driver.op(json!({
        "op": "stream_open",
        "request_b64": request(
            Some("produce_n"),
            vec![Field::new("count", DataType::Int64, false)],
            vec![Arc::new(Int64Array::from(vec![2]))],
        ),
        "is_exchange": false, "has_header": false,
    }));
    assert_eq!(open["ok"], true, "{open}");
    assert_eq!(open["header_b64"], Value::Null);
    let mut rows = 0;
    loop {
        let tick = driver.op(json!({"op": "tick"}));
        assert_eq!(tick["ok"], true, "{tick}");
        assert_eq!(tick["error"], Value::Null);
        if tick["done"] == true {
            assert_eq!(tick["batch_b64"], Value::Null);
            break;
        }
        rows += decode(&tick["batch_b64"]).num_rows();
        assert!(rows <= 2, "produce_n(2) overran");
    }
    assert_eq!(rows, 2);
    // A close with no stream open is a successful no-op.
    assert_eq!(driver.op(json!({"op": "close"})), json!({"ok": true}));

    let described = driver.op(json!({"op": "describe"}));
    assert_eq!(described["ok"], true, "{described}");
    let description = &described["describe"];
    assert_eq!(description["protocol_name"], "ConformanceService");
    assert_eq!(description["describe_version"], "5");
    let methods = description["methods"].as_array().unwrap();
    let produce_n = methods.iter().find(|m| m["name"] == "produce_n").unwrap();
    assert_eq!(produce_n["method_type"], "stream");
    assert_eq!(produce_n["is_exchange"], false);
    let echo = methods.iter().find(|m| m["name"] == "echo_string").unwrap();
    assert_eq!(echo["is_exchange"], Value::Null);

    // HTTP-only ops on a byte stream are refused with the protocol's words.
    let caps = driver.op(json!({"op": "capabilities"}));
    assert_eq!(
        caps,
        json!({"ok": false, "error": "op requires http transport"})
    );
}

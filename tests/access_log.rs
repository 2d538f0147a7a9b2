//! The access log and the dispatch hook, end to end over an in-process connection.
//!
//! Calls go through the real call engine (`serve_connection` on one side of a pipe pair,
//! the client engine on the other); the assertions read the JSON lines back and check the
//! spec's required and conditional fields, and that a distinctive secret argument never
//! reaches the log in any form.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use serde_json::Value;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::prelude::*;
use vgi_rpc::server::{
    AccessLog, AccessLogLevel, CallHook, CallRecord, MethodType, Peer, ProtocolSpec,
    serve_connection, serve_connection_from,
};
use vgi_rpc::{Error, Server};

const SECRET: &str = "hunter2-TOP-SECRET-7f3a9c";

/// A service whose arguments are secrets.
#[vgi_rpc::service(protocol = "Vault", version = "1.0.0")]
pub trait Vault: Send + Sync + 'static {
    /// Stores a secret; answers its length.
    fn store(&self, secret: String) -> Result<i64>;
    /// Always refuses (the message does not echo the secret).
    fn refuse(&self, secret: String) -> Result<i64>;
    /// Emits `n` rows.
    fn count(&self, n: i64) -> Result<Producer<Counter>>;
    /// Scales every input.
    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>>;
    /// Never finishes on its own.
    fn endless(&self, secret: String) -> Result<Producer<Counter>>;
}

/// One produced row.
#[derive(Debug, ArrowRecord)]
pub struct Row {
    /// The value.
    pub value: f64,
}

/// Counts down from `left` (or forever).
pub struct Counter {
    left: Option<i64>,
}

impl ProducerState for Counter {
    fn output_schema(&self) -> SchemaRef {
        Row::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        match &mut self.left {
            Some(0) => {
                turn.finish();
                Ok(())
            }
            left => {
                if let Some(n) = left {
                    *n -= 1;
                }
                turn.emit_rows(vec![Row { value: 1.0 }])
            }
        }
    }
}

/// Multiplies by `factor`.
pub struct Scaler {
    factor: f64,
}

impl ExchangeState for Scaler {
    fn input_schema(&self) -> SchemaRef {
        Row::schema()
    }

    fn output_schema(&self) -> SchemaRef {
        Row::schema()
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        let rows = (0..input.num_rows())
            .map(|i| {
                Ok(Row {
                    value: Row::from_batch(&input, i)?.value * self.factor,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        turn.emit_rows(rows)
    }
}

struct Impl;

impl Vault for Impl {
    fn store(&self, secret: String) -> Result<i64> {
        Ok(secret.len() as i64)
    }

    fn refuse(&self, _secret: String) -> Result<i64> {
        Err(RpcError::value_error("refused").into())
    }

    fn count(&self, n: i64) -> Result<Producer<Counter>> {
        Ok(Producer::new(Counter { left: Some(n) }))
    }

    fn scale(&self, factor: f64) -> Result<Exchange<Scaler>> {
        Ok(Exchange::new(Scaler { factor }))
    }

    fn endless(&self, _secret: String) -> Result<Producer<Counter>> {
        Ok(Producer::new(Counter { left: None }))
    }
}

/// What a test hook keeps from each record (records borrow from the engine).
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    method_type: MethodType,
    remote_addr: Option<String>,
    output_rows: u64,
    request_bytes: u64,
}

#[derive(Default)]
struct Collect(Mutex<Vec<Seen>>);

impl CallHook for Collect {
    fn on_call(&self, r: &CallRecord<'_>) {
        self.0.lock().unwrap().push(Seen {
            method: r.method.to_owned(),
            method_type: r.method_type,
            remote_addr: r.peer.remote_addr.clone(),
            output_rows: r.stats.output_rows,
            request_bytes: r.stats.request_bytes,
        });
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vgi-access-{}-{name}.jsonl", std::process::id()))
}

fn args(method: &str, columns: Vec<ArrayRef>) -> RecordBatch {
    let spec: ProtocolSpec = VaultServer::spec();
    let index = spec.method_index(method).unwrap();
    RecordBatch::try_new(spec.methods[index].params.clone(), columns).unwrap()
}

fn text(s: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![s]))
}

/// Serves `server` to a client on the current thread, running `client` against it.
fn with_connection(server: &Server, peer: Peer, client: impl FnOnce(&mut Client)) {
    let (req_r, req_w) = std::io::pipe().unwrap();
    let (resp_r, resp_w) = std::io::pipe().unwrap();
    thread::scope(|s| {
        let served = s.spawn(|| serve_connection_from(server, peer, req_r, resp_w));
        let mut conn = Client::from_link(Link::new(resp_r, req_w), ConnectOptions::default());
        client(&mut conn);
        drop(conn);
        served.join().unwrap().unwrap();
    });
}

/// The five call shapes of the brief, plus a call to a method that does not exist.
fn run_calls(conn: &mut Client) {
    let vault = Target::new("Vault", Some("1.0.0"));
    let stored = conn
        .call(
            &vault,
            "store",
            &args("store", vec![text(SECRET)]),
            &CallOptions::default(),
        )
        .unwrap();
    assert!(stored.batch.is_some());
    match conn.call(
        &vault,
        "refuse",
        &args("refuse", vec![text(SECRET)]),
        &CallOptions::default(),
    ) {
        Err(Error::Rpc(e)) => assert_eq!(e.error_type, "ValueError"),
        other => panic!("refuse should fail, got {other:?}"),
    }
    let n: ArrayRef = Arc::new(Int64Array::from(vec![3]));
    let mut count = conn
        .open_stream(
            &vault,
            "count",
            &args("count", vec![n]),
            &CallOptions::default(),
        )
        .unwrap();
    let mut ticks = 0;
    while count.tick().unwrap().is_some() {
        ticks += 1;
    }
    count.close().unwrap();
    assert_eq!(ticks, 3);
    let factor: ArrayRef = Arc::new(Float64Array::from(vec![2.0]));
    let mut scale = conn
        .open_stream(
            &vault,
            "scale",
            &args("scale", vec![factor]),
            &CallOptions::default(),
        )
        .unwrap();
    let input = Row::to_batch(vec![Row { value: 1.0 }, Row { value: 2.0 }]).unwrap();
    assert_eq!(scale.exchange(&input).unwrap().num_rows(), 2);
    scale.close().unwrap();
    let mut endless = conn
        .open_stream(
            &vault,
            "endless",
            &args("endless", vec![text(SECRET)]),
            &CallOptions::default(),
        )
        .unwrap();
    endless.tick().unwrap();
    endless.cancel().unwrap();
    let missing = conn.call(
        &vault,
        "no_such_method",
        &args("store", vec![text(SECRET)]),
        &CallOptions::default(),
    );
    assert!(matches!(missing, Err(Error::Rpc(_))));
}

fn read_records(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains(SECRET), "the secret leaked into the log");
    text.lines()
        .map(|line| match serde_json::from_str(line).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The schema's required fields and conditional rules, checked by hand.
fn check_schema(r: &serde_json::Map<String, Value>) {
    for key in [
        "timestamp",
        "level",
        "logger",
        "message",
        "server_id",
        "protocol",
        "protocol_hash",
        "method",
        "method_type",
        "principal",
        "auth_domain",
        "authenticated",
        "remote_addr",
        "duration_ms",
        "status",
        "error_type",
    ] {
        assert!(r.contains_key(key), "missing {key} in {r:?}");
    }
    for forbidden in ["request_data", "request_state", "response_state"] {
        assert!(!r.contains_key(forbidden));
    }
    let ts = r["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    assert_eq!(r["level"], "INFO");
    assert_eq!(r["logger"], "vgi_rpc.access");
    assert!(is_hex(r["protocol_hash"].as_str().unwrap(), 64));
    assert!(r["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(r["authenticated"], false);
    let status = r["status"].as_str().unwrap();
    if status == "ok" {
        assert_eq!(r["error_type"], "");
        assert!(!r.contains_key("error_code") && !r.contains_key("error_message"));
    } else {
        assert_eq!(status, "error");
        assert!(!r["error_message"].as_str().unwrap().is_empty());
        assert!(!r["error_type"].as_str().unwrap().is_empty());
        assert!(r["error_code"].is_string());
    }
    if r["method_type"] == "stream" {
        assert!(is_hex(r["stream_id"].as_str().unwrap(), 32));
    } else {
        assert_eq!(r["method_type"], "unary");
        assert!(!r.contains_key("stream_id"));
    }
    assert_eq!(
        r.contains_key("request_fields"),
        r.contains_key("request_rows")
    );
    for field in r["request_fields"].as_array().unwrap() {
        let field = field.as_object().unwrap();
        assert_eq!(
            field.len(),
            2,
            "request_fields entries carry only name and type"
        );
        assert!(!field["type"].as_str().unwrap().is_empty());
    }
    for key in [
        "request_bytes",
        "response_bytes",
        "input_bytes",
        "output_bytes",
    ] {
        assert!(r[key].is_u64(), "{key}");
    }
}

fn by_method<'a>(
    records: &'a [serde_json::Map<String, Value>],
    method: &str,
) -> &'a serde_json::Map<String, Value> {
    let found: Vec<_> = records.iter().filter(|r| r["method"] == method).collect();
    assert_eq!(found.len(), 1, "one record for {method}");
    found[0]
}

#[test]
fn access_log_records_every_call_shape_without_payloads() {
    for level in [AccessLogLevel::Info, AccessLogLevel::Debug] {
        let path = temp_path(&format!("{level:?}"));
        let _ = std::fs::remove_file(&path);
        let server = Server::builder()
            .service(VaultServer::new(Impl))
            .access_log(&path, level)
            .build()
            .unwrap();
        let (req_r, req_w) = std::io::pipe().unwrap();
        let (resp_r, resp_w) = std::io::pipe().unwrap();
        thread::scope(|s| {
            let served = s.spawn(|| serve_connection(&server, req_r, resp_w));
            let mut conn = Client::from_link(Link::new(resp_r, req_w), ConnectOptions::default());
            run_calls(&mut conn);
            drop(conn);
            served.join().unwrap().unwrap();
        });

        let records = read_records(&path);
        assert_eq!(records.len(), 6, "{records:#?}");
        for r in &records {
            check_schema(r);
            assert_eq!(r["server_id"], server.server_id());
            assert_eq!(r["remote_addr"], "");
            assert_eq!(
                r["protocol_hash"].as_str(),
                server.protocol_hash("Vault"),
                "{r:?}"
            );
            assert_eq!(r["protocol"], "Vault");
            assert_eq!(
                r.get("vgi_rs_transport").is_some(),
                level == AccessLogLevel::Debug
            );
        }

        let store = by_method(&records, "store");
        assert_eq!(store["status"], "ok");
        assert_eq!(store["method_type"], "unary");
        assert_eq!(
            store["request_fields"],
            serde_json::json!([{"name": "secret", "type": "string"}])
        );
        assert_eq!(store["request_rows"], 1);
        assert_eq!(store["input_batches"], 1);
        assert_eq!(store["input_bytes"], 8 + SECRET.len());
        assert_eq!(store["output_rows"], 1);
        assert!(store["request_bytes"].as_u64().unwrap() > SECRET.len() as u64);
        assert!(store["response_bytes"].as_u64().unwrap() > 0);
        assert_eq!(store["message"], "Vault.store ok");

        let refuse = by_method(&records, "refuse");
        assert_eq!(refuse["status"], "error");
        assert_eq!(refuse["error_type"], "ValueError");
        assert_eq!(refuse["error_message"], "refused");
        assert_eq!(refuse["error_code"], "UNKNOWN");

        let count = by_method(&records, "count");
        assert_eq!(count["method_type"], "stream");
        assert_eq!(count["status"], "ok");
        assert_eq!(count["output_batches"], 3);
        assert_eq!(count["output_rows"], 3);
        assert_eq!(count["input_batches"], 1, "producer ticks are not inputs");
        assert!(!count.contains_key("cancelled"));

        let scale = by_method(&records, "scale");
        assert_eq!(scale["input_batches"], 2);
        assert_eq!(scale["input_rows"], 3);
        assert_eq!(scale["output_rows"], 2);
        assert_ne!(scale["stream_id"], count["stream_id"]);

        let endless = by_method(&records, "endless");
        assert_eq!(endless["cancelled"], true);
        assert_eq!(endless["status"], "ok");
        assert_eq!(endless["method_type"], "stream");

        let missing = by_method(&records, "no_such_method");
        assert_eq!(missing["status"], "error");
        assert_eq!(missing["method_type"], "unary");
        assert!(missing["error_code"].is_string());
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn hooks_see_peer_and_stats_and_log_placeholders_expand() {
    let collect = Arc::new(Collect::default());
    let template = std::env::temp_dir().join("vgi-access-{pid}-{server_id}.jsonl");
    let server = Server::builder()
        .service(VaultServer::new(Impl))
        .hook(collect.clone())
        .access_log(&template, AccessLogLevel::Info)
        .build()
        .unwrap();
    with_connection(&server, Peer::tcp("127.0.0.1:4242"), run_calls);

    let seen = collect.0.lock().unwrap().clone();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "store",
            "refuse",
            "count",
            "scale",
            "endless",
            "no_such_method"
        ]
    );
    assert!(
        seen.iter()
            .all(|s| s.remote_addr.as_deref() == Some("127.0.0.1:4242"))
    );
    assert_eq!(seen[2].method_type, MethodType::Stream);
    assert_eq!(seen[2].output_rows, 3);
    assert!(seen.iter().all(|s| s.request_bytes > 0));

    let expanded = std::env::temp_dir().join(format!(
        "vgi-access-{}-{}.jsonl",
        std::process::id(),
        server.server_id()
    ));
    let records = read_records(&expanded);
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|r| r["remote_addr"] == "127.0.0.1:4242"));
    let _ = std::fs::remove_file(&expanded);
}

#[test]
fn concurrent_connections_write_whole_lines() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Server>();
    assert_send_sync::<AccessLog>();

    let path = temp_path("concurrent");
    let _ = std::fs::remove_file(&path);
    let server = Server::builder()
        .service(VaultServer::new(Impl))
        .access_log(&path, AccessLogLevel::Info)
        .build()
        .unwrap();
    thread::scope(|s| {
        for i in 0..4 {
            let server = &server;
            s.spawn(move || {
                let peer = Peer::tcp(format!("10.0.0.{i}:1000"));
                with_connection(server, peer, |conn| {
                    for _ in 0..25 {
                        run_calls(conn);
                    }
                });
            });
        }
    });
    let records = read_records(&path);
    assert_eq!(records.len(), 4 * 25 * 6);
    records.iter().for_each(check_schema);
    let ids: HashSet<&str> = records
        .iter()
        .filter_map(|r| r.get("stream_id").and_then(Value::as_str))
        .collect();
    assert_eq!(ids.len(), 4 * 25 * 3, "stream ids are unique per stream");
    let _ = std::fs::remove_file(&path);
}

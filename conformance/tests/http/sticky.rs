//! Sticky sessions, our client against our worker: a session opens, serves unary calls
//! and both stream shapes, closes; it expires after its TTL; forged, tampered, foreign
//! worker and foreign principal tokens are all `SessionLostError`; drain refuses new
//! sessions only; and the state really lives on the worker that opened it.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgi_rpc::client::{ConnectOptions, HttpConnectOptions, StickySessions};
use vgi_rpc::transport::http::{HttpOptions, StickyOptions};
use vgi_rpc_conformance::ConformanceClient;
use vgi_rpc_conformance::identity::PrincipalHeader;

use crate::raw::{Worker, int_request, post};

fn sticky_worker(sticky: StickyOptions) -> Worker {
    Worker::start(HttpOptions::default().sticky(sticky))
}

/// Our client on `port`, its requests decorated by `sessions` (and `headers`).
fn client(port: u16, sessions: &StickySessions, headers: &[(&str, &str)]) -> ConformanceClient {
    let mut http = HttpConnectOptions::default().with_sticky_sessions(sessions.clone());
    for (name, value) in headers {
        http = http.with_header(*name, *value);
    }
    let options = ConnectOptions::default().with_http(http);
    ConformanceClient::connect_with(&format!("http://127.0.0.1:{port}"), options).unwrap()
}

fn url(worker: &Worker) -> String {
    format!("http://127.0.0.1:{}", worker.port)
}

/// The error a call failed with: `(error_type, error_kind)`.
fn failure<T: std::fmt::Debug>(result: vgi_rpc::Result<T>) -> (String, Option<String>) {
    let err = result.expect_err("the call must fail");
    let rpc = err.as_rpc().expect("a remote error").clone();
    (rpc.error_type, rpc.kind)
}

fn lost<T: std::fmt::Debug>(result: vgi_rpc::Result<T>) {
    assert_eq!(
        failure(result),
        (
            "SessionLostError".to_owned(),
            Some("session_lost".to_owned())
        )
    );
}

fn by_batch(by: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("by", DataType::Int64, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![by]))]).unwrap()
}

fn value(batch: &RecordBatch) -> i64 {
    batch
        .column_by_name("value")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0)
}

#[test]
fn a_session_serves_unary_calls_and_both_stream_shapes_until_closed() {
    let worker = sticky_worker(StickyOptions::new().echo_header("fly-force-instance-id", "m1"));
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);

    // Outside a scope the client does not opt in, and the server refuses to open.
    let (kind, _) = failure(c.open_counter(1));
    assert_eq!(kind, "RuntimeError");

    sessions.begin(None);
    assert_eq!(c.open_counter(7).unwrap(), 7);
    assert!(
        sessions.token().is_some(),
        "the opening answer mints a token"
    );
    assert_eq!(
        sessions.echo_headers(),
        [("fly-force-instance-id".to_owned(), "m1".to_owned())]
    );
    assert_eq!(c.increment_counter(10).unwrap(), 17);
    let produced: Vec<i64> = c
        .stream_session_counter(3)
        .unwrap()
        .map(|b| value(&b.unwrap()))
        .collect();
    assert_eq!(
        produced,
        [18, 19, 20],
        "every producer turn resolves the session"
    );
    let mut exchange = c.exchange_session_counter().unwrap();
    assert_eq!(value(&exchange.exchange(&by_batch(5)).unwrap()), 25);
    assert_eq!(value(&exchange.exchange(&by_batch(-1)).unwrap()), 24);
    drop(exchange);
    // A raising method leaves the session usable (its lock is released).
    assert!(c.raise_value_error("boom".into()).is_err());
    assert_eq!(c.increment_counter(1).unwrap(), 25);

    assert_eq!(c.close_counter().unwrap(), 25);
    assert_eq!(sessions.token(), None, "VGI-Session-Close drops the token");
    assert!(sessions.echo_headers().is_empty());
    let (kind, _) = failure(c.increment_counter(1));
    assert_eq!(kind, "RuntimeError", "no session bound any more");
    assert_eq!(sessions.end(), None, "a closed session needs no DELETE");
}

#[test]
fn a_closed_or_deleted_session_is_lost() {
    let worker = sticky_worker(StickyOptions::new());
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    sessions.begin(None);
    c.open_counter(99).unwrap();
    let stale = sessions.token().unwrap();
    c.close_counter().unwrap();
    sessions.end();
    sessions.begin(Some(stale));
    lost(c.increment_counter(1));
    sessions.end();

    // A scope that ends with its session live deletes it; the token is dead after.
    sessions.begin(None);
    c.open_counter(1).unwrap();
    let token = sessions.token().unwrap();
    let ended = sessions.end().expect("a live session to delete");
    let options = ConnectOptions::default();
    vgi_rpc::transport::http::client::end_session(&url(&worker), &options, &ended).unwrap();
    sessions.begin(Some(token));
    lost(c.increment_counter(1));
    sessions.end();
}

#[test]
fn forged_and_tampered_tokens_are_lost_the_documented_way() {
    let worker = sticky_worker(StickyOptions::new());
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    sessions.begin(Some("not-a-real-token".into()));
    lost(c.increment_counter(1));
    sessions.end();

    sessions.begin(None);
    c.open_counter(1).unwrap();
    let token = sessions.detach().unwrap();
    sessions.end();
    let mut tampered = token.into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    sessions.begin(Some(tampered.clone()));
    lost(c.increment_counter(1));
    sessions.end();

    // On the wire: 200 flagged X-VGI-RPC-Error, the error on the empty schema, the kind
    // and code in the metadata (the reference's shape, spec §6).
    let body = int_request("increment_counter", &[("by", 1)]);
    let reply = post(
        worker.port,
        "/ConformanceService/increment_counter",
        &[("VGI-Session", &tampered)],
        &body,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let (batch, md) = reply.batches().pop().unwrap();
    assert_eq!(batch.schema().fields().len(), 0);
    assert_eq!(md.get("vgi_rpc.error_kind"), Some("session_lost"));
    assert_eq!(md.get("vgi_rpc.error_code"), Some("ABORTED"));
    // `DELETE /__session__` never tells a forged token from a live one: 200.
    let delete = crate::raw::send_raw(
        worker.port,
        format!(
            "DELETE /__session__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nVGI-Session: {tampered}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(delete.status, 200);
}

#[test]
fn a_session_expires_after_its_ttl() {
    let worker = sticky_worker(StickyOptions::new().default_ttl(Duration::from_secs(1)));
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    sessions.begin(None);
    c.open_counter(1).unwrap();
    assert_eq!(c.increment_counter(1).unwrap(), 2, "alive before the TTL");
    std::thread::sleep(Duration::from_millis(2300));
    lost(c.increment_counter(1));
}

#[test]
fn state_stays_on_the_worker_that_opened_the_session() {
    let key = [0x5f; 32];
    let a = Worker::start(
        HttpOptions::default()
            .token_key(key)
            .sticky(StickyOptions::new()),
    );
    let b = Worker::start(
        HttpOptions::default()
            .token_key(key)
            .sticky(StickyOptions::new()),
    );
    let sessions = StickySessions::new();
    let mut on_a = client(a.port, &sessions, &[]);
    let mut on_b = client(b.port, &sessions, &[]);
    sessions.begin(None);
    on_a.open_counter(5).unwrap();
    // The peer shares the key (the token opens there) but not the registry, and its
    // refusal left A's counter untouched.
    lost(on_b.increment_counter(100));
    assert_eq!(on_a.increment_counter(1).unwrap(), 6);
    assert_eq!(on_a.close_counter().unwrap(), 6);
    sessions.end();
}

#[test]
fn a_session_belongs_to_the_principal_that_opened_it() {
    let worker = Worker::start(
        HttpOptions::default()
            .authenticate(PrincipalHeader)
            .sticky(StickyOptions::new()),
    );
    let alice_sessions = StickySessions::new();
    let mut alice = client(
        worker.port,
        &alice_sessions,
        &[("X-Conformance-Principal", "alice")],
    );
    alice_sessions.begin(None);
    alice.open_counter(5).unwrap();
    let token = alice_sessions.detach().unwrap();
    alice_sessions.end();

    for (who, headers) in [
        ("bob", vec![("X-Conformance-Principal", "bob")]),
        ("anonymous", vec![]),
    ] {
        let sessions = StickySessions::new();
        let mut other = client(worker.port, &sessions, &headers);
        sessions.begin(Some(token.clone()));
        let (kind, _) = failure(other.increment_counter(100));
        assert_eq!(kind, "SessionLostError", "{who}");
        sessions.end();
    }
    alice_sessions.begin(Some(token));
    assert_eq!(
        alice.increment_counter(1).unwrap(),
        6,
        "the owner still resumes"
    );
    alice.close_counter().unwrap();
}

#[test]
fn drain_refuses_new_sessions_and_keeps_live_ones() {
    let options = StickyOptions::new();
    let drain = options.drain_handle();
    let worker = sticky_worker(options);
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    sessions.begin(None);
    c.open_counter(10).unwrap();
    drain.drain();
    assert_eq!(
        c.increment_counter(5).unwrap(),
        15,
        "live sessions keep serving"
    );
    sessions.begin(None);
    assert_eq!(
        failure(c.open_counter(1)),
        (
            "ServerDrainingError".to_owned(),
            Some("server_draining".to_owned())
        )
    );
    sessions.end();
    assert_eq!(
        c.increment_counter(1).unwrap(),
        16,
        "the outer scope is back"
    );
    // Shutdown releases every session.
    drain.shutdown();
    lost(c.increment_counter(1));
}

#[test]
fn without_sticky_the_wire_is_unchanged() {
    let worker = Worker::start(HttpOptions::default());
    let reply = crate::raw::get(worker.port, "OPTIONS", "/health");
    assert!(reply.header("vgi-sticky-enabled").is_none());
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    sessions.begin(None);
    let err = c.open_counter(1).unwrap_err();
    assert_eq!(
        err.as_rpc().map(|e| e.message.as_str()),
        Some("sticky sessions not available on this transport")
    );
    // A token is ignored, not refused: the server has no sessions at all.
    sessions.end();
    sessions.begin(Some("whatever".into()));
    let (kind, _) = failure(c.increment_counter(1));
    assert_eq!(kind, "RuntimeError");
}

#[test]
fn the_access_log_records_each_request_session_action() {
    let path = std::env::temp_dir().join(format!("vgi-sticky-log-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let builder = vgi_rpc_conformance::server_builder()
        .access_log(&path, vgi_rpc::server::AccessLogLevel::Info);
    let worker = Worker::start_with(HttpOptions::default().sticky(StickyOptions::new()), builder);
    let sessions = StickySessions::new();
    let mut c = client(worker.port, &sessions, &[]);
    c.echo_string("outside".into()).unwrap();
    sessions.begin(None);
    c.open_counter(1).unwrap();
    c.increment_counter(1).unwrap();
    c.close_counter().unwrap();
    drop(worker);
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(&path);
    let seen: Vec<(&str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default(),
                r["session_action"].as_str().unwrap_or_default(),
                r["session_id"].as_str().is_some_and(|id| id.len() == 24),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("echo_string", "none", false),
            ("open_counter", "open", true),
            ("increment_counter", "resume", true),
            ("close_counter", "close", true),
        ]
    );
    let ids: std::collections::HashSet<&str> = records[1..]
        .iter()
        .filter_map(|r| r["session_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "one session throughout");
}

//! Our HTTP client against the reference HTTP server (`vgi-rpc-conformance --http 0
//! --describe` from the venv of `scripts/python-venv.sh`), and against a scripted fake
//! server for what the reference never does on purpose (hang, answer 401 or non-Arrow
//! bodies, drop the capability header) and to see the request headers the client sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, BinaryArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use vgi_rpc::client::{
    CallOptions, CancelHandle, Client, ConnectOptions, HttpConnectOptions, Target,
};
use vgi_rpc::transport::Address;
use vgi_rpc::{Error, ErrorCode};
use vgi_rpc_conformance::ConformanceClient;
use vgi_rpc_conformance::announce::spawn_announcing;
use vgi_rpc_conformance::matrix::{ensure_python_venv, python_venv};

/// A reference HTTP worker, killed on drop.
struct RefWorker {
    child: Child,
    url: String,
}

impl Drop for RefWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv() -> PathBuf {
    python_venv()
        .or_else(|| ensure_python_venv().ok())
        .expect("the reference venv (scripts/python-venv.sh)")
}

/// `vgi-rpc-conformance --http 0 --describe`, or with `variant` flags the in-tree
/// variant worker (`tests/python/conformance/ref_http_worker.py`).
fn reference(variant: &[&str]) -> Result<RefWorker> {
    let venv = venv();
    let mut cmd = if variant.is_empty() {
        let mut c = Command::new(venv.join("bin/vgi-rpc-conformance"));
        c.args(["--http", "0", "--describe"]);
        c
    } else {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/python/conformance/ref_http_worker.py");
        let mut c = Command::new(venv.join("bin/python"));
        c.arg(script).args(variant);
        c
    };
    let (child, port) = spawn_announcing(cmd.stdin(Stdio::null()).stderr(Stdio::null()))
        .context("start the reference HTTP worker")?;
    let url = format!("http://127.0.0.1:{port}");
    Ok(RefWorker { child, url })
}

fn target() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

fn one_row(fields: Vec<(&str, Arc<dyn Array>)>) -> RecordBatch {
    let schema = Schema::new(
        fields
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        fields.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

#[test]
fn unary_streams_headers_errors_and_logs_against_the_reference() -> Result<()> {
    let worker = reference(&[])?;
    let mut client = ConformanceClient::connect(&worker.url)?;
    assert_eq!(client.echo_string("héllo".into())?, "héllo");

    // Remote errors are data: the client stays usable.
    let err = client.raise_value_error("boom".into()).unwrap_err();
    let rpc = err.as_rpc().expect("a remote error");
    assert_eq!(rpc.error_type, "ValueError");
    assert_eq!(rpc.message, "boom");
    assert!(rpc.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    assert_eq!(client.echo_string("again".into())?, "again");

    // Producer: three batches, one per turn (init + two continuations).
    let batches = client
        .produce_n(3)?
        .collect::<vgi_rpc::Result<Vec<RecordBatch>>>()?;
    let index: Vec<i64> = batches
        .iter()
        .map(|b| {
            b.column_by_name("index")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0)
        })
        .collect();
    assert_eq!(index, [0, 1, 2]);

    // Exchange: the token keys never reach the caller.
    let mut dynamic = Client::connect(&worker.url)?;
    let params = one_row(vec![("factor", Arc::new(Float64Array::from(vec![10.0])))]);
    let mut stream = dynamic.open_stream(
        &target(),
        "exchange_scale",
        &params,
        &CallOptions::default(),
    )?;
    for x in [1.0, 2.5] {
        let input = one_row(vec![("value", Arc::new(Float64Array::from(vec![x])))]);
        let (out, md) = stream.exchange_with_metadata(&input, Default::default())?;
        assert_eq!(
            out.column(0).as_primitive::<Float64Type>().value(0),
            x * 10.0
        );
        assert!(md.iter().all(|(k, _)| !k.contains("_state#b64")), "{md:?}");
    }
    stream.close()?;

    // A stream header is read at open, before the first batch.
    let params = one_row(vec![(
        "count",
        Arc::new(arrow_array::Int64Array::from(vec![2])),
    )]);
    let mut stream = dynamic.open_stream_with_header(
        &target(),
        "produce_with_header",
        &params,
        &CallOptions::default(),
    )?;
    let header = stream.header().expect("a header").clone();
    assert_eq!(
        header
            .column_by_name("total_expected")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        2
    );
    let mut n = 0;
    while stream.tick()?.is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    drop(stream);

    // Logs reach the handler and the result.
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&logs);
    dynamic.set_log_handler(move |r| sink.lock().unwrap().push(r.message.clone()));
    let params = one_row(vec![("value", Arc::new(StringArray::from(vec!["x"])))]);
    let answer = dynamic.call(
        &target(),
        "echo_with_info_log",
        &params,
        &CallOptions::default(),
    )?;
    assert_eq!(answer.logs.len(), 1);
    assert_eq!(logs.lock().unwrap().len(), 1);

    // Reflection over HTTP (the CLI's describe).
    let description = dynamic.describe(&CallOptions::default())?;
    assert!(
        description
            .protocols
            .iter()
            .any(|p| p.name == "ConformanceService")
    );
    Ok(())
}

#[test]
fn cancel_sends_one_cancel_and_close_sends_nothing() -> Result<()> {
    let worker = reference(&[])?;
    let mut client = Client::connect(&worker.url)?;
    let none = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let opts = CallOptions::default();
    client.call(&target(), "reset_cancel_probe", &none, &opts)?;
    let mut stream = client.open_stream(&target(), "cancellable_producer", &none, &opts)?;
    for _ in 0..3 {
        assert!(stream.tick()?.is_some());
    }
    stream.cancel()?;
    // close() of another stream sends nothing: on_cancel stays at one.
    let stream = client.open_stream(&target(), "cancellable_producer", &none, &opts)?;
    stream.close()?;
    let counters = client.call(&target(), "cancel_probe_counters", &none, &opts)?;
    let list = counters.batch.unwrap();
    let values = list.column(0).as_list::<i32>().value(0);
    let values = values.as_primitive::<Int64Type>();
    assert!(values.value(0) >= 3, "produce calls {:?}", values);
    // `[produce_calls, exchange_calls, on_cancel_calls]`.
    assert_eq!(values.value(2), 1, "on_cancel count {:?}", values);
    Ok(())
}

#[test]
fn the_answer_budget_is_sent_and_an_oversized_answer_is_an_error() -> Result<()> {
    let worker = reference(&[])?;
    let http = HttpConnectOptions::default().with_accept_max_response_bytes(65_536);
    let options = ConnectOptions::default().with_http(http);
    let mut client = Client::connect_with(&Address::parse(&worker.url)?, options)?;
    let params = one_row(vec![(
        "target_bytes",
        Arc::new(arrow_array::Int64Array::from(vec![200_000])),
    )]);
    let err = client
        .call(
            &target(),
            "oversized_unary",
            &params,
            &CallOptions::default(),
        )
        .unwrap_err();
    let rpc = err.as_rpc().expect("a remote error");
    assert_eq!(rpc.error_type, "ResponseTooLargeError", "{rpc:?}");
    assert!(rpc.message.contains("max_response_bytes"), "{rpc:?}");
    // Small answers still pass.
    let params = one_row(vec![(
        "data",
        Arc::new(BinaryArray::from(vec![&[1u8; 10][..]])),
    )]);
    assert!(
        client
            .call(&target(), "echo_bytes", &params, &CallOptions::default())
            .is_ok()
    );
    // Out of range budgets are refused before anything is sent.
    let http = HttpConnectOptions::default().with_accept_max_response_bytes(1000);
    let options = ConnectOptions::default().with_http(http);
    assert!(Client::connect_with(&Address::parse(&worker.url)?, options).is_err());
    Ok(())
}

#[test]
fn compression_on_and_off_against_a_server_that_compresses_nothing() -> Result<()> {
    let worker = reference(&["--no-compression"])?;
    let big = vec![b'a'; 300_000];
    for level in [Some(1), None] {
        let http = HttpConnectOptions::default().with_compression_level(level);
        let options = ConnectOptions::default().with_http(http);
        let mut client = Client::connect_with(&Address::parse(&worker.url)?, options)?;
        let params = one_row(vec![("data", Arc::new(BinaryArray::from(vec![&big[..]])))]);
        let answer = client.call(&target(), "echo_bytes", &params, &CallOptions::default())?;
        let batch = answer.batch.unwrap();
        assert_eq!(batch.column(0).as_binary::<i32>().value(0), &big[..]);
    }
    Ok(())
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    match Client::connect(&format!("http://127.0.0.1:{port}")) {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        Err(other) => panic!("expected Error::Connect, got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

// ---------------------------------------------------------------------------------------
// A scripted fake server
// ---------------------------------------------------------------------------------------

/// How the fake answers a POST.
#[derive(Clone, Copy)]
enum Post {
    /// Never answer.
    Hang,
    /// 401 with the reference's JSON envelope.
    Unauthorized,
    /// 413 JSON (not Arrow).
    JsonError,
    /// The same, then the connection closed (as a server's keep-alive timeout does).
    JsonErrorThenClose,
    /// 200 without the capability header.
    NoSupportHeader,
}

struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

/// One request's head (lowercased) and its body, read by Content-Length.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some(head)
}

fn fake(post: Post) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                while let Some(head) = read_request(&mut stream) {
                    seen.lock().unwrap().push(head.clone());
                    let support = "VGI-Accept-Max-Response-Bytes-Support: true\r\n";
                    let reply = if head.starts_with("options") {
                        format!(
                            "HTTP/1.1 200 OK\r\n{support}VGI-Supported-Encodings: zstd, gzip\r\nContent-Length: 0\r\n\r\n"
                        )
                    } else {
                        match post {
                            Post::Hang => {
                                thread::sleep(Duration::from_secs(30));
                                return;
                            }
                            Post::Unauthorized => {
                                let body = r#"{"error":"unauthorized","reason":"expired_credential","detail":"token expired"}"#;
                                format!(
                                    "HTTP/1.1 401 Unauthorized\r\n{support}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            Post::JsonError | Post::JsonErrorThenClose => {
                                let body = r#"{"title": "Nope"}"#;
                                format!(
                                    "HTTP/1.1 400 Bad Request\r\n{support}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            Post::NoSupportHeader => {
                                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned()
                            }
                        }
                    };
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                    if matches!(post, Post::JsonErrorThenClose) && !head.starts_with("options") {
                        return;
                    }
                }
            });
        }
    });
    Fake { url, requests }
}

fn echo_params() -> RecordBatch {
    one_row(vec![("value", Arc::new(StringArray::from(vec!["x"])))])
}

/// The error of an `echo_string` call the fake server does not answer with a batch.
fn failed_echo(client: &mut Client) -> Error {
    client
        .call(
            &target(),
            "echo_string",
            &echo_params(),
            &CallOptions::default(),
        )
        .unwrap_err()
}

#[test]
fn a_call_past_its_deadline_times_out_and_a_cancel_interrupts_it() -> Result<()> {
    let server = fake(Post::Hang);
    let mut client = Client::connect(&server.url)?;
    let started = Instant::now();
    let options = CallOptions::default().with_timeout(Duration::from_millis(300));
    let err = client
        .call(&target(), "echo_string", &echo_params(), &options)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let cancel = CancelHandle::new();
    let trigger = cancel.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        trigger.cancel();
    });
    let options = CallOptions::default().with_cancel(cancel);
    let err = client
        .call(&target(), "echo_string", &echo_params(), &options)
        .unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    Ok(())
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced_not_an_error() -> Result<()> {
    let server = fake(Post::JsonErrorThenClose);
    let options = ConnectOptions::default()
        .with_http(HttpConnectOptions::default().with_compression_level(None));
    let mut client = Client::connect_with(&Address::parse(&server.url)?, options)?;
    for _ in 0..3 {
        let err = failed_echo(&mut client);
        // The server's answer each time, never a broken connection: the request went
        // out again on a new one.
        let rpc = err.as_rpc().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(rpc.error_type, "HttpError", "{err:?}");
        thread::sleep(Duration::from_millis(50));
    }
    let posts = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("post"))
        .count();
    assert_eq!(posts, 3, "each call sent exactly once");
    Ok(())
}

#[test]
fn requests_carry_the_budget_coding_and_custom_headers() -> Result<()> {
    let server = fake(Post::JsonError);
    for level in [Some(1), None] {
        let http = HttpConnectOptions::default()
            .with_header("Authorization", "Bearer t0k3n")
            .with_compression_level(level);
        let options = ConnectOptions::default().with_http(http);
        let mut client = Client::connect_with(&Address::parse(&server.url)?, options)?;
        let err = failed_echo(&mut client);
        let rpc = err.as_rpc().expect("an HttpError");
        assert_eq!(rpc.error_type, "HttpError");
        assert_eq!(
            rpc.message,
            r#"HTTP 400: response is not a valid Arrow IPC stream (first 200 bytes: '{"title": "Nope"}')"#
        );
        let requests = server.requests.lock().unwrap().clone();
        let post = requests
            .iter()
            .rev()
            .find(|r| r.starts_with("post"))
            .unwrap();
        assert!(
            post.starts_with("post /conformanceservice/echo_string http/1.1"),
            "{post}"
        );
        assert!(post.contains("content-type: application/vnd.apache.arrow.stream"));
        assert!(post.contains("vgi-accept-max-response-bytes: 268435456"));
        assert!(post.contains("accept-encoding: zstd, gzip"));
        assert!(post.contains("authorization: bearer t0k3n"));
        // What reqwest adds to every request, on the direct path too.
        assert!(post.contains("accept: */*"), "{post}");
        assert!(post.contains("user-agent: vgi-rpc-rust/"), "{post}");
        assert!(post.contains("host: 127.0.0.1:"), "{post}");
        assert_eq!(
            post.contains("content-encoding: zstd"),
            level.is_some(),
            "{post}"
        );
    }
    Ok(())
}

#[test]
fn a_401_is_an_authentication_error_and_a_missing_capability_header_a_protocol_error() -> Result<()>
{
    let server = fake(Post::Unauthorized);
    let mut client = Client::connect(&server.url)?;
    let err = failed_echo(&mut client);
    let rpc = err.as_rpc().expect("an AuthenticationError");
    assert_eq!(rpc.error_type, "AuthenticationError");
    assert_eq!(rpc.message, "token expired");
    assert_eq!(rpc.code, ErrorCode::Unauthenticated);
    assert_eq!(rpc.kind.as_deref(), Some("expired_credential"));

    let server = fake(Post::NoSupportHeader);
    let mut client = Client::connect(&server.url)?;
    let err = failed_echo(&mut client);
    let rpc = err.as_rpc().expect("a ProtocolError");
    assert_eq!(rpc.error_type, "ProtocolError");
    assert!(
        rpc.message
            .contains("exactly one VGI-Accept-Max-Response-Bytes-Support")
    );
    Ok(())
}

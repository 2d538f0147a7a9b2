//! Bad requests get the reference's 4xx, and the server keeps serving everyone else.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use vgi_rpc::transport::http::HttpOptions;

use crate::raw::{Worker, get, int_request, post, read_reply, send_raw};

/// The server still answers a normal call.
fn still_serves(worker: &Worker) {
    let reply = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[],
        &int_request("echo_int", &[("value", 7)]),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.exception().is_none());
}

#[test]
fn every_response_carries_the_capabilities_and_a_request_id() {
    let worker = Worker::start(HttpOptions::default());
    for reply in [
        get(worker.port, "GET", "/health"),
        get(worker.port, "OPTIONS", "/health"),
        get(worker.port, "GET", "/a/b/c/d"),
        post(worker.port, "/Nope/x", &[], b""),
        post(
            worker.port,
            "/ConformanceService/echo_int",
            &[("Content-Encoding", "br")],
            b"x",
        ),
    ] {
        assert_eq!(
            reply.header("vgi-accept-max-response-bytes-support"),
            Some("true"),
            "{reply:?}"
        );
        assert_eq!(reply.header("vgi-supported-encodings"), Some("zstd, gzip"));
        assert_eq!(reply.header("x-request-id").map(str::len), Some(16));
    }
    let echoed = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("X-Request-ID", "conformance-request-id-0123456789")],
        &int_request("echo_int", &[("value", 1)]),
    );
    assert_eq!(
        echoed.header("x-request-id"),
        Some("conformance-request-id-0123456789")
    );
    let health = get(worker.port, "GET", "/health").json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["protocol"], "ConformanceService");
}

#[test]
fn routing_faults_are_404_and_kind_faults_400() {
    let worker = Worker::start(HttpOptions::default());
    let body = int_request("echo_int", &[("value", 1)]);
    let unknown = post(worker.port, "/Nope/echo_int", &[], &body);
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .exception()
            .unwrap()
            .starts_with("ProtocolNotSupportedError: This server does not host protocol 'Nope'")
    );
    let bad_name = post(worker.port, "/9bad/echo_int", &[], &body);
    assert_eq!(bad_name.status, 404);
    let no_method = post(worker.port, "/ConformanceService/nope", &[], &body);
    assert_eq!(no_method.status, 404);
    assert!(no_method.exception().unwrap().starts_with(
        "MethodNotImplementedError: Protocol 'ConformanceService' has no method 'nope'"
    ));
    let on_init = post(worker.port, "/ConformanceService/echo_int/init", &[], &body);
    assert_eq!(on_init.status, 400);
    assert_eq!(
        on_init.exception().as_deref(),
        Some("TypeError: Method 'echo_int' is not a stream")
    );
    let stream_unary = post(
        worker.port,
        "/ConformanceService/produce_n",
        &[],
        &int_request("produce_n", &[("count", 1)]),
    );
    assert_eq!(stream_unary.status, 400);
    let mismatch = post(worker.port, "/ConformanceService/echo_string", &[], &body);
    assert_eq!(mismatch.status, 400);
    assert!(
        mismatch
            .exception()
            .unwrap()
            .contains("Method name mismatch")
    );
    assert_eq!(
        get(worker.port, "GET", "/ConformanceService/echo_int").status,
        405
    );
    assert_eq!(post(worker.port, "/__describe__", &[], b"").status, 404);
    still_serves(&worker);
}

#[test]
fn wrong_content_types_and_encodings_are_415_and_garbage_400() {
    let worker = Worker::start(HttpOptions::default());
    let body = int_request("echo_int", &[("value", 1)]);
    for content_type in [
        "application/octet-stream",
        "application/vnd.apache.arrow.stream; charset=x",
    ] {
        let reply = post(
            worker.port,
            "/ConformanceService/echo_int",
            &[("Content-Type", content_type)],
            &body,
        );
        assert_eq!(reply.status, 415);
        assert!(
            reply
                .exception()
                .unwrap()
                .starts_with("TypeError: Expected Content-Type")
        );
    }
    let identity = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("Content-Encoding", "identity")],
        &body,
    );
    assert_eq!(identity.status, 415);
    assert!(
        identity.json()["description"]
            .as_str()
            .unwrap()
            .contains("'identity' is not enabled")
    );
    let corrupt = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("Content-Encoding", "zstd")],
        b"not zstd at all",
    );
    assert_eq!(corrupt.status, 400);
    assert_eq!(corrupt.json()["title"], "Decompression Error");
    let garbage = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[],
        b"\xff\xff\xff\xff garbage",
    );
    assert_eq!(garbage.status, 400);
    let bad_budget = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("VGI-Accept-Max-Response-Bytes", "65535")],
        &body,
    );
    assert_eq!(bad_budget.status, 400);
    assert_eq!(
        bad_budget.exception().as_deref(),
        Some("ValueError: VGI-Accept-Max-Response-Bytes must be at least 65536")
    );
    still_serves(&worker);
}

#[test]
fn compression_bombs_and_oversized_bodies_get_413() {
    let worker = Worker::start(HttpOptions::default().max_request_bytes(4096));
    let body = int_request("echo_int", &[("value", 1)]);
    // Compressed, the body is under the 4 KiB cap; decoded it would be 2 MiB.
    let zeros = vec![0u8; 2 << 20];
    let zstd_bomb = zstd::bulk::compress(&zeros, 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).unwrap();
    let gzip_bomb = gz.finish().unwrap();
    drop(zeros);
    for (coding, bomb) in [("zstd", &zstd_bomb), ("gzip", &gzip_bomb)] {
        assert!(bomb.len() < 4096, "{coding} bomb of {} bytes", bomb.len());
        let reply = post(
            worker.port,
            "/ConformanceService/echo_int",
            &[("Content-Encoding", coding)],
            bomb,
        );
        assert_eq!(reply.status, 413, "{coding}");
        assert_eq!(
            reply.json()["title"],
            "Request body exceeds max_request_bytes after decompression"
        );
    }
    let big = vec![0u8; 5000];
    let declared = post(worker.port, "/ConformanceService/echo_int", &[], &big);
    assert_eq!(declared.status, 413);
    assert!(
        declared.json()["description"]
            .as_str()
            .unwrap()
            .contains("max_request_bytes=4096")
    );
    assert_eq!(declared.header("vgi-max-request-bytes"), Some("4096"));
    // Chunked, without a declared length: cut off at the cap.
    let mut raw = b"POST /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/vnd.apache.arrow.stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[0u8; 0x400]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(send_raw(worker.port, &raw).unwrap().status, 413);
    still_serves(&worker);
    let _ = body;
}

#[test]
fn bodies_that_lie_about_their_length_or_stall_do_not_hold_up_others() {
    let worker = Worker::start(HttpOptions::default().body_timeout(Duration::from_millis(500)));
    // Declares 1000 bytes, sends 10, then stalls: the body timeout answers 408.
    let mut slow = TcpStream::connect(("127.0.0.1", worker.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"POST /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.apache.arrow.stream\r\nContent-Length: 1000\r\n\r\n0123456789").unwrap();
    // Meanwhile everyone else is served.
    still_serves(&worker);
    let reply = read_reply(&mut slow).unwrap();
    assert_eq!(reply.status, 408);
    // Declares 1000 bytes, sends 10 and closes its side: the body is incomplete.
    let mut short = TcpStream::connect(("127.0.0.1", worker.port)).unwrap();
    short.write_all(b"POST /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.apache.arrow.stream\r\nContent-Length: 1000\r\n\r\n0123456789").unwrap();
    short.shutdown(std::net::Shutdown::Write).unwrap();
    short
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // hyper either answers 400 or drops the connection; it must not hang or crash.
    if let Ok(reply) = read_reply(&mut short) {
        assert!(reply.status >= 400, "{reply:?}");
    }
    // Declares 5 bytes but sends a valid request's worth: the rest is a second,
    // malformed request on the same connection, refused without harm.
    let body = int_request("echo_int", &[("value", 1)]);
    let mut raw = b"POST /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.apache.arrow.stream\r\nContent-Length: 5\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    let reply = send_raw(worker.port, &raw).unwrap();
    assert_eq!(reply.status, 400);
    still_serves(&worker);
}

#[test]
fn an_oversized_answer_becomes_response_too_large() {
    let worker = Worker::start(HttpOptions::default().max_response_bytes(65536).unwrap());
    let reply = post(
        worker.port,
        "/ConformanceService/oversized_unary",
        &[],
        &int_request("oversized_unary", &[("target_bytes", 4 * 65536)]),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let message = reply.exception().unwrap();
    assert!(
        message.starts_with("ResponseTooLargeError: HTTP body exceeds max_response_bytes ("),
        "{message}"
    );
    // The client's own, lower budget applies too.
    let unlimited = Worker::start(HttpOptions::default());
    let reply = post(
        unlimited.port,
        "/ConformanceService/oversized_unary",
        &[("VGI-Accept-Max-Response-Bytes", "65536")],
        &int_request("oversized_unary", &[("target_bytes", 4 * 65536)]),
    );
    assert!(
        reply
            .exception()
            .unwrap()
            .starts_with("ResponseTooLargeError")
    );
    let fits = post(
        unlimited.port,
        "/ConformanceService/oversized_unary",
        &[],
        &int_request("oversized_unary", &[("target_bytes", 4 * 65536)]),
    );
    assert!(fits.exception().is_none());
    assert!(fits.header("x-vgi-rpc-error").is_none());
}

#[test]
fn answers_are_compressed_as_negotiated() {
    let worker = Worker::start(HttpOptions::default());
    // An 8 KiB answer: large enough to be worth compressing.
    let body = int_request("oversized_unary", &[("target_bytes", 8192)]);
    let path = "/ConformanceService/oversized_unary";
    let zstd = post(
        worker.port,
        path,
        &[("Accept-Encoding", "zstd, gzip")],
        &body,
    );
    assert_eq!(zstd.header("content-encoding"), Some("zstd"));
    assert!(zstd.exception().is_none() && !zstd.batches().is_empty());
    let custom = post(
        worker.port,
        path,
        &[("X-VGI-Accept-Encoding", "gzip")],
        &body,
    );
    assert_eq!(custom.header("x-vgi-content-encoding"), Some("gzip"));
    let plain = post(
        worker.port,
        path,
        &[("Accept-Encoding", "identity, zstd")],
        &body,
    );
    assert!(plain.header("content-encoding").is_none());
    // A tiny answer goes uncompressed whatever the client accepts.
    let small = int_request("echo_int", &[("value", 1)]);
    let tiny = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("Accept-Encoding", "zstd")],
        &small,
    );
    assert!(tiny.header("content-encoding").is_none());
    let off = Worker::start(HttpOptions::default().compression(false));
    let reply = post(off.port, path, &[("Accept-Encoding", "zstd")], &body);
    assert!(reply.header("content-encoding").is_none());
    assert_eq!(reply.header("vgi-supported-encodings"), Some(""));
    // A compressed request is still decoded.
    let packed = zstd::bulk::compress(&small, 1).unwrap();
    let decoded = post(
        off.port,
        "/ConformanceService/echo_int",
        &[("Content-Encoding", "zstd")],
        &packed,
    );
    assert_eq!(decoded.status, 200);
}

#[test]
fn cors_answers_preflights_for_allowed_origins_only() {
    let worker = Worker::start(HttpOptions::default().cors_origin("https://ok.example"));
    let preflight = |origin: &str| {
        let raw = format!(
            "OPTIONS /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, vgi-session\r\n\r\n"
        );
        send_raw(worker.port, raw.as_bytes()).unwrap()
    };
    let ok = preflight("https://ok.example");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("content-type, vgi-session")
    );
    assert!(
        ok.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let expose = ok
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-vgi-rpc-error",
        "x-request-id",
        "vgi-supported-encodings",
        "vgi-auth-reason",
    ] {
        assert!(expose.contains(name), "{name} not exposed: {expose}");
    }
    let other = preflight("https://evil.example");
    assert!(other.header("access-control-allow-origin").is_none());
    assert_eq!(
        other.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    let body = int_request("echo_int", &[("value", 1)]);
    let actual = post(
        worker.port,
        "/ConformanceService/echo_int",
        &[("Origin", "https://ok.example")],
        &body,
    );
    assert_eq!(actual.status, 200);
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    // Off by default: no CORS header at all.
    let plain = Worker::start(HttpOptions::default());
    let reply = post(
        plain.port,
        "/ConformanceService/echo_int",
        &[("Origin", "https://ok.example")],
        &body,
    );
    assert!(reply.header("access-control-allow-origin").is_none());
    assert!(reply.header("cross-origin-resource-policy").is_none());
}

#[test]
fn a_body_over_the_memory_budget_gets_503_with_a_retry_hint() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, RecordBatch};

    use crate::raw::{request_md, stream};

    let builder = vgi_rpc_conformance::server_builder().memory_budget(8 << 20);
    let worker = Worker::start_with(HttpOptions::default(), builder);
    let request = |big: usize| {
        let data = vec![0x5au8; big];
        let column: ArrayRef = Arc::new(BinaryArray::from(vec![data.as_slice()]));
        let batch = RecordBatch::try_from_iter_with_nullable([("data", column, false)]).unwrap();
        stream(&batch, &request_md("echo_bytes"))
    };
    // A stalled upload holds 6 MiB of the 8 MiB budget.
    let mut stall = TcpStream::connect(("127.0.0.1", worker.port)).unwrap();
    write!(
        stall,
        "POST /ConformanceService/echo_bytes HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/vnd.apache.arrow.stream\r\nContent-Length: {}\r\n\r\n",
        7 << 20
    )
    .unwrap();
    stall.write_all(&vec![0u8; 6 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let refused = post(
        worker.port,
        "/ConformanceService/echo_bytes",
        &[],
        &request(12 << 20),
    );
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused.json()["description"]
            .as_str()
            .is_some_and(|d| d.contains("memory budget")),
        "{refused:?}"
    );
    still_serves(&worker);
    // Once the upload is gone, the same call is admitted on its own (a body over the
    // whole budget gets through a quiet server): every reservation was given back.
    drop(stall);
    let start = std::time::Instant::now();
    loop {
        let reply = post(
            worker.port,
            "/ConformanceService/echo_bytes",
            &[],
            &request(12 << 20),
        );
        if reply.status == 200 {
            assert!(reply.exception().is_none());
            break;
        }
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(start.elapsed() < Duration::from_secs(10), "still refused");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn connections_beyond_the_thread_bound_are_served_as_tasks() {
    let worker = Worker::start(HttpOptions::default());
    // Every connection thread held by an idle connection (each gets one, in order)...
    let bound = vgi_rpc::transport::http::server::CONNECTION_THREADS;
    let mut idle: Vec<TcpStream> = (0..bound)
        .map(|_| TcpStream::connect(("127.0.0.1", worker.port)).unwrap())
        .collect();
    // ...the next ones are answered on the shared runtime, calls on the blocking pool.
    still_serves(&worker);
    still_serves(&worker);
    // An idle connection holding a thread still answers, its call run on that thread.
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = int_request("echo_int", &[("value", 3)]);
    let mut raw = format!(
        "POST /ConformanceService/echo_int HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.apache.arrow.stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    first.write_all(&raw).unwrap();
    let reply = read_reply(first).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.exception().is_none());
    // Dropping the worker shuts down with every idle connection still open.
    drop(worker);
    drop(idle);
}

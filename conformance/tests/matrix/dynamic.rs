//! The dynamic [`Client`](vgi_rpc::client::Client) against ours and the reference worker: unary calls, large
//! payloads, remote errors ([`Error::Rpc`] with the error type and code the server sent,
//! the connection usable afterwards), logs, producer and exchange streams, in-band cancel
//! of an idle stream ([`Error::Cancelled`], connection kept) and request metadata.

use std::sync::{Arc, Mutex};

use arrow_array::{Float64Array, Int64Array, StringArray};
use serde_json::json;
use vgi_rpc::client::{CallOptions, CancelHandle};
use vgi_rpc::wire::{Metadata, keys};
use vgi_rpc::{Error, ErrorCode, LogLevel, RpcError};

use crate::harness::*;

matrix!(conformance: unary, large_payload, errors, logs, producer, exchange, stream_cancel, request_metadata);

fn rpc_error(result: vgi_rpc::Result<impl std::fmt::Debug>) -> RpcError {
    match result {
        Err(Error::Rpc(e)) => *e,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

fn unary(b: &mut Backend) {
    let client = &mut b.connect();
    let opts = CallOptions::default();
    let hello = row(vec![("value", Arc::new(StringArray::from(vec!["hello"])))]);
    let answer = client
        .call(&primary(), "echo_string", &hello, &opts)
        .unwrap();
    assert_eq!(string_value(answer.batch.as_ref().unwrap()), "hello");
    assert!(answer.logs.is_empty());
    assert!(answer.metadata.is_empty(), "{:?}", answer.metadata);

    // Routed by protocol: the secondary's echo_string answers differently.
    let answer = client
        .call(&secondary(), "echo_string", &hello, &opts)
        .unwrap();
    assert_eq!(
        string_value(answer.batch.as_ref().unwrap()),
        "secondary:hello"
    );

    let ab = row(vec![
        ("a", Arc::new(Float64Array::from(vec![1.5]))),
        ("b", Arc::new(Float64Array::from(vec![2.25]))),
    ]);
    let sum = client.call(&primary(), "add_floats", &ab, &opts).unwrap();
    assert_eq!(f64_column(sum.batch.as_ref().unwrap(), "result"), [3.75]);

    let void = client
        .call(&primary(), "void_noop", &no_params(), &opts)
        .unwrap();
    assert!(void.batch.is_none());
}

fn large_payload(b: &mut Backend) {
    let client = &mut b.connect();
    // Bigger than any pipe or socket buffer in both directions.
    let big = "x".repeat(3 << 20);
    let value = row(vec![(
        "value",
        Arc::new(StringArray::from(vec![big.as_str()])),
    )]);
    let answer = client
        .call(&primary(), "echo_string", &value, &CallOptions::default())
        .unwrap();
    assert_eq!(
        string_value(answer.batch.as_ref().unwrap()).len(),
        big.len()
    );
    // Over shared memory the 3 MB answer came through the segment, and its region is
    // freed once the batch is gone (at the next request).
    let through_segment = answer.metadata.get(keys::SHM_SOURCE).is_some();
    assert_eq!(
        through_segment,
        b.transport.shm.is_some(),
        "{:?}",
        answer.metadata
    );
    drop(answer);
    noop(client, &CallOptions::default()).unwrap();
    assert_segment_clean(client, b.transport);
}

fn errors(b: &mut Backend) {
    let client = &mut b.connect();
    let opts = CallOptions::default();
    let msg = row(vec![("message", Arc::new(StringArray::from(vec!["boom"])))]);
    let err = rpc_error(client.call(&primary(), "raise_value_error", &msg, &opts));
    assert_eq!(err.error_type, "ValueError");
    assert_eq!(
        err.code,
        ErrorCode::Unknown,
        "a plain exception carries no code"
    );
    assert!(err.message.contains("boom"), "{err}");
    assert!(!err.is_retryable());

    let fail = |code: &str, kind: &str, delay: f64| {
        row(vec![
            ("code", Arc::new(StringArray::from(vec![code]))),
            ("kind", Arc::new(StringArray::from(vec![kind]))),
            (
                "retry_delay_seconds",
                Arc::new(Float64Array::from(vec![delay])),
            ),
        ])
    };
    let err = rpc_error(client.call(
        &secondary(),
        "fail",
        &fail("RESOURCE_EXHAUSTED", "quota_hit", 2.0),
        &opts,
    ));
    assert_eq!(err.code, ErrorCode::ResourceExhausted);
    assert_eq!(err.kind.as_deref(), Some("quota_hit"));
    assert_eq!(
        err.details[0],
        json!({"@type": "vgi_rpc.ErrorInfo", "metadata": {"fixture": "conformance.Secondary.v1"}})
    );
    assert_eq!(
        err.details[1],
        json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": 2})
    );
    assert_eq!(err.details.len(), 3, "{:?}", err.details);
    assert!(err.is_retryable());

    let err = rpc_error(client.call(&secondary(), "fail", &fail("ABORTED", "", 0.0), &opts));
    assert_eq!(err.code, ErrorCode::Aborted);
    assert_eq!(err.kind, None);
    assert!(!err.is_retryable());

    // Unknown method: a typed error, and the connection survives.
    let err = rpc_error(client.call(&primary(), "no_such_method", &no_params(), &opts));
    assert_ne!(err.code, ErrorCode::Unknown, "{err}");
    noop(client, &opts).unwrap();
}

fn logs(b: &mut Backend) {
    let client = &mut b.connect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    client.set_log_handler(move |record| sink.lock().unwrap().push(record.clone()));
    let value = row(vec![("value", Arc::new(StringArray::from(vec!["x"])))]);
    let answer = client
        .call(
            &primary(),
            "echo_with_multi_logs",
            &value,
            &CallOptions::default(),
        )
        .unwrap();
    let levels: Vec<LogLevel> = answer.logs.iter().map(|l| l.level).collect();
    assert_eq!(levels, [LogLevel::Debug, LogLevel::Info, LogLevel::Warn]);
    assert_eq!(
        *seen.lock().unwrap(),
        answer.logs,
        "the handler saw the same records"
    );

    let extras = client
        .call(
            &primary(),
            "echo_with_log_extras",
            &value,
            &CallOptions::default(),
        )
        .unwrap();
    assert!(!extras.logs[0].extra.is_empty(), "{:?}", extras.logs);

    // Stream logs reach the handler too.
    seen.lock().unwrap().clear();
    let count = row(vec![("count", Arc::new(Int64Array::from(vec![2_i64])))]);
    let mut stream = client
        .open_stream(
            &primary(),
            "produce_with_logs",
            &count,
            &CallOptions::default(),
        )
        .unwrap();
    while stream.tick().unwrap().is_some() {}
    let taken = stream.take_logs();
    drop(stream);
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert_eq!(*seen.lock().unwrap(), taken);
}

fn producer(b: &mut Backend) {
    let client = &mut b.connect();
    let opts = CallOptions::default();
    let count = row(vec![("count", Arc::new(Int64Array::from(vec![3_i64])))]);
    let mut stream = client
        .open_stream(&primary(), "produce_n", &count, &opts)
        .unwrap();
    let mut values = Vec::new();
    while let Some(batch) = stream.tick().unwrap() {
        values.extend(i64_column(&batch, "index"));
    }
    assert_eq!(values, [0, 1, 2]);
    assert!(stream.is_finished());
    stream.close().unwrap();

    let count = row(vec![("count", Arc::new(Int64Array::from(vec![1_i64])))]);
    let mut stream = client
        .open_stream_with_header(&primary(), "produce_with_header", &count, &opts)
        .unwrap();
    assert!(stream.header().is_some());
    assert!(stream.tick().unwrap().is_some());
    assert!(stream.tick().unwrap().is_none());
    drop(stream);

    // An error mid-stream ends the stream, not the connection.
    let emit = row(vec![(
        "emit_before_error",
        Arc::new(Int64Array::from(vec![1_i64])),
    )]);
    let mut stream = client
        .open_stream(&primary(), "produce_error_mid_stream", &emit, &opts)
        .unwrap();
    assert!(stream.tick().unwrap().is_some());
    let err = rpc_error(stream.tick());
    assert!(!err.message.is_empty());
    drop(stream);
    // Without a header the init error arrives on the first tick.
    let mut stream = client
        .open_stream(&primary(), "produce_error_on_init", &no_params(), &opts)
        .unwrap();
    let err = rpc_error(stream.tick());
    assert!(!err.message.is_empty());
    assert!(stream.is_finished());
    drop(stream);
    noop(client, &opts).unwrap();
}

fn exchange(b: &mut Backend) {
    let client = &mut b.connect();
    let opts = CallOptions::default();
    let factor = row(vec![("factor", Arc::new(Float64Array::from(vec![2.0])))]);
    let mut stream = client
        .open_stream(&primary(), "exchange_scale", &factor, &opts)
        .unwrap();
    for x in [1.0, 2.5] {
        let input = row(vec![("value", Arc::new(Float64Array::from(vec![x, -x])))]);
        let out = stream.exchange(&input).unwrap();
        assert_eq!(f64_column(&out, "value"), [2.0 * x, -2.0 * x]);
    }
    stream.close().unwrap();

    let mut stream = client
        .open_stream(&primary(), "exchange_input_metadata", &no_params(), &opts)
        .unwrap();
    let input = row(vec![("value", Arc::new(Float64Array::from(vec![1.0])))]);
    let (out, _) = stream
        .exchange_with_metadata(&input, Metadata::new().with("app.key", "v1"))
        .unwrap();
    assert!(format!("{out:?}").contains("app.key"), "{out:?}");
    drop(stream);
    noop(client, &opts).unwrap();
}

fn stream_cancel(b: &mut Backend) {
    let client = &mut b.connect();
    let opts = CallOptions::default();
    client
        .call(&primary(), "reset_cancel_probe", &no_params(), &opts)
        .unwrap();
    let cancel = CancelHandle::new();
    let mut stream = client
        .open_stream(
            &primary(),
            "cancellable_producer",
            &no_params(),
            &CallOptions::default().with_cancel(cancel.clone()),
        )
        .unwrap();
    assert!(stream.tick().unwrap().is_some());
    assert!(stream.tick().unwrap().is_some());
    // Cancelled from another thread while the stream is idle: sent in-band.
    std::thread::spawn(move || cancel.cancel()).join().unwrap();
    let err = stream.tick().unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    drop(stream);
    assert!(
        !client.is_broken(),
        "an in-band cancel keeps the connection"
    );
    let counters = client
        .call(&primary(), "cancel_probe_counters", &no_params(), &opts)
        .unwrap();
    let batch = counters.batch.unwrap();
    let list = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .unwrap();
    let values = list.value(0);
    let values = values.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(
        values.values().to_vec(),
        [2, 0, 1],
        "produce, exchange, on_cancel"
    );

    // A handle cancelled before the call: refused without touching the connection.
    let cancelled = CancelHandle::new();
    cancelled.cancel();
    let err = client
        .call(
            &primary(),
            "void_noop",
            &no_params(),
            &CallOptions::default().with_cancel(cancelled),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(!client.is_broken());
}

fn request_metadata(b: &mut Backend) {
    let client = &mut b.connect();
    // A whole metadata map passed through verbatim, framework keys included.
    let md = Metadata::new()
        .with("vgi_rpc.method", "echo_string")
        .with("vgi_rpc.protocol", "ConformanceService")
        .with("vgi_rpc.protocol_version", "2.0.0")
        .with("vgi_rpc.request_version", "1")
        .with("app.trace", "abc");
    let value = row(vec![("value", Arc::new(StringArray::from(vec!["m"])))]);
    let answer = client
        .call(
            &primary(),
            "echo_string",
            &value,
            &CallOptions::default().with_metadata(md),
        )
        .unwrap();
    assert_eq!(string_value(answer.batch.as_ref().unwrap()), "m");
}

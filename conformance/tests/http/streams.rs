//! Streams over HTTP: every turn a request, continued through sealed tokens.

use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use vgi_rpc::transport::http::HttpOptions;
use vgi_rpc::wire::keys;

use crate::raw::{Worker, int_request, post, tick};

/// The `n` column of the data batches in a reply.
fn values(reply: &crate::raw::Reply) -> Vec<i64> {
    reply
        .batches()
        .into_iter()
        .filter(|(b, _)| b.num_rows() > 0)
        .flat_map(|(b, _)| {
            b.column_by_name("index")
                .map(|c| c.as_primitive::<Int64Type>().values().to_vec())
                .unwrap_or_default()
        })
        .collect()
}

/// Runs `produce_n(3)` to its end, each continuation on the next worker of `workers`
/// (round robin), and returns the indices received.
fn produce_across(workers: &[&Worker]) -> Vec<i64> {
    let init = post(
        workers[0].port,
        "/ConformanceService/produce_n/init",
        &[],
        &int_request("produce_n", &[("count", 3)]),
    );
    assert_eq!(init.status, 200);
    let call = init
        .token(keys::CALL_STATE)
        .expect("the init answer carries the call token");
    let mut cursor = init.token(keys::STREAM_STATE);
    let mut seen = values(&init);
    let mut turn = 1;
    while let Some(c) = cursor {
        let worker = workers[turn % workers.len()];
        let reply = post(
            worker.port,
            "/ConformanceService/produce_n/exchange",
            &[],
            &tick(&c, &call, &[]),
        );
        assert_eq!(reply.status, 200, "{:?}", reply.exception());
        assert!(
            reply.token(keys::CALL_STATE).is_none(),
            "continuations carry the cursor only"
        );
        seen.extend(values(&reply));
        cursor = reply.token(keys::STREAM_STATE);
        turn += 1;
    }
    seen
}

#[test]
fn a_producer_continues_on_the_worker_that_started_it() {
    let worker = Worker::start(HttpOptions::default());
    assert_eq!(produce_across(&[&worker]), vec![0, 1, 2]);
}

#[test]
fn a_resumable_producer_continues_on_any_worker_sharing_the_key() {
    let key = [9u8; 32];
    let a = Worker::start(HttpOptions::default().token_key(key));
    let b = Worker::start(HttpOptions::default().token_key(key));
    assert_eq!(produce_across(&[&a, &b]), vec![0, 1, 2]);
    // A worker with another key refuses the tokens, uniformly.
    let c = Worker::start(HttpOptions::default());
    let init = post(
        a.port,
        "/ConformanceService/produce_n/init",
        &[],
        &int_request("produce_n", &[("count", 3)]),
    );
    let body = tick(
        &init.token(keys::STREAM_STATE).unwrap(),
        &init.token(keys::CALL_STATE).unwrap(),
        &[],
    );
    let refused = post(c.port, "/ConformanceService/produce_n/exchange", &[], &body);
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.exception().as_deref(),
        Some("RuntimeError: State token signature verification failed")
    );
}

#[test]
fn a_held_state_continues_only_where_it_is_held_and_only_once() {
    // `cancellable_producer`'s state (it counts into a probe) is not resumable: the
    // worker that started it holds it.
    let key = [3u8; 32];
    let a = Worker::start(HttpOptions::default().token_key(key));
    let b = Worker::start(HttpOptions::default().token_key(key));
    let init = post(
        a.port,
        "/ConformanceService/cancellable_producer/init",
        &[],
        &int_request("cancellable_producer", &[]),
    );
    assert_eq!(init.status, 200, "{:?}", init.exception());
    let call = init.token(keys::CALL_STATE).unwrap();
    let cursor = init.token(keys::STREAM_STATE).unwrap();
    let elsewhere = post(
        b.port,
        "/ConformanceService/cancellable_producer/exchange",
        &[],
        &tick(&cursor, &call, &[]),
    );
    assert_eq!(elsewhere.status, 400);
    assert!(
        elsewhere
            .exception()
            .unwrap()
            .contains("not held on this worker")
    );
    let here = post(
        a.port,
        "/ConformanceService/cancellable_producer/exchange",
        &[],
        &tick(&cursor, &call, &[]),
    );
    assert_eq!(here.status, 200);
    assert_eq!(values(&here), vec![1]);
    // The state moved on with that turn: its old cursor is spent.
    let replay = post(
        a.port,
        "/ConformanceService/cancellable_producer/exchange",
        &[],
        &tick(&cursor, &call, &[]),
    );
    assert_eq!(replay.status, 400);
    // Cancel through the fresh cursor: answered with an empty output stream.
    let next = here.token(keys::STREAM_STATE).unwrap();
    let cancel = post(
        a.port,
        "/ConformanceService/cancellable_producer/exchange",
        &[],
        &tick(&next, &call, &[(keys::CANCEL, "1")]),
    );
    assert_eq!(cancel.status, 200);
    assert!(
        cancel.batches().is_empty(),
        "a cancelled stream answers schema + EOS"
    );
}

#[test]
fn a_replayed_resumable_cursor_reruns_its_turn() {
    // As the reference does: the state travels in the token, so the same cursor
    // answers the same turn again (the client never replays; a retry is harmless).
    let worker = Worker::start(HttpOptions::default());
    let init = post(
        worker.port,
        "/ConformanceService/produce_n/init",
        &[],
        &int_request("produce_n", &[("count", 5)]),
    );
    let body = tick(
        &init.token(keys::STREAM_STATE).unwrap(),
        &init.token(keys::CALL_STATE).unwrap(),
        &[],
    );
    let first = post(
        worker.port,
        "/ConformanceService/produce_n/exchange",
        &[],
        &body,
    );
    let again = post(
        worker.port,
        "/ConformanceService/produce_n/exchange",
        &[],
        &body,
    );
    assert_eq!(values(&first), vec![1]);
    assert_eq!(values(&again), vec![1]);
}

#[test]
fn expired_forged_truncated_and_swapped_tokens_get_a_uniform_400() {
    let worker = Worker::start(HttpOptions::default().token_ttl(Duration::from_secs(0)));
    let init = post(
        worker.port,
        "/ConformanceService/produce_n/init",
        &[],
        &int_request("produce_n", &[("count", 5)]),
    );
    let call = init.token(keys::CALL_STATE).unwrap();
    let cursor = init.token(keys::STREAM_STATE).unwrap();
    let exchange = |cursor: &str, call: &str| {
        let reply = post(
            worker.port,
            "/ConformanceService/produce_n/exchange",
            &[],
            &tick(cursor, call, &[]),
        );
        assert_eq!(reply.status, 400);
        reply.exception().unwrap()
    };
    let mut forged = cursor.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        exchange(&forged, &call),
        "RuntimeError: State token signature verification failed"
    );
    assert_eq!(
        exchange(&cursor[..cursor.len() / 2], &call),
        "RuntimeError: State token signature verification failed"
    );
    assert_eq!(
        exchange(&call, &cursor),
        "RuntimeError: State token signature verification failed"
    );
    assert_eq!(
        exchange("", &call),
        "RuntimeError: State token signature verification failed"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        exchange(&cursor, &call),
        "RuntimeError: State token expired"
    );
}

#[test]
fn exchange_turns_carry_the_cursor_on_their_output_batch() {
    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let worker = Worker::start(HttpOptions::default());
    let mut md = crate::raw::request_md("exchange_scale");
    md.insert("x", "y");
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "factor",
            DataType::Float64,
            false,
        )])),
        vec![Arc::new(Float64Array::from(vec![2.0]))],
    )
    .unwrap();
    let init = post(
        worker.port,
        "/ConformanceService/exchange_scale/init",
        &[],
        &crate::raw::stream(&params, &crate::raw::request_md("exchange_scale")),
    );
    assert_eq!(init.status, 200, "{:?}", init.exception());
    let call = init.token(keys::CALL_STATE).unwrap();
    let mut cursor = init.token(keys::STREAM_STATE).unwrap();
    for round in 1..=3 {
        let input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Float64,
                false,
            )])),
            vec![Arc::new(Float64Array::from(vec![f64::from(round)]))],
        )
        .unwrap();
        let md = vgi_rpc::wire::Metadata::new()
            .with(keys::STREAM_STATE, cursor.clone())
            .with(keys::CALL_STATE, call.clone());
        let reply = post(
            worker.port,
            "/ConformanceService/exchange_scale/exchange",
            &[],
            &crate::raw::stream(&input, &md),
        );
        assert_eq!(reply.status, 200, "{:?}", reply.exception());
        let batches = reply.batches();
        assert_eq!(batches.len(), 1, "one data batch, no sentinel");
        let (batch, md) = &batches[0];
        let scaled = batch
            .column(0)
            .as_primitive::<arrow_array::types::Float64Type>()
            .value(0);
        assert_eq!(scaled, 2.0 * f64::from(round));
        cursor = md
            .get(keys::STREAM_STATE)
            .expect("cursor on the output batch")
            .to_owned();
    }
}

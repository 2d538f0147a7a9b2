//! Pointers resolved by our client: from the reference worker (which externalizes
//! headers too) and from ours, over pipes and sockets.

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{Metadata, keys};
use vgi_rpc_conformance::fake_storage::{FakeStorage, StorageHandle};
use vgi_rpc_conformance::matrix;

use crate::{
    bounded, call_with, count, echo_string, float_values, floats, primary, published,
    reference_worker, resolving, scale_stream, venv,
};

/// Everything the shared suite's byte-stream group checks, from our client's side,
/// against `worker`: results, stream turns with their logs and metadata, headers,
/// exchanges, errors among pointers, and pre-published results.
fn round_trips(address: Address, storage: StorageHandle) {
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&logs);
    let mut client = Client::connect_with(&address, resolving(&["127.0.0.1"])).unwrap();
    client.set_log_handler(move |record| sink.lock().unwrap().push(record.message.clone()));
    let before = storage.object_count().unwrap();

    // A unary result: resolved, with the provenance keys and without the pointer's.
    let params = RecordBatch::try_from_iter([(
        "value",
        Arc::new(StringArray::from(vec!["é".repeat(4096)])) as _,
    )])
    .unwrap();
    let answer = call_with(&mut client, "echo_string", &params).unwrap();
    assert_eq!(
        answer.batch.unwrap().column(0).as_string::<i32>().value(0),
        "é".repeat(4096)
    );
    assert!(
        answer
            .metadata
            .get(keys::LOCATION_SOURCE)
            .is_some_and(|s| s.starts_with("http://127.0.0.1"))
    );
    assert!(answer.metadata.get(keys::LOCATION_FETCH_MS).is_some());
    assert!(
        !answer.metadata.contains(keys::LOCATION)
            && !answer.metadata.contains(keys::LOCATION_SHA256)
    );
    assert!(
        storage.object_count().unwrap() > before,
        "nothing went through storage"
    );

    // Producer turns: each batch with its own metadata, each turn's log delivered.
    {
        let mut stream = client
            .open_stream(
                &primary(),
                "produce_with_logs",
                &count(3),
                &CallOptions::default(),
            )
            .unwrap();
        let mut values = Vec::new();
        while let Some((batch, md)) = stream.tick_with_metadata(Metadata::new()).unwrap() {
            values.push(
                batch
                    .column_by_name("value")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .value(0),
            );
            assert!(
                md.contains(keys::LOCATION_SOURCE) && !md.contains(keys::LOCATION),
                "{md:?}"
            );
        }
        assert_eq!(values, [0, 10, 20]);
    }
    let messages = logs.lock().unwrap().clone();
    assert_eq!(
        messages,
        [
            "producing batch 0",
            "producing batch 1",
            "producing batch 2"
        ]
    );

    // A header (externalized alone by the reference) and a producer after it.
    {
        let params = RecordBatch::try_from_iter([
            ("seed", Arc::new(Int64Array::from(vec![42])) as _),
            ("count", Arc::new(Int64Array::from(vec![2])) as _),
        ])
        .unwrap();
        let mut stream = client
            .open_stream_with_header(
                &primary(),
                "produce_with_rich_header",
                &params,
                &CallOptions::default(),
            )
            .unwrap();
        let header = stream.header().expect("a header").clone();
        assert_eq!(header.num_rows(), 1);
        assert_eq!(
            header
                .column_by_name("str_field")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "seed-42"
        );
        let mut n = 0;
        while stream.tick().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 2);
    }

    // Exchange turns, each resolving its own payload.
    {
        let mut stream = scale_stream(&mut client, 3.0);
        for (input, want) in [(vec![1.0, 2.0], vec![3.0, 6.0]), (vec![4.0], vec![12.0])] {
            let out = stream.exchange(&floats("value", input)).unwrap();
            assert_eq!(float_values(&out), want);
        }
        stream.close().unwrap();
    }

    // An error after pointers is still the server's error; the connection goes on.
    {
        let params = RecordBatch::try_from_iter([(
            "emit_before_error",
            Arc::new(Int64Array::from(vec![2])) as _,
        )])
        .unwrap();
        let mut stream = client
            .open_stream(
                &primary(),
                "produce_error_mid_stream",
                &params,
                &CallOptions::default(),
            )
            .unwrap();
        let outcome = (0..5).try_for_each(|_| stream.tick().map(|_| ()));
        match outcome {
            Err(Error::Rpc(e)) => assert!(e.message.contains("intentional error"), "{e:?}"),
            other => panic!("expected the server's error, got {other:?}"),
        }
    }
    assert_eq!(
        echo_string(&mut client, "still here").unwrap(),
        "still here"
    );

    // Pre-published results: both digest variants resolve, and repeats upload nothing.
    let value = format!("published-{}", std::process::id());
    for sha in [true, false] {
        assert_eq!(published(&mut client, &value, sha).unwrap().0, value);
    }
    let before = storage.object_count().unwrap();
    let (_, md) = published(&mut client, &value, true).unwrap();
    assert_eq!(
        storage.object_count().unwrap(),
        before,
        "a published result was uploaded again"
    );
    assert!(md.contains(keys::LOCATION_SOURCE));
}

#[test]
fn our_client_resolves_the_reference_workers_pointers() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let address = reference_worker(storage);
    bounded(move || round_trips(address, storage));
}

#[test]
fn our_worker_externalizes_for_our_client() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let address = Address::Exec(vec![
        env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker").into(),
        "--pipe".into(),
        "--fake-storage".into(),
        storage.url(),
        "--externalize-threshold".into(),
        "1".into(),
    ]);
    bounded(move || round_trips(address, storage));
}

/// The same over our worker's sockets: externalization is the engine's, not the pipe's.
#[test]
fn our_worker_externalizes_over_sockets() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    for name in ["unix", "tcp"] {
        let transport = matrix::transport(name).unwrap();
        let program = matrix::WorkerProgram::new(
            "ours",
            vec![
                env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker").into(),
                "--fake-storage".into(),
                storage.url(),
                "--externalize-threshold".into(),
                "1".into(),
            ],
        );
        // The worker stays on this thread, so it is stopped even if the scenario hangs.
        let endpoint = matrix::Endpoint::start(&program, transport).unwrap();
        let address = Address::parse(endpoint.address()).unwrap();
        bounded(move || round_trips(address, storage));
    }
}

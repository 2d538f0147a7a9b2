//! External storage on byte streams: our client against the reference worker
//! (`vgi-rpc-conformance --pipe --fake-storage URL --externalize-threshold 1`), which
//! answers every data batch with a pointer into the reference's fake storage.
//!
//! Every scenario runs on its own thread under a time limit, so a client that blocks
//! (the defect of issue 13: a pointer it could not resolve left it draining an output
//! stream the worker had not ended, while the worker waited for the next tick) fails
//! the test instead of hanging the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::external::{ExternalConfig, FetchOptions, Storage, UrlPolicy};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{Metadata, keys};
use vgi_rpc::{Error, ExternalFailure};
use vgi_rpc_conformance::fake_storage::{FakeStorage, StorageHandle};
use vgi_rpc_conformance::matrix;

/// How long one scenario may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(30);

fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| matrix::ensure_python_venv().unwrap())
        .clone()
}

/// Runs `body` on its own thread; taking longer than [`LIMIT`] fails the test.
fn bounded(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(LIMIT) {
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: still running after {LIMIT:?}"),
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// The reference worker over a pipe, externalizing every data batch into `storage`.
fn reference_worker(storage: StorageHandle) -> Address {
    let bin = venv().join("bin/vgi-rpc-conformance");
    Address::Exec(vec![
        bin.display().to_string(),
        "--pipe".into(),
        "--describe".into(),
        "--fake-storage".into(),
        storage.url(),
        "--externalize-threshold".into(),
        "1".into(),
    ])
}

fn primary() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

fn count(n: i64) -> RecordBatch {
    RecordBatch::try_from_iter([("count", Arc::new(Int64Array::from(vec![n])) as _)]).unwrap()
}

fn echo_string(client: &mut Client, value: &str) -> vgi_rpc::Result<String> {
    let params =
        RecordBatch::try_from_iter([("value", Arc::new(StringArray::from(vec![value])) as _)])
            .unwrap();
    let answer = client.call(&primary(), "echo_string", &params, &CallOptions::default())?;
    let batch = answer.batch.expect("a result");
    Ok(batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .value(0)
        .to_owned())
}

/// Issue 13's defect, reproduced: a client that does not resolve external pointers meets
/// one in a producer stream. It must fail that turn with a typed error at once, close the
/// stream in bounded time, and be usable for the next call.
#[test]
fn a_pointer_the_client_cannot_resolve_fails_the_turn_at_once() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let address = reference_worker(storage);
    bounded(move || {
        let mut client = Client::connect_with(&address, ConnectOptions::default()).unwrap();
        let started = Instant::now();
        {
            let mut stream = client
                .open_stream(&primary(), "produce_n", &count(3), &CallOptions::default())
                .unwrap();
            match stream.tick() {
                Err(Error::External { kind, .. }) => assert_eq!(kind, ExternalFailure::NotEnabled),
                other => panic!("expected an external-storage error, got {other:?}"),
            }
            // Dropping (closing) the failed stream is bounded too.
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the failure took {:?}",
            started.elapsed()
        );
        // The connection was resynchronised, not dropped: the same worker answers the
        // next call, whose answer is a pointer too, refused again at once.
        assert!(!client.is_broken());
        let pid = client.worker_pid();
        match echo_string(&mut client, "after") {
            Err(Error::External { kind, .. }) => assert_eq!(kind, ExternalFailure::NotEnabled),
            other => panic!("expected an external-storage error, got {other:?}"),
        }
        assert_eq!(client.worker_pid(), pid);
        assert!(!client.is_broken());
        let stats = storage.object_count().unwrap();
        assert!(stats >= 2, "the worker externalized {stats} objects");
    });
}

/// A client resolving pointers from the fake storage (loopback URLs only).
fn resolving(policy_hosts: &[&str]) -> ConnectOptions {
    let config = ExternalConfig::new()
        .with_url_policy(UrlPolicy::loopback().with_hosts(policy_hosts.iter().copied()));
    ConnectOptions::default().with_external(Arc::new(config))
}

fn call_with(
    client: &mut Client,
    method: &str,
    params: &RecordBatch,
) -> vgi_rpc::Result<vgi_rpc::client::UnaryResult> {
    client.call(&primary(), method, params, &CallOptions::default())
}

fn published(client: &mut Client, value: &str, sha: bool) -> vgi_rpc::Result<(String, Metadata)> {
    let params = RecordBatch::try_from_iter([
        ("value", Arc::new(StringArray::from(vec![value])) as _),
        (
            "include_sha256",
            Arc::new(BooleanArray::from(vec![sha])) as _,
        ),
    ])
    .unwrap();
    let answer = call_with(client, "published_string", &params)?;
    let batch = answer.batch.expect("a result");
    Ok((
        batch.column(0).as_string::<i32>().value(0).to_owned(),
        answer.metadata,
    ))
}

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
        let params =
            RecordBatch::try_from_iter([("factor", Arc::new(Float64Array::from(vec![3.0])) as _)])
                .unwrap();
        let mut stream = client
            .open_stream(
                &primary(),
                "exchange_scale",
                &params,
                &CallOptions::default(),
            )
            .unwrap();
        for (input, want) in [(vec![1.0, 2.0], vec![3.0, 6.0]), (vec![4.0], vec![12.0])] {
            let batch =
                RecordBatch::try_from_iter([("value", Arc::new(Float64Array::from(input)) as _)])
                    .unwrap();
            let out = stream.exchange(&batch).unwrap();
            assert_eq!(
                out.column(0)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec(),
                want
            );
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

/// How [`Tampering`] spoils what it stores.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// Drops the object's last bytes.
    Truncate,
    /// Hands out the fake storage's redirect to `localhost`, which the client's policy
    /// (127.0.0.1 only) must refuse.
    RedirectToLocalhost,
    /// Hands out a URL to an object that does not exist.
    Missing,
}

/// A storage that stores objects and hands out spoiled URLs or bytes.
#[derive(Debug)]
struct Tampering {
    inner: vgi_rpc::external::FakeStorage,
    spoil: Spoil,
}

impl Storage for Tampering {
    fn put(&self, mut object: Vec<u8>, encoding: Option<&str>) -> vgi_rpc::Result<String> {
        if let Spoil::Truncate = self.spoil {
            object.truncate(object.len() - 16);
        }
        let url = self.inner.put(object, encoding)?;
        Ok(match self.spoil {
            Spoil::Truncate => url,
            Spoil::RedirectToLocalhost => url.replace("/download/", "/redirect-localhost/"),
            Spoil::Missing => format!("{url}-missing?X-Amz-Signature=secret"),
        })
    }
}

/// Our conformance service in this process, publishing `published_string` through
/// `storage` (nothing else is externalized), and a client of it with `options`.
fn in_process(storage: Arc<dyn Storage>, options: ConnectOptions) -> Client {
    let config = Arc::new(
        ExternalConfig::new()
            .with_storage(storage)
            .with_threshold(usize::MAX)
            .with_url_policy(UrlPolicy::loopback()),
    );
    let server = vgi_rpc_conformance::server_builder_with_external(config)
        .build()
        .unwrap();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = theirs.try_clone().unwrap();
    std::thread::spawn(move || vgi_rpc::server::serve_connection(&server, reader, theirs));
    let writer = ours.try_clone().unwrap();
    Client::from_link(Link::new(ours, writer), options)
}

fn external_failure(result: vgi_rpc::Result<(String, Metadata)>) -> (ExternalFailure, String) {
    match result {
        Err(Error::External { kind, message }) => (kind, message),
        other => panic!("expected an external-storage error, got {other:?}"),
    }
}

/// Objects that break the contract (a digest that differs, a truncated stream, a
/// redirect the policy forbids, an object that is too large or missing) each fail the
/// call with their typed error, no secret in the message, and the connection stays
/// usable.
#[test]
fn bad_objects_are_typed_errors_on_a_usable_connection() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    bounded(move || {
        let fake = || vgi_rpc::external::FakeStorage::new(storage.url());
        let tampering = |spoil| {
            Arc::new(Tampering {
                inner: fake(),
                spoil,
            }) as Arc<dyn Storage>
        };
        let quick = FetchOptions::default().with_retries(2, Duration::from_millis(10));
        let reader = |fetch: FetchOptions| {
            let config = ExternalConfig::new()
                .with_url_policy(UrlPolicy::loopback().with_hosts(["127.0.0.1"]))
                .with_fetch_options(fetch);
            ConnectOptions::default().with_external(Arc::new(config))
        };
        let cases: [(Arc<dyn Storage>, FetchOptions, bool, ExternalFailure); 5] = [
            (
                tampering(Spoil::Truncate),
                quick.clone(),
                true,
                ExternalFailure::Integrity,
            ),
            (
                tampering(Spoil::Truncate),
                quick.clone(),
                false,
                ExternalFailure::Invalid,
            ),
            (
                tampering(Spoil::RedirectToLocalhost),
                quick.clone(),
                true,
                ExternalFailure::UrlRejected,
            ),
            (
                Arc::new(fake()),
                quick.clone().with_max_fetch_bytes(64),
                true,
                ExternalFailure::TooLarge,
            ),
            (
                tampering(Spoil::Missing),
                quick.clone(),
                true,
                ExternalFailure::Fetch,
            ),
        ];
        for (store, fetch, sha, want) in cases {
            let mut client = in_process(store, reader(fetch));
            let (kind, message) = external_failure(published(&mut client, "spoiled", sha));
            assert_eq!(kind, want, "{message}");
            assert!(!message.contains("secret"), "{message}");
            assert!(!client.is_broken());
            assert_eq!(echo_string(&mut client, "next").unwrap(), "next");
        }
        // The forbidden redirect was refused at its first hop (the HEAD), before any
        // request reached `localhost`.
        let stats = storage.stats().unwrap();
        let hits = |route: &str| stats.get(route).and_then(serde_json::Value::as_u64);
        assert_eq!(hits("redirect_localhost_requests"), Some(1), "{stats}");
    });
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

/// A client with storage of its own sends large exchange inputs as pointers; both our
/// worker and the reference resolve them (with the input's metadata).
fn exchange_inputs_through_storage(address: Address, storage: StorageHandle) {
    let config = ExternalConfig::new()
        .with_storage(Arc::new(vgi_rpc::external::FakeStorage::new(storage.url())))
        .with_threshold(1)
        .with_url_policy(UrlPolicy::loopback());
    let options = ConnectOptions::default().with_external(Arc::new(config));
    let mut client = Client::connect_with(&address, options).unwrap();
    let before = storage.object_count().unwrap();
    let params =
        RecordBatch::try_from_iter([("factor", Arc::new(Float64Array::from(vec![2.0])) as _)])
            .unwrap();
    let mut stream = client
        .open_stream(
            &primary(),
            "exchange_scale",
            &params,
            &CallOptions::default(),
        )
        .unwrap();
    let input =
        RecordBatch::try_from_iter([("value", Arc::new(Float64Array::from(vec![1.0, 2.5])) as _)])
            .unwrap();
    let out = stream.exchange(&input).unwrap();
    assert_eq!(
        out.column(0)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        [2.0, 5.0]
    );
    stream.close().unwrap();
    let mut stream = client
        .open_stream(
            &primary(),
            "exchange_input_metadata",
            &no_params(),
            &CallOptions::default(),
        )
        .unwrap();
    let md = Metadata::new().with("vgi.conformance.input", "carried");
    let (out, _) = stream.exchange_with_metadata(&input, md).unwrap();
    assert_eq!(
        out.column_by_name("seen")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "carried"
    );
    stream.close().unwrap();
    // Two inputs went out through storage (and, from a worker that externalizes, two
    // outputs came back through it).
    assert!(storage.object_count().unwrap() >= before + 2);
}

fn no_params() -> RecordBatch {
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(0));
    RecordBatch::try_new_with_options(Arc::new(arrow_schema::Schema::empty()), vec![], &options)
        .unwrap()
}

#[test]
fn our_client_externalizes_exchange_inputs() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let ours = Address::Exec(vec![
        env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker").into(),
        "--pipe".into(),
        "--fake-storage".into(),
        storage.url(),
    ]);
    let reference = reference_worker(storage);
    bounded(move || {
        exchange_inputs_through_storage(ours, storage);
        exchange_inputs_through_storage(reference, storage);
    });
}

//! External storage over HTTP, our client against our worker: answers externalized
//! (unary results, producer turns, exchange outputs whose cursor rides inside the
//! object), oversized requests sent through upload URLs the worker vends, the external
//! cap, and spoiled objects failing as typed errors on a client that stays usable.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, LargeStringArray, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, HttpConnectOptions};
use vgi_rpc::external::{ExternalConfig, FetchOptions, Storage, UrlPolicy};
use vgi_rpc::transport::Address;
use vgi_rpc::transport::Shutdown;
use vgi_rpc::transport::http::{HttpOptions, StorageOptions};
use vgi_rpc::wire::keys;
use vgi_rpc::{Error, ExternalFailure};
use vgi_rpc_conformance::fake_storage::FakeStorage;

use crate::{bounded, call_with, float_values, floats, primary, scale_stream, venv};
use vgi_rpc_conformance::announce::spawn_announcing;

/// Our worker binary over HTTP with `flags`; killed on drop.
struct HttpWorker {
    child: Child,
    url: String,
}

impl HttpWorker {
    fn start(flags: &[String]) -> HttpWorker {
        let (child, port) = spawn_announcing(
            Command::new(env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker"))
                .args(["--http", "0"])
                .args(flags)
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        HttpWorker {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of `url` resolving pointers from this machine, compressing nothing (so an
/// oversized body is oversized on the wire too).
fn client(url: &str, fetch: FetchOptions) -> Client {
    let config = ExternalConfig::new()
        .with_url_policy(UrlPolicy::loopback().with_hosts(["127.0.0.1"]))
        .with_fetch_options(fetch);
    let options = ConnectOptions::default()
        .with_external(Arc::new(config))
        .with_http(HttpConnectOptions::default().with_compression_level(None));
    Client::connect_with(&Address::parse(url).unwrap(), options).unwrap()
}

fn string_param(value: &str) -> RecordBatch {
    RecordBatch::try_from_iter([("value", Arc::new(LargeStringArray::from(vec![value])) as _)])
        .unwrap()
}

/// `echo_large_string(value)`: the value and the answer's metadata.
fn echo_large(
    client: &mut Client,
    value: &str,
) -> vgi_rpc::Result<(String, vgi_rpc::wire::Metadata)> {
    let answer = call_with(client, "echo_large_string", &string_param(value))?;
    let batch = answer.batch.expect("a result");
    Ok((
        batch.column(0).as_string::<i64>().value(0).to_owned(),
        answer.metadata,
    ))
}

/// A value of `len` hex digits: incompressible enough that it stays large on the wire.
fn noise(len: usize) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state & 15) as usize])
        })
        .collect()
}

#[test]
fn answers_and_requests_travel_through_storage_over_http() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let worker = HttpWorker::start(&["--fake-storage".into(), storage.url()]);
    let url = worker.url.clone();
    bounded(move || {
        let caps = vgi_rpc::transport::http::client::capabilities(&url, &ConnectOptions::default())
            .unwrap();
        assert!(caps.externalization_enabled && caps.upload_url_support);
        assert_eq!(caps.max_request_bytes, Some(4096), "the threshold");
        let mut client = client(&url, FetchOptions::default());

        // Small: inline both ways, nothing stored.
        let before = storage.object_count().unwrap();
        let (small, md) = echo_large(&mut client, "small").unwrap();
        assert_eq!(small, "small");
        assert!(!md.contains(keys::LOCATION_SOURCE));
        assert_eq!(storage.object_count().unwrap(), before);

        // 40 KB: the request goes up through an upload URL (over max_request_bytes), the
        // answer comes back as a pointer the client resolved (its provenance key says so).
        let big = noise(40_000);
        let (echoed, md) = echo_large(&mut client, &big).unwrap();
        assert_eq!(echoed, big);
        let source = md
            .get(keys::LOCATION_SOURCE)
            .expect("resolved from a pointer");
        assert!(source.starts_with(&storage.url()), "{source}");
        assert!(
            storage.object_count().unwrap() >= before + 2,
            "request + answer"
        );

        // A producer: every turn's batch (16 KB) through storage, in order.
        let before = storage.object_count().unwrap();
        let params = RecordBatch::try_from_iter([
            (
                "rows_per_batch",
                Arc::new(Int64Array::from(vec![1000])) as _,
            ),
            ("batch_count", Arc::new(Int64Array::from(vec![3])) as _),
        ])
        .unwrap();
        let mut stream = client
            .open_stream(
                &primary(),
                "produce_large_batches",
                &params,
                &CallOptions::default(),
            )
            .unwrap();
        let mut indices = Vec::new();
        while let Some(batch) = stream.tick().unwrap() {
            indices.extend(
                batch
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        drop(stream);
        assert_eq!(indices, (0..3000).collect::<Vec<i64>>());
        assert!(
            storage.object_count().unwrap() >= before + 3,
            "one object per turn"
        );

        // An exchange: 16 KB inputs go up through upload URLs, outputs come back as
        // pointers whose object carries the next cursor; three turns in a row prove it.
        let before = storage.object_count().unwrap();
        let values: Vec<f64> = (0..2000).map(f64::from).collect();
        let mut stream = scale_stream(&mut client, 2.0);
        for _ in 0..3 {
            let out = stream.exchange(&floats("value", values.clone())).unwrap();
            let doubled: Vec<f64> = values.iter().map(|v| v * 2.0).collect();
            assert_eq!(float_values(&out), doubled);
        }
        stream.close().unwrap();
        assert!(
            storage.object_count().unwrap() >= before + 6,
            "3 inputs + 3 outputs"
        );

        // The vended pairs themselves.
        let pairs = vgi_rpc::transport::http::client::request_upload_urls(
            &url,
            &ConnectOptions::default(),
            3,
        )
        .unwrap();
        assert_eq!(pairs.len(), 3);
        assert!(
            pairs
                .iter()
                .all(|p| p.upload_url != p.download_url && p.expires_at.is_some())
        );
        assert!(!client.is_broken());
    });
}

#[test]
fn the_external_cap_fails_the_call_and_the_client_goes_on() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let worker = HttpWorker::start(&[
        "--fake-storage".into(),
        storage.url(),
        "--max-externalized-response-bytes".into(),
        "65536".into(),
        "--max-request-bytes".into(),
        "1048576".into(),
    ]);
    let url = worker.url.clone();
    bounded(move || {
        let mut client = client(&url, FetchOptions::default());
        let before = storage.object_count().unwrap();
        let err = echo_large(&mut client, &"x".repeat(200_000)).unwrap_err();
        let rpc = err.as_rpc().expect("the server's error");
        assert!(
            rpc.message.contains("max_externalized_response_bytes"),
            "{rpc:?}"
        );
        assert_eq!(
            storage.object_count().unwrap(),
            before,
            "nothing was uploaded"
        );
        // Under the cap, the same channel works.
        let (echoed, md) = echo_large(&mut client, &"y".repeat(8_000)).unwrap();
        assert_eq!(echoed.len(), 8_000);
        assert!(md.contains(keys::LOCATION_SOURCE));
        // A producer gets no escape either.
        let params = RecordBatch::try_from_iter([(
            "rows_per_batch",
            Arc::new(Int64Array::from(vec![40_000])) as _,
        )])
        .unwrap();
        // (Over HTTP its first turn is answered with the start, so the error may come
        // from the open or from the first tick.)
        let err = match client.open_stream(
            &primary(),
            "produce_oversized_batch",
            &params,
            &CallOptions::default(),
        ) {
            Err(e) => e,
            Ok(mut stream) => loop {
                match stream.tick() {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the oversized producer finished"),
                    Err(e) => break e,
                }
            },
        };
        assert!(
            err.to_string().contains("max_externalized_response_bytes"),
            "{err}"
        );
        assert_eq!(echo_large(&mut client, "after").unwrap().0, "after");
    });
}

/// A storage whose objects lose their last bytes.
#[derive(Debug)]
struct Truncating(vgi_rpc::external::FakeStorage);

impl Storage for Truncating {
    fn put(&self, mut object: Vec<u8>, encoding: Option<&str>) -> vgi_rpc::Result<String> {
        object.truncate(object.len().saturating_sub(16));
        self.0.put(object, encoding)
    }
}

#[test]
fn a_spoiled_answer_is_a_typed_error_on_a_usable_client() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    bounded(move || {
        let config = ExternalConfig::new()
            .with_storage(Arc::new(Truncating(vgi_rpc::external::FakeStorage::new(
                storage.url(),
            ))))
            .with_threshold(4096)
            .with_url_policy(UrlPolicy::loopback());
        let server = vgi_rpc_conformance::server_builder_with_external(Arc::new(config))
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shutdown = Shutdown::new().unwrap();
        let stop = shutdown.clone();
        let options = HttpOptions::default().storage(StorageOptions::default());
        let serving = std::thread::spawn(move || {
            vgi_rpc::transport::http::serve(&server, &options, listener, &stop).unwrap();
        });
        let quick = FetchOptions::default().with_retries(1, Duration::from_millis(10));
        let mut client = client(&url, quick);
        let before = storage.object_count().unwrap();
        match echo_large(&mut client, &"z".repeat(20_000)) {
            Err(Error::External { kind, message }) => {
                assert_eq!(kind, ExternalFailure::Integrity, "{message}");
            }
            other => panic!("expected a typed external-storage error, got {other:?}"),
        }
        assert!(
            storage.object_count().unwrap() > before,
            "the answer was stored"
        );
        assert!(!client.is_broken());
        assert_eq!(echo_large(&mut client, "inline").unwrap().0, "inline");
        shutdown.trigger();
        serving.join().unwrap();
    });
}

//! External storage on a real S3-API server (moto's, from the venv: see
//! `vgi_rpc_conformance::s3_server`), both ways across implementations:
//!
//! - our worker (`--s3-bucket --s3-endpoint`, `object_store` uploads, presigned GET
//!   URLs) answers a 64 MiB result that the reference Python client resolves;
//! - the reference worker with its own `S3Storage` (boto3) answers one that our client
//!   resolves;
//! - objects that break the contract fail typed, on a connection that stays usable.
//!
//! Every large fetch is checked twice: the rows are right, and the server's log shows
//! the `206` answers of the parallel range path (a presigned URL is probed with a
//! one-byte range GET, then fetched in 8 MiB ranges). No test here skips: without moto
//! in the venv, `S3Server::start` fails with what to run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions};
use vgi_rpc::external::object_store::aws::AmazonS3Builder;
use vgi_rpc::external::{ExternalConfig, FetchOptions, ObjectStoreStorage, Storage, UrlPolicy};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{Metadata, keys};
use vgi_rpc::{Error, ExternalFailure};
use vgi_rpc_conformance::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

use crate::{echo_string, primary, published, venv};

/// Rows of `produce_large_batches` in one 64 MiB batch (two int64 columns).
const ROWS_64_MIB: i64 = 4 << 20;

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker")
}

fn script(name: &str) -> String {
    format!("{}/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// An `object_store` S3 client of `server`'s `bucket`.
fn s3_storage(server: &S3Server, bucket: &str) -> ObjectStoreStorage {
    let s3 = AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region(REGION)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()
        .unwrap();
    ObjectStoreStorage::new(Arc::new(s3)).with_ttl(Duration::from_secs(300))
}

/// `produce_large_batches(rows, 1)`'s rows, checked: index `i`, value `10 i`.
fn check_counter_rows(batch: &RecordBatch, start: i64) {
    let index = batch.column(0).as_primitive::<Int64Type>().values();
    let value = batch.column(1).as_primitive::<Int64Type>().values();
    for (i, (x, v)) in index.iter().zip(value.iter()).enumerate() {
        let want = start + i as i64;
        assert!(*x == want && *v == want * 10, "row {i}: {x}, {v}");
    }
}

fn large_params(rows: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "rows_per_batch",
            Arc::new(Int64Array::from(vec![rows])) as _,
        ),
        ("batch_count", Arc::new(Int64Array::from(vec![1])) as _),
    ])
    .unwrap()
}

#[test]
fn the_reference_client_resolves_our_64_mib_result_from_s3() {
    let server = S3Server::start(&venv(), &["vgi-ours"]).unwrap();
    let endpoint = server.endpoint();
    let output = Command::new(venv().join("bin/python"))
        .arg(script("s3_client.py"))
        .arg(ROWS_64_MIB.to_string())
        .args([
            worker_bin(),
            "--pipe",
            "--s3-bucket",
            "vgi-ours",
            "--s3-endpoint",
            &endpoint,
            "--externalize-threshold",
            "1048576",
        ])
        .envs(server.env())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(&format!("OK rows={ROWS_64_MIB} ")),
        "the reference client failed ({}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let log = server.log().unwrap();
    // The worker uploaded with a signed PUT, and the reference fetched in ranges: its
    // one-byte probe, then ceil(64 MiB + framing / 8 MiB) = 9 chunks.
    assert!(log.contains("\"PUT /vgi-ours/vgi-rpc/"), "{log}");
    let ranges = server.range_requests().unwrap();
    assert!(ranges >= 10, "{ranges} range requests:\n{log}");
}

#[test]
fn our_client_resolves_what_the_reference_s3_storage_wrote() {
    let server = S3Server::start(&venv(), &["vgi-ref"]).unwrap();
    let mut argv = vec!["env".to_owned()];
    argv.extend(server.env().iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend([
        venv().join("bin/python").display().to_string(),
        script("s3_worker.py"),
        server.endpoint(),
        "vgi-ref".into(),
        "1048576".into(),
    ]);
    let config = ExternalConfig::new().with_url_policy(UrlPolicy::loopback());
    let options = ConnectOptions::default().with_external(Arc::new(config));
    let mut client = Client::connect_with(&Address::Exec(argv), options).unwrap();

    // Small: not externalized at all below the worker's threshold.
    assert_eq!(echo_string(&mut client, "small").unwrap(), "small");
    let before = server.range_requests().unwrap();

    // 64 MiB: a presigned URL (boto3 signs SigV2 for this endpoint), probed with a one-byte range, fetched in ranges.
    {
        let mut stream = client
            .open_stream(
                &primary(),
                "produce_large_batches",
                &large_params(ROWS_64_MIB),
                &CallOptions::default(),
            )
            .unwrap();
        let (batch, metadata) = stream
            .tick_with_metadata(Metadata::new())
            .unwrap()
            .expect("one batch");
        assert_eq!(batch.num_rows(), ROWS_64_MIB as usize);
        check_counter_rows(&batch, 0);
        let source = metadata.get(keys::LOCATION_SOURCE).unwrap();
        assert!(
            source.contains("/vgi-ref/") && source.contains("Signature="),
            "{source}"
        );
        assert!(stream.tick().unwrap().is_none());
    }
    let ranges = server.range_requests().unwrap() - before;
    assert!(
        ranges >= 10,
        "our client made {ranges} range requests for 64 MiB"
    );

    // 2 MiB: above the worker's threshold, below the parallel one: the probe's one
    // range, then a single GET.
    let before = server.range_requests().unwrap();
    let mut stream = client
        .open_stream(
            &primary(),
            "produce_large_batches",
            &large_params(128 << 10),
            &CallOptions::default(),
        )
        .unwrap();
    let (batch, metadata) = stream
        .tick_with_metadata(Metadata::new())
        .unwrap()
        .expect("one batch");
    check_counter_rows(&batch, 0);
    assert!(metadata.get(keys::LOCATION_SOURCE).is_some());
    assert!(stream.tick().unwrap().is_none());
    drop(stream);
    assert_eq!(server.range_requests().unwrap() - before, 1);
    assert!(!client.is_broken());
}

/// How [`Spoiling`] breaks what it stores in S3.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// Flips one byte: same length, another digest.
    Flip,
    /// Drops the last bytes.
    Truncate,
    /// Hands out a URL on a redirector that sends the reader to `localhost`.
    Redirect(u16),
}

#[derive(Debug)]
struct Spoiling {
    inner: ObjectStoreStorage,
    spoil: Spoil,
}

impl Storage for Spoiling {
    fn put(&self, mut object: Vec<u8>, encoding: Option<&str>) -> vgi_rpc::Result<String> {
        match self.spoil {
            Spoil::Flip => {
                let mid = object.len() / 2;
                object[mid] ^= 0xff;
            }
            Spoil::Truncate => object.truncate(object.len() - 16),
            Spoil::Redirect(_) => {}
        }
        let url = self.inner.put(object, encoding)?;
        Ok(match self.spoil {
            Spoil::Redirect(port) => {
                let (_, rest) = url.split_once("://").unwrap();
                let (_, path) = rest.split_once('/').unwrap();
                format!("http://127.0.0.1:{port}/{path}")
            }
            _ => url,
        })
    }
}

/// Answers every request with a redirect to the same path on `localhost`, which the
/// reader's policy (127.0.0.1 only) refuses; counts the requests it saw.
fn redirector(s3_port: u16) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap_or(0) > 2 {
                header.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{s3_port}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, seen)
}

/// sha256 mismatch, truncation, a forbidden redirect and an oversized object, on the
/// parallel range path (threshold lowered to 64 KiB): each a typed error, no secret of
/// the presigned URL in the message, and the connection answers the next call.
#[test]
fn spoiled_s3_objects_are_typed_errors_on_a_usable_connection() {
    let server = S3Server::start(&venv(), &["vgi-spoiled"]).unwrap();
    let s3_port: u16 = server
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (redirect_port, redirected) = redirector(s3_port);
    let parallel = FetchOptions::default()
        .with_retries(1, Duration::from_millis(10))
        .with_parallel(64 << 10, 16 << 10, 4);
    let value = "x".repeat(200 << 10);
    let cases = [
        (Spoil::Flip, parallel.clone(), ExternalFailure::Integrity),
        (
            Spoil::Truncate,
            parallel.clone(),
            ExternalFailure::Integrity,
        ),
        (
            Spoil::Redirect(redirect_port),
            parallel.clone(),
            ExternalFailure::UrlRejected,
        ),
        (
            Spoil::Flip,
            parallel.clone().with_max_fetch_bytes(100 << 10),
            ExternalFailure::TooLarge,
        ),
    ];
    for (spoil, fetch, want) in cases {
        let storage = Arc::new(Spoiling {
            inner: s3_storage(&server, "vgi-spoiled"),
            spoil,
        });
        let reader = ExternalConfig::new()
            .with_url_policy(UrlPolicy::loopback().with_hosts(["127.0.0.1"]))
            .with_fetch_options(fetch);
        let mut client = crate::spoiled::in_process(
            storage,
            ConnectOptions::default().with_external(Arc::new(reader)),
        );
        let before = server.range_requests().unwrap();
        match published(&mut client, &value, true) {
            Err(Error::External { kind, message }) => {
                assert_eq!(kind, want, "{spoil:?}: {message}");
                assert!(
                    !message.contains("X-Amz-Signature=") && !message.contains("X-Amz-Credential"),
                    "{message}"
                );
            }
            other => panic!("{spoil:?}: expected an external-storage error, got {other:?}"),
        }
        if matches!((spoil, want), (Spoil::Flip, ExternalFailure::Integrity)) {
            // The digest was checked over bytes that came in ranges: the probe and
            // ceil(200 KiB / 16 KiB) = 13 chunks.
            let ranges = server.range_requests().unwrap() - before;
            assert!(ranges >= 14, "{ranges} range requests");
        }
        assert!(!client.is_broken());
        assert_eq!(echo_string(&mut client, "next").unwrap(), "next");
    }
    // The redirect was refused at its first hop: only the probe reached the redirector.
    assert_eq!(redirected.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The same object through our own writer and reader, untampered, on both paths.
#[test]
fn our_writer_and_reader_round_trip_through_s3() {
    let server = S3Server::start(&venv(), &["vgi-round"]).unwrap();
    let value = "y".repeat(300 << 10);
    for (fetch, min_ranges) in [
        (
            FetchOptions::default().with_parallel(64 << 10, 32 << 10, 3),
            11,
        ),
        (FetchOptions::default(), 1),
    ] {
        let reader = ExternalConfig::new()
            .with_url_policy(UrlPolicy::loopback())
            .with_fetch_options(fetch);
        let mut client = crate::spoiled::in_process(
            Arc::new(s3_storage(&server, "vgi-round")),
            ConnectOptions::default().with_external(Arc::new(reader)),
        );
        let before = server.range_requests().unwrap();
        let (got, metadata) = published(&mut client, &value, true).unwrap();
        assert_eq!(got, value);
        assert!(metadata.get(keys::LOCATION_SOURCE).is_some());
        let ranges = server.range_requests().unwrap() - before;
        if min_ranges == 1 {
            assert_eq!(ranges, 1, "probe only, then one GET");
        } else {
            assert!(ranges >= min_ranges, "{ranges} range requests");
        }
    }
}

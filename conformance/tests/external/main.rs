//! External storage on byte streams: our client against the reference worker
//! (`vgi-rpc-conformance --pipe --fake-storage URL --externalize-threshold 1`), which
//! answers every data batch with a pointer into the reference's fake storage.
//!
//! Every scenario runs on its own thread under a time limit, so a client that blocks
//! (the defect of issue 13: a pointer it could not resolve left it draining an output
//! stream the worker had not ended, while the worker waited for the next tick) fails
//! the test instead of hanging the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http;
mod inputs;
mod local;
mod resolve;
mod s3;
mod spoiled;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Client, ClientStream, ConnectOptions, Target};
use vgi_rpc::external::{ExternalConfig, UrlPolicy};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::Metadata;
use vgi_rpc::{Error, ExternalFailure};
use vgi_rpc_conformance::fake_storage::{FakeStorage, StorageHandle};
use vgi_rpc_conformance::matrix;

/// How long one scenario may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(30);

pub(crate) fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| matrix::ensure_python_venv().unwrap())
        .clone()
}

/// Runs `body` on its own thread; taking longer than [`LIMIT`] fails the test.
pub(crate) fn bounded(body: impl FnOnce() + Send + 'static) {
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
pub(crate) fn reference_worker(storage: StorageHandle) -> Address {
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

pub(crate) fn primary() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// A one-column float64 batch.
pub(crate) fn floats(name: &str, values: Vec<f64>) -> RecordBatch {
    RecordBatch::try_from_iter([(name, Arc::new(Float64Array::from(values)) as _)]).unwrap()
}

/// The first column of `batch` as float64 values.
pub(crate) fn float_values(batch: &RecordBatch) -> Vec<f64> {
    batch
        .column(0)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

/// `exchange_scale(factor)` opened on `client`.
pub(crate) fn scale_stream(client: &mut Client, factor: f64) -> ClientStream<'_> {
    client
        .open_stream(
            &primary(),
            "exchange_scale",
            &floats("factor", vec![factor]),
            &CallOptions::default(),
        )
        .unwrap()
}

pub(crate) fn count(n: i64) -> RecordBatch {
    RecordBatch::try_from_iter([("count", Arc::new(Int64Array::from(vec![n])) as _)]).unwrap()
}

pub(crate) fn echo_string(client: &mut Client, value: &str) -> vgi_rpc::Result<String> {
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

/// A client resolving pointers from the fake storage (loopback URLs only).
pub(crate) fn resolving(policy_hosts: &[&str]) -> ConnectOptions {
    let config = ExternalConfig::new()
        .with_url_policy(UrlPolicy::loopback().with_hosts(policy_hosts.iter().copied()));
    ConnectOptions::default().with_external(Arc::new(config))
}

pub(crate) fn call_with(
    client: &mut Client,
    method: &str,
    params: &RecordBatch,
) -> vgi_rpc::Result<vgi_rpc::client::UnaryResult> {
    client.call(&primary(), method, params, &CallOptions::default())
}

pub(crate) fn published(
    client: &mut Client,
    value: &str,
    sha: bool,
) -> vgi_rpc::Result<(String, Metadata)> {
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

//! External-storage rows (`vgi-rpc-bench external`): one 256 MiB producer result
//! (`produce_large_batches`, two int64 columns, one batch) inline over a Unix socket
//! beside the same result externalized through an S3-API server (moto, from the venv),
//! and the reader's two fetch paths on the same stored object: parallel range GETs
//! (8 MiB chunks, 8 at a time, the reference's defaults) against one GET — from moto
//! and from [`LocalStorage`]'s loopback server, a store that serves ranges without
//! copying the object (moto copies the whole object for every range it answers).
//!
//! Placement as the harness does it: the client thread (and the fetch threads it
//! spawns) on the client core; the server's connection thread, the object-store upload
//! runtime's first use, the local storage server and the moto process on the worker
//! core. The server runs in this process on one end of a Unix socket pair, so both rows
//! use the same server and client code; only where the batch travels differs. Quick
//! figures are the best of `RUNS`; moto's take seconds each and run once.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arrow_array::{Int64Array, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link, Target};
use vgi_rpc::external::object_store::aws::AmazonS3Builder;
use vgi_rpc::external::{
    ExternalConfig, FetchOptions, LocalStorage, ObjectStoreStorage, Storage, UrlPolicy,
};
use vgi_rpc::wire::ExternalLocation;
use vgi_rpc::wire::Limits;
use vgi_rpc_conformance::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

use crate::placement::{Placement, pin_current_thread};

/// Rows of the 256 MiB batch (16 bytes a row).
const ROWS: i64 = 16 << 20;
/// Runs of the quick figures (best reported); the moto rows run once (seconds each).
const RUNS: usize = 3;
/// The bucket the rows use.
const BUCKET: &str = "vgi-bench";

/// The reader of every row: loopback URLs, a cap that fits 256 MiB, the reference's
/// parallel defaults unless `single`.
fn reader(single: bool) -> ExternalConfig {
    let mut fetch = FetchOptions::default().with_max_fetch_bytes(1 << 30);
    if single {
        fetch = fetch.with_parallel(u64::MAX, 8 << 20, 8);
    }
    ExternalConfig::new()
        .with_url_policy(UrlPolicy::loopback())
        .with_fetch_options(fetch)
}

fn s3(server: &S3Server) -> anyhow::Result<ObjectStoreStorage> {
    let s3 = AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_bucket_name(BUCKET)
        .with_region(REGION)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()?;
    Ok(ObjectStoreStorage::new(Arc::new(s3)))
}

/// Our conformance service on one end of a socket pair, its thread on `core`; the
/// client on the other end.
fn connect(
    core: usize,
    external: Option<Arc<ExternalConfig>>,
    reader: ExternalConfig,
) -> anyhow::Result<Client> {
    let server = match external {
        Some(config) => vgi_rpc_conformance::server_builder_with_external(config),
        None => vgi_rpc_conformance::server_builder(),
    }
    .build()?;
    let (ours, theirs) = UnixStream::pair()?;
    let reader_end = theirs.try_clone()?;
    std::thread::spawn(move || {
        let _ = pin_current_thread(core);
        vgi_rpc::server::serve_connection(&server, reader_end, theirs)
    });
    let writer = ours.try_clone()?;
    Ok(Client::from_link(
        Link::new(ours, writer),
        // The inline row carries one 256 MiB batch: above the default per-message limit
        // for an untrusted link, which this in-process pair is not.
        ConnectOptions::default()
            .with_external(Arc::new(reader))
            .with_limits(Limits::default().with_max_untrusted_body(1 << 30)),
    ))
}

/// Best time of `runs` calls of `produce_large_batches(ROWS, 1)`, rows checked.
fn produce(client: &mut Client, runs: usize) -> anyhow::Result<Duration> {
    let params = RecordBatch::try_from_iter([
        (
            "rows_per_batch",
            Arc::new(Int64Array::from(vec![ROWS])) as _,
        ),
        ("batch_count", Arc::new(Int64Array::from(vec![1])) as _),
    ])?;
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let mut stream = client.open_stream(
            &target,
            "produce_large_batches",
            &params,
            &CallOptions::default(),
        )?;
        let turn = stream.tick()?.context("no batch")?;
        anyhow::ensure!(turn.num_rows() == ROWS as usize, "short batch");
        anyhow::ensure!(stream.tick()?.is_none(), "more than one batch");
        drop(stream);
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// Best time of `runs` fetches of `url` by `reader`, bytes compared with `len`.
fn fetch(reader: &ExternalConfig, url: &str, len: usize, runs: usize) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let body = reader.fetch(url)?;
        best = best.min(start.elapsed());
        anyhow::ensure!(body.len() == len, "fetched {} of {len} bytes", body.len());
    }
    Ok(best)
}

fn gbps(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64() / 1e9
}

/// The rows for `placement`, as markdown. `venv`: the reference venv (moto lives there).
///
/// # Errors
/// The S3-API server did not start, or a call or fetch failed.
pub fn measure(placement: &Placement, venv: &Path) -> anyhow::Result<String> {
    pin_current_thread(placement.client)?;
    let bytes = (ROWS as usize) * 16;
    let server = S3Server::start_with(venv, &[BUCKET], &placement.worker_prefix())?;

    // Inline over the socket pair.
    let mut inline = connect(placement.worker, None, reader(false))?;
    let inline_time = produce(&mut inline, RUNS)?;
    drop(inline);

    // Externalized into S3 (upload by the server, signed URL, then the reader's fetch:
    // parallel ranges, or one GET).
    let storage = Arc::new(
        ExternalConfig::new()
            .with_storage(Arc::new(s3(&server)?))
            .with_threshold(1 << 20),
    );
    let mut external = connect(placement.worker, Some(storage.clone()), reader(false))?;
    let external_parallel = produce(&mut external, 1)?;
    drop(external);
    let mut external = connect(placement.worker, Some(storage), reader(true))?;
    let external_single = produce(&mut external, 1)?;
    drop(external);

    // The pieces on one stored object (any 256 MiB): the upload, and the two fetch paths
    // from moto and from the local server.
    let object = vec![0x5au8; bytes];
    let started = Instant::now();
    let s3_url = s3(&server)?.put(object.clone(), None)?;
    let upload = started.elapsed();
    let s3_parallel = fetch(&reader(false), &s3_url, bytes, 1)?;
    let s3_single = fetch(&reader(true), &s3_url, bytes, 1)?;
    let local_dir = std::env::temp_dir().join(format!("vgi-bench-local-{}", std::process::id()));
    let local = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_current_thread(placement.worker)?;
                LocalStorage::start(&local_dir).map_err(anyhow::Error::from)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("local storage start panicked"))?
    })?;
    let local_url = local.put(object, None)?;
    let local_parallel = fetch(&reader(false), &local_url, bytes, RUNS)?;
    let local_single = fetch(&reader(true), &local_url, bytes, RUNS)?;
    drop(local);
    let _ = std::fs::remove_dir_all(&local_dir);

    let row = |what: &str, took: Duration| {
        format!(
            "| {} | {what} | {:.1} ms | {:.2} |\n",
            placement.name,
            took.as_secs_f64() * 1000.0,
            gbps(bytes, took)
        )
    };
    let mut out = String::from(
        "| placement | 256 MiB producer result | time | GB/s |\n|---|---|---:|---:|\n",
    );
    out.push_str(&row("inline over unix (best of 3)", inline_time));
    out.push_str(&row(
        "externalized via S3 (moto), reader: parallel ranges 8 x 8 MiB",
        external_parallel,
    ));
    out.push_str(&row(
        "externalized via S3 (moto), reader: single GET",
        external_single,
    ));
    out.push_str(&row("upload only: object_store PUT to moto", upload));
    out.push_str(&row(
        "fetch only, moto: parallel ranges 8 x 8 MiB",
        s3_parallel,
    ));
    out.push_str(&row("fetch only, moto: single GET", s3_single));
    out.push_str(&row(
        "fetch only, LocalStorage: parallel ranges 8 x 8 MiB (best of 3)",
        local_parallel,
    ));
    out.push_str(&row(
        "fetch only, LocalStorage: single GET (best of 3)",
        local_single,
    ));
    Ok(out)
}

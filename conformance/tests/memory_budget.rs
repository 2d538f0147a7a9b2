//! The server-wide memory budget, against the real worker on a Unix socket.
//!
//! - Many connections each sending a large request body and stalling before its last
//!   byte keep the worker's resident memory under the budget plus a stated margin, and
//!   the same attack without a budget does not (so the bound comes from the budget).
//! - A request over the budget is answered `RESOURCE_EXHAUSTED` with a retry hint on a
//!   connection that stays usable, through the real client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
use vgi_rpc::client::{CallOptions, Target, rpc_error_from_metadata};
use vgi_rpc::transport::Address;
use vgi_rpc::{Error, ErrorCode, wire};
use vgi_rpc_conformance::matrix::{self, Endpoint, WorkerProgram};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
const MIB: u64 = 1 << 20;

/// Our worker on a threaded Unix socket with `--memory-budget budget` (0: none).
fn start(budget: u64) -> Result<Endpoint> {
    let argv = vec![
        WORKER.to_owned(),
        "--memory-budget".to_owned(),
        budget.to_string(),
    ];
    let unix = matrix::transport("unix").context("the unix row")?;
    Ok(Endpoint::start(&WorkerProgram::new("ours", argv), unix)?)
}

fn socket(worker: &Endpoint) -> Result<UnixStream> {
    match Address::parse(worker.address())? {
        Address::Unix(path) => Ok(UnixStream::connect(path)?),
        other => bail!("not a unix address: {other}"),
    }
}

/// Resident set size of `pid`, from `/proc`.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// A request stream's schema message and a batch message header claiming `claim` body
/// bytes, the body itself left to the caller.
fn lying_request(claim: u64) -> Result<Vec<u8>> {
    let column: ArrayRef = Arc::new(Int64Array::from(vec![7]));
    let batch = RecordBatch::try_from_iter([("v", column)])?;
    let schema_len = wire::encode_schema_message(&batch.schema()).len();
    let honest = wire::encode_stream(&batch.schema(), &[batch])?;
    let mut bytes = honest[..schema_len].to_vec();
    let mut message = honest[schema_len..].to_vec();
    // The batch message's bodyLength (one int64 value: 8) sits in its flatbuffer header.
    let at = message
        .windows(8)
        .position(|w| w == 8i64.to_le_bytes())
        .context("bodyLength")?;
    message[at..at + 8].copy_from_slice(&i64::try_from(claim)?.to_le_bytes());
    let header_len = message.len() - 8 - wire::EOS.len();
    bytes.extend_from_slice(&message[..header_len]);
    Ok(bytes)
}

/// Sends `n` bytes of zeros.
fn send_zeros(socket: &mut UnixStream, mut n: u64) -> Result<()> {
    let chunk = vec![0u8; MIB as usize];
    while n > 0 {
        let step = n.min(MIB) as usize;
        socket.write_all(&chunk[..step])?;
        n -= step as u64;
    }
    Ok(())
}

/// Opens `connections` sockets that each send a request claiming `body` bytes, then all
/// of the body but its last byte. Returns the sockets (still open) once every byte is
/// written, i.e. taken by the worker.
fn stalled_uploads(worker: &Endpoint, connections: usize, body: u64) -> Result<Vec<UnixStream>> {
    let header = lying_request(body)?;
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let mut socket = socket(worker)?;
            let header = header.clone();
            Ok(std::thread::spawn(move || -> Result<UnixStream> {
                socket.write_all(&header)?;
                send_zeros(&mut socket, body - 1)?;
                Ok(socket)
            }))
        })
        .collect::<Result<_>>()?;
    handles
        .into_iter()
        .map(|h| h.join().expect("uploader panicked"))
        .collect()
}

/// Waits until the worker's RSS settles (two equal readings 100 ms apart, at most 2 s).
fn settled_rss(pid: u32) -> Result<u64> {
    let start = Instant::now();
    let mut last = rss(pid)?;
    while start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss(pid)?;
        if now.abs_diff(last) < MIB {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

const CONNECTIONS: usize = 6;
const BODY: u64 = 100 * MIB;
const BUDGET: u64 = 256 * MIB;
/// What the worker may hold beyond its budget: the binary, thread stacks, per-connection
/// buffers and the allocator's slack.
const MARGIN: u64 = 96 * MIB;

#[test]
fn stalled_uploads_hold_no_more_than_the_budget() -> Result<()> {
    // Without a budget, six 100 MiB bodies that stop one byte short are all held.
    let unbounded = start(0)?;
    let pid = unbounded.pid().context("pid")?;
    let sockets = stalled_uploads(&unbounded, CONNECTIONS, BODY)?;
    let held = settled_rss(pid)?;
    eprintln!("no budget: worker RSS {} MiB", held / MIB);
    ensure!(
        held > CONNECTIONS as u64 * BODY * 9 / 10,
        "without a budget the worker should hold every body: RSS {} MiB",
        held / MIB
    );
    drop(sockets);
    drop(unbounded);

    // With a 256 MiB budget two bodies fit; the other four are read and thrown away.
    let worker = start(BUDGET)?;
    let pid = worker.pid().context("pid")?;
    let mut sockets = stalled_uploads(&worker, CONNECTIONS, BODY)?;
    let held = settled_rss(pid)?;
    eprintln!("budget {} MiB: worker RSS {} MiB", BUDGET / MIB, held / MIB);
    ensure!(
        held < BUDGET + MARGIN,
        "RSS {} MiB over the bound of {} MiB (budget {} MiB + margin {} MiB)",
        held / MIB,
        (BUDGET + MARGIN) / MIB,
        BUDGET / MIB,
        MARGIN / MIB
    );

    // Every connection finishes its request: two were taken in (and fail to decode,
    // a typed error), four were refused with RESOURCE_EXHAUSTED and a retry hint. Every
    // connection answers, and the worker keeps serving.
    let mut refused = 0;
    for socket in &mut sockets {
        socket.write_all(&[0])?;
        socket.write_all(&wire::EOS)?;
        let error = read_error(socket)?;
        if error.code == ErrorCode::ResourceExhausted {
            ensure!(error.retry_after().is_some(), "no retry hint: {error:?}");
            ensure!(error.error_type == "MemoryBudgetError", "{error:?}");
            refused += 1;
        }
    }
    ensure!(
        refused == CONNECTIONS - 2,
        "{refused} of {CONNECTIONS} refused, expected {}",
        CONNECTIONS - 2
    );
    let mut client = worker.connect()?;
    let params = RecordBatch::try_from_iter([(
        "value",
        Arc::new(StringArray::from(vec!["still here"])) as ArrayRef,
    )])?;
    client.call(&target(), "echo_string", &params, &CallOptions::default())?;
    Ok(())
}

/// Reads one answer stream and returns the error it carries.
fn read_error(socket: &mut UnixStream) -> Result<vgi_rpc::RpcError> {
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let limits = wire::Limits::default();
    let mut reader = std::io::BufReader::new(&*socket);
    let mut decoder = wire::read_stream_start(&mut reader, &limits)?;
    let mut found = None;
    while let wire::StreamItem::Batch(_, metadata) =
        wire::read_stream_item(&mut reader, &mut decoder, &limits)?
    {
        if found.is_none() && metadata.get(wire::keys::LOG_LEVEL) == Some("EXCEPTION") {
            found = Some(rpc_error_from_metadata(&metadata));
        }
    }
    found.context("the answer carried no error")
}

fn target() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

#[test]
fn a_request_over_the_budget_is_refused_and_the_connection_goes_on() -> Result<()> {
    // 8 MiB budget; a 12 MiB echo does not fit, a small one does.
    let worker = start(8 * MIB)?;
    let mut client = worker.connect()?;
    let big = vec![0x5au8; 12 * MIB as usize];
    let params = RecordBatch::try_from_iter([(
        "data",
        Arc::new(BinaryArray::from(vec![big.as_slice()])) as ArrayRef,
    )])?;
    match client.call(&target(), "echo_bytes", &params, &CallOptions::default()) {
        Err(Error::Rpc(e)) => {
            ensure!(e.code == ErrorCode::ResourceExhausted, "{e:?}");
            ensure!(
                e.is_retryable(),
                "RESOURCE_EXHAUSTED with a retry hint: {e:?}"
            );
        }
        other => bail!("expected RESOURCE_EXHAUSTED, got {other:?}"),
    }
    let small = RecordBatch::try_from_iter([(
        "data",
        Arc::new(BinaryArray::from(vec![&b"abc"[..]])) as ArrayRef,
    )])?;
    let answer = client.call(&target(), "echo_bytes", &small, &CallOptions::default())?;
    ensure!(answer.batch.context("no result")?.num_rows() == 1);
    Ok(())
}

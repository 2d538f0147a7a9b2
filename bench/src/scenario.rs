//! The measured operations, each one call (or one stream) through the dynamic
//! [`Client`]: the same code serves the criterion benches and the summary.
//!
//! Methods: `void_noop`, `echo_string`, `echo_bytes`, `produce_large_batches` (int64)
//! and `exchange_scale` are the conformance service's, so our worker and the Python
//! reference run identical calls; `produce_mixed` (int64 + float64 + utf8) and
//! `exchange_mixed` (the same batches echoed) are `VgiBench`.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use arrow_array::{
    ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_schema::Schema;
use vgi_rpc::Result;
use vgi_rpc::client::{CallOptions, Client, Target};
use vgi_rpc::transport::shm::segment_of;

use crate::service::{MIXED_ROW_BYTES, PROTOCOL, mixed_batch};
use crate::transport::Endpoint;

/// `ConformanceService` 2.0.0.
pub fn conformance() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// `VgiBench` 1.0.0.
pub fn bench() -> Target {
    Target::new(PROTOCOL, Some("1.0.0"))
}

/// The parameters batch of a method without parameters.
///
/// # Errors
/// Never in practice.
pub fn no_params() -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &options,
    )?)
}

fn params(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter(columns)?)
}

/// Prebuilt parameter batches, so the timed loops only call.
#[derive(Debug, Clone)]
pub struct Params {
    /// `void_noop()`.
    pub noop: RecordBatch,
    /// `echo_string(value="hello, vgi")`.
    pub small: RecordBatch,
    /// `echo_bytes(data=<1 MiB>)`.
    pub mib: RecordBatch,
    /// `exchange_scale(factor=2.0)`.
    pub scale: RecordBatch,
    /// The exchange input: one `{value: 1.5}` row.
    pub exchange_input: RecordBatch,
}

/// Bytes echoed by [`echo_mib`] in each direction.
pub const ECHO_BYTES: usize = 1 << 20;

impl Params {
    /// Builds every parameter batch.
    ///
    /// # Errors
    /// Never in practice.
    pub fn new() -> Result<Self> {
        let blob = vec![7u8; ECHO_BYTES];
        Ok(Params {
            noop: no_params()?,
            small: params(vec![(
                "value",
                Arc::new(StringArray::from(vec!["hello, vgi"])) as ArrayRef,
            )])?,
            mib: params(vec![(
                "data",
                Arc::new(BinaryArray::from_vec(vec![&blob[..]])) as ArrayRef,
            )])?,
            scale: params(vec![(
                "factor",
                Arc::new(Float64Array::from(vec![2.0])) as ArrayRef,
            )])?,
            exchange_input: params(vec![(
                "value",
                Arc::new(Float64Array::from(vec![1.5])) as ArrayRef,
            )])?,
        })
    }
}

/// One `void_noop` call.
///
/// # Errors
/// The call failed.
pub fn noop(client: &mut Client, p: &Params) -> Result<()> {
    client.call(
        &conformance(),
        "void_noop",
        &p.noop,
        &CallOptions::default(),
    )?;
    Ok(())
}

/// One `echo_string` call with a short string.
///
/// # Errors
/// The call failed.
pub fn small_args(client: &mut Client, p: &Params) -> Result<()> {
    client.call(
        &conformance(),
        "echo_string",
        &p.small,
        &CallOptions::default(),
    )?;
    Ok(())
}

/// One `echo_bytes` call with 1 MiB; returns the bytes moved (both directions).
///
/// # Errors
/// The call failed.
pub fn echo_mib(client: &mut Client, p: &Params) -> Result<u64> {
    client.call(
        &conformance(),
        "echo_bytes",
        &p.mib,
        &CallOptions::default(),
    )?;
    Ok(2 * ECHO_BYTES as u64)
}

/// Rows per mixed batch for a target batch size in bytes (at least one row).
pub fn mixed_rows_for(bytes: usize) -> usize {
    (bytes / MIXED_ROW_BYTES).max(1)
}

/// Drains `produce_mixed(rows, batches)`; returns the payload bytes received.
///
/// # Errors
/// The stream failed.
pub fn produce_mixed(client: &mut Client, rows: usize, batches: usize) -> Result<u64> {
    let p = producer_params(rows, batches)?;
    drain(client, &bench(), "produce_mixed", &p)?;
    Ok((rows * batches * MIXED_ROW_BYTES) as u64)
}

/// Drains the conformance `produce_large_batches(rows, batches)` (one int64 column);
/// returns the payload bytes received.
///
/// # Errors
/// The stream failed.
pub fn produce_int64(client: &mut Client, rows: usize, batches: usize) -> Result<u64> {
    let p = producer_params(rows, batches)?;
    drain(client, &conformance(), "produce_large_batches", &p)?;
    Ok((rows * batches * 8) as u64)
}

/// `{rows_per_batch, batch_count}`, the parameters of both producers.
fn producer_params(rows: usize, batches: usize) -> Result<RecordBatch> {
    params(vec![
        (
            "rows_per_batch",
            Arc::new(Int64Array::from(vec![rows as i64])) as ArrayRef,
        ),
        (
            "batch_count",
            Arc::new(Int64Array::from(vec![batches as i64])) as ArrayRef,
        ),
    ])
}

fn drain(client: &mut Client, target: &Target, method: &str, p: &RecordBatch) -> Result<usize> {
    let mut stream = client.open_stream(target, method, p, &CallOptions::default())?;
    let mut n = 0;
    while let Some(batch) = stream.tick()? {
        n += batch.num_rows();
    }
    stream.close()?;
    Ok(n)
}

/// An open `exchange_scale` stream, for timing single round trips.
pub struct ExchangeSession<'c> {
    stream: vgi_rpc::client::ClientStream<'c>,
    input: RecordBatch,
}

impl<'c> ExchangeSession<'c> {
    /// Opens `exchange_scale(factor=2.0)`.
    ///
    /// # Errors
    /// The stream failed to open.
    pub fn open(client: &'c mut Client, p: &Params) -> Result<Self> {
        let stream = client.open_stream(
            &conformance(),
            "exchange_scale",
            &p.scale,
            &CallOptions::default(),
        )?;
        Ok(ExchangeSession {
            stream,
            input: p.exchange_input.clone(),
        })
    }

    /// One exchange round trip.
    ///
    /// # Errors
    /// The exchange failed.
    pub fn round_trip(&mut self) -> Result<()> {
        self.stream.exchange(&self.input)?;
        Ok(())
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// Transport errors.
    pub fn close(self) -> Result<()> {
        self.stream.close()
    }
}

/// An open `exchange_mixed` stream with its prebuilt input, for timing round trips of
/// large batches.
pub struct MixedExchange<'c> {
    stream: vgi_rpc::client::ClientStream<'c>,
    input: RecordBatch,
}

impl<'c> MixedExchange<'c> {
    /// Opens `exchange_mixed()` with `rows`-row input batches.
    ///
    /// # Errors
    /// The stream failed to open.
    pub fn open(client: &'c mut Client, rows: usize) -> Result<Self> {
        let input = mixed_batch(rows)?;
        let stream = client.open_stream(
            &bench(),
            "exchange_mixed",
            &no_params()?,
            &CallOptions::default(),
        )?;
        Ok(MixedExchange { stream, input })
    }

    /// One round trip; returns the payload bytes moved (both directions). The answer is
    /// dropped before the next input is sent, so its region (shared memory) is freed at
    /// that turn boundary.
    ///
    /// # Errors
    /// The exchange failed, or the answer is not the input's size.
    pub fn round_trip(&mut self) -> Result<u64> {
        let output = self.stream.exchange(&self.input)?;
        if output.num_rows() != self.input.num_rows() {
            return Err(vgi_rpc::Error::protocol(format!(
                "exchange_mixed answered {} rows for {}",
                output.num_rows(),
                self.input.num_rows()
            )));
        }
        Ok(2 * (output.num_rows() * MIXED_ROW_BYTES) as u64)
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// Transport errors.
    pub fn close(self) -> Result<()> {
        self.stream.close()
    }
}

/// The allocations (`(offset, length)`) in the client's shared-memory segment, read from
/// the segment header; `None` without one (no segment configured, or the worker
/// declined it).
///
/// # Errors
/// The header is unreadable or corrupt.
pub fn segment_allocations(client: &Client) -> Option<Result<Vec<(u64, u64)>>> {
    let side = client.side_channel()?;
    segment_of(&**side).map(|segment| segment.allocations())
}

/// `clients` threads, each with its own connection to `endpoint`, calling `void_noop`
/// for `duration`; returns total calls per second. Connections open before the clock.
///
/// # Errors
/// A connection or call failed.
pub fn concurrent_noop(
    endpoint: &Endpoint,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let p = Params::new()?;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut handles = Vec::new();
    for _ in 0..clients {
        let mut client = endpoint.connect()?;
        noop(&mut client, &p)?;
        let barrier = Arc::clone(&barrier);
        let p = p.clone();
        handles.push(std::thread::spawn(move || -> Result<u64> {
            barrier.wait();
            let start = Instant::now();
            let mut calls = 0u64;
            while start.elapsed() < duration {
                noop(&mut client, &p)?;
                calls += 1;
            }
            Ok(calls)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

//! Our producer against the raw bulk loops, timed in alternating turns.
//!
//! The raw figure is the tighter of two raw transfers of the producer's bytes: one
//! stream of all of them, and one request per batch as the producer makes (over loopback
//! TCP the second is about twice as fast: the kernel's buffers stay in cache). Pipes and
//! Unix sockets get a third, `raw_lent`: a request per batch from a raw server that lends
//! its bytes to the kernel (`vmsplice`, and `splice` into a socket), as our worker lends
//! its large answers. Loopback TCP also settles per connection into a fast or a slow
//! state (4 vs 7.5 GB/s here, both the raw loop and our producer), so the best of a few
//! connections counts, each after a warm-up transfer — for both: our producer gets a new
//! client connection (over pipes, a new worker) each time the raw loop does. Our
//! producer runs in turn with the raw transfers, as many times, so that both meet the
//! same moments of a noisy machine (measured apart, the best of nine raw runs met a
//! quiet moment the best of three producer runs did not).

use vgi_rpc::client::Client;

use crate::measure::best_throughput;
use crate::raw::{Baseline as _, Landing, PageAligned, READ_CHUNK, lockstep};
use crate::scenario;
use crate::service::MIXED_ROW_BYTES;
use crate::transport::{Endpoint, RawConnection};

/// Raw connections whose best bulk transfer is the raw baseline.
const RAW_CONNECTIONS: usize = 3;
/// Turns of each bulk transfer (raw and producer, alternating) per raw connection.
const BULK_TURNS: usize = 3;

/// Best throughputs (GB/s) of one alternating measurement.
#[derive(Clone, Copy, Debug, Default)]
pub struct BulkBest {
    /// The raw loop, streamed or a request per batch, whichever was faster.
    pub raw: f64,
    /// The raw loop with each batch landed whole.
    pub raw_landed: f64,
    /// The raw loop, a request per batch, from a raw server lending its bytes (pipes and
    /// Unix sockets); 0 on other transports.
    pub raw_lent: f64,
    /// Our producer of the same batches.
    pub producer: f64,
}

/// Times `batches` producer batches of `rows` mixed rows from our worker at `ours`
/// against the raw server at `raw_end` moving the same bytes (`first` and `client` are
/// the first raw connection and client; the others are opened here).
///
/// # Errors
/// A failed transfer or stream.
pub fn producer_against_raw(
    raw_end: &Endpoint,
    first: RawConnection,
    ours: &Endpoint,
    client: &mut Client,
    rows: usize,
    batches: usize,
    lend: bool,
) -> anyhow::Result<BulkBest> {
    let total = (rows * batches * MIXED_ROW_BYTES) as u64;
    let batch = total / batches as u64;
    let mut buf = PageAligned::zeroed(READ_CHUNK);
    let mut best = BulkBest::default();
    scenario::produce_mixed(client, rows, batches)?;
    let mut stream = first;
    let mut fresh: Option<Client> = None;
    for connection in 0..RAW_CONNECTIONS {
        if connection > 0 {
            stream = raw_end.open_raw()?;
            let opened = fresh.insert(ours.connect()?);
            scenario::produce_mixed(opened, rows, batches)?;
        }
        let client = match fresh.as_mut() {
            Some(opened) => opened,
            None => &mut *client,
        };
        stream.bulk(total, &mut buf)?;
        for _ in 0..BULK_TURNS {
            let streamed = best_throughput(1, || stream.bulk(total, &mut buf))?;
            let per_batch = best_throughput(1, || {
                lockstep(&mut stream, batches, batch, &mut buf, Landing::Window)
            })?;
            best.raw = best.raw.max(streamed).max(per_batch);
            let landed = best_throughput(1, || {
                lockstep(&mut stream, batches, batch, &mut buf, Landing::Whole)
            })?;
            best.raw_landed = best.raw_landed.max(landed);
            if lend {
                let lent = best_throughput(1, || {
                    (0..batches).try_fold(0, |sum, _| {
                        Ok::<_, std::io::Error>(sum + stream.bulk_lent(batch, &mut buf)?)
                    })
                })?;
                best.raw_lent = best.raw_lent.max(lent);
            }
            let producer = best_throughput(1, || scenario::produce_mixed(client, rows, batches))?;
            best.producer = best.producer.max(producer);
        }
    }
    Ok(best)
}

//! Timing loops and their statistics, for the summary command (criterion does its own).

use std::time::{Duration, Instant};

/// Per-iteration latencies of one measured loop.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    sorted: Vec<Duration>,
    total: Duration,
}

impl Latency {
    /// Times `iters` runs of `op` after `warmup` untimed runs.
    ///
    /// # Errors
    /// The first error `op` returns.
    pub fn measure<E>(
        warmup: usize,
        iters: usize,
        mut op: impl FnMut() -> Result<(), E>,
    ) -> Result<Self, E> {
        for _ in 0..warmup {
            op()?;
        }
        let mut samples = Vec::with_capacity(iters);
        let start = Instant::now();
        for _ in 0..iters {
            let t = Instant::now();
            op()?;
            samples.push(t.elapsed());
        }
        let total = start.elapsed();
        samples.sort_unstable();
        Ok(Latency {
            sorted: samples,
            total,
        })
    }

    /// Times `a` and `b` in alternating blocks: `rounds` times, `warmup` untimed runs then
    /// `per_round` timed runs of one, then of the other. Two loops compared by a ratio
    /// then share the machine's slow and fast spells instead of each getting its own.
    ///
    /// # Errors
    /// The first error either op returns.
    pub fn measure_pair<E>(
        rounds: usize,
        warmup: usize,
        per_round: usize,
        mut a: impl FnMut() -> Result<(), E>,
        mut b: impl FnMut() -> Result<(), E>,
    ) -> Result<(Self, Self), E> {
        let (mut la, mut lb) = (Latency::default(), Latency::default());
        for _ in 0..rounds {
            la.absorb(Latency::measure(warmup, per_round, &mut a)?);
            lb.absorb(Latency::measure(warmup, per_round, &mut b)?);
        }
        Ok((la, lb))
    }

    fn absorb(&mut self, other: Latency) {
        self.sorted.extend(other.sorted);
        self.sorted.sort_unstable();
        self.total += other.total;
    }

    /// The `q` quantile (0..=1), zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((self.sorted.len() - 1) as f64 * q).round() as usize;
        self.sorted[idx.min(self.sorted.len() - 1)]
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.5)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// Completed iterations per second over the whole loop.
    pub fn per_second(&self) -> f64 {
        let secs = self.total.as_secs_f64();
        if secs > 0.0 {
            self.sorted.len() as f64 / secs
        } else {
            0.0
        }
    }
}

/// Bytes per second of `bytes` moved in `elapsed`, in GB/s (10^9).
pub fn gb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / secs / 1e9
    } else {
        0.0
    }
}

/// Best (highest) throughput of `runs` runs of `op`, which returns the bytes it moved.
///
/// # Errors
/// The first error `op` returns.
pub fn best_throughput<E>(runs: usize, mut op: impl FnMut() -> Result<u64, E>) -> Result<f64, E> {
    let mut best = 0.0f64;
    for _ in 0..runs {
        let start = Instant::now();
        let bytes = op()?;
        best = best.max(gb_per_s(bytes, start.elapsed()));
    }
    Ok(best)
}

/// Median throughput of `runs` runs of `op` (after one untimed run), which returns the
/// bytes it moved.
///
/// # Errors
/// The first error `op` returns.
pub fn median_throughput<E>(runs: usize, mut op: impl FnMut() -> Result<u64, E>) -> Result<f64, E> {
    op()?;
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let bytes = op()?;
        rates.push(gb_per_s(bytes, start.elapsed()));
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Formats a duration in µs with two decimals.
pub fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

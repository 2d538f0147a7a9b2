//! Progress of a long stream on stderr (rows, bytes, rate), only when stderr is a
//! terminal, redrawn at most a few times a second and cleared at the end.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

const REDRAW: Duration = Duration::from_millis(200);

/// Counts what a stream delivered and shows it.
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Option<Instant>,
    rows: u64,
    bytes: u64,
    batches: u64,
}

impl Progress {
    /// A counter that draws only when `wanted` and stderr is a terminal.
    pub(crate) fn new(wanted: bool) -> Self {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            rows: 0,
            bytes: 0,
            batches: 0,
        }
    }

    /// Counts one received batch.
    pub(crate) fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        self.bytes += batch.get_array_memory_size() as u64;
        self.batches += 1;
        let now = Instant::now();
        if self.enabled && self.last_draw.is_none_or(|t| now - t >= REDRAW) {
            self.last_draw = Some(now);
            let secs = (now - self.started).as_secs_f64().max(1e-3);
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[K{} batches, {} rows, {} ({}/s, {:.0} rows/s)",
                self.batches,
                self.rows,
                human_bytes(self.bytes as f64),
                human_bytes(self.bytes as f64 / secs),
                self.rows as f64 / secs
            );
            let _ = err.flush();
        }
    }

    /// Erases the progress line.
    pub(crate) fn clear(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_binary_units() {
        assert_eq!(human_bytes(512.0), "512.0 B");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}

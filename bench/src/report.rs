//! The summary's results, its markdown tables and a hand-written SVG bar chart (two
//! panels: noop latency and producer throughput, per transport and placement).

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::us;

/// Everything measured for one (placement, transport).
#[derive(Debug, Clone, Default)]
pub struct TransportRow {
    /// Placement label.
    pub placement: &'static str,
    /// Transport label.
    pub transport: &'static str,
    /// Raw 1-byte ping-pong, median.
    pub ping_p50: Duration,
    /// `void_noop`, median.
    pub noop_p50: Duration,
    /// `void_noop`, 99th percentile.
    pub noop_p99: Duration,
    /// `void_noop` calls per second, one client.
    pub calls_per_s: f64,
    /// `echo_string` (small args), median.
    pub small_p50: Duration,
    /// `echo_bytes` 1 MiB each way, GB/s of both directions.
    pub echo_gbps: f64,
    /// `produce_mixed`, GB/s of payload.
    pub producer_gbps: f64,
    /// Raw bulk bytes over the same transport, GB/s.
    pub raw_gbps: f64,
    /// Raw bulk bytes landed batch by batch, each whole in one buffer, GB/s.
    pub raw_landed_gbps: f64,
    /// Raw bulk bytes a request per batch from a server lending them to the kernel
    /// (`vmsplice`, into a pipe or through one into a Unix socket), GB/s; 0 on other
    /// transports.
    pub raw_lent_gbps: f64,
    /// memcpy of the same bytes, GB/s.
    pub memcpy_gbps: f64,
    /// `produce_mixed` with ~3 MB batches, GB/s of payload (median of runs).
    pub producer_large_gbps: f64,
    /// `exchange_mixed` round trips of ~3 MB batches, GB/s of payload both ways
    /// (median of runs).
    pub exchange_large_gbps: f64,
    /// memcpy of the same bytes in ~3 MB chunks, same run and placement, GB/s (median).
    pub memcpy_large_gbps: f64,
    /// [`Self::producer_large_gbps`] with both ends validating at `standard` (`exec:`
    /// workers only: the opt-in for a trusted worker).
    pub producer_large_std_gbps: Option<f64>,
    /// [`Self::exchange_large_gbps`] with both ends validating at `standard`.
    pub exchange_large_std_gbps: Option<f64>,
    /// `exchange_scale` round trip, median.
    pub exchange_p50: Duration,
    /// `void_noop` calls/s with 1, 4 and 16 concurrent clients.
    pub concurrent: Vec<(usize, f64)>,
    /// Python reference: noop median, if measured.
    pub py_noop_p50: Option<Duration>,
    /// Our worker, same call as [`Self::py_producer_gbps`]: `produce_large_batches`.
    pub rust_int64_gbps: Option<f64>,
    /// Python reference: `produce_large_batches` GB/s.
    pub py_producer_gbps: Option<f64>,
    /// Python reference: exchange round trip median.
    pub py_exchange_p50: Option<Duration>,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn dratio(a: Duration, b: Duration) -> String {
    ratio(a.as_secs_f64(), b.as_secs_f64())
}

fn opt_us(d: Option<Duration>) -> String {
    d.map(us).unwrap_or_else(|| "-".into())
}

/// The main markdown table (ours vs the physical baselines) and the Python table.
pub fn markdown(rows: &[TransportRow]) -> String {
    let mut s = String::new();
    s.push_str("| placement | transport | raw ping-pong p50 µs | noop p50 µs | noop p99 µs | noop / ping-pong | calls/s (1 client) | calls/s 4 / 16 clients | small args p50 µs | exchange p50 µs | exchange / ping-pong | echo 1 MiB GB/s | producer GB/s | raw GB/s | producer / raw | raw landed GB/s | producer / landed | raw lent GB/s | producer / lent | memcpy GB/s |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let conc = r
            .concurrent
            .iter()
            .filter(|(n, _)| *n > 1)
            .map(|(_, c)| format!("{c:.0}"))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} | {} | {} | {:.2} |",
            r.placement,
            r.transport,
            us(r.ping_p50),
            us(r.noop_p50),
            us(r.noop_p99),
            dratio(r.noop_p50, r.ping_p50),
            r.calls_per_s,
            conc,
            us(r.small_p50),
            us(r.exchange_p50),
            dratio(r.exchange_p50, r.ping_p50),
            r.echo_gbps,
            r.producer_gbps,
            r.raw_gbps,
            ratio(r.producer_gbps, r.raw_gbps),
            r.raw_landed_gbps,
            ratio(r.producer_gbps, r.raw_landed_gbps),
            if r.raw_lent_gbps > 0.0 {
                format!("{:.2}", r.raw_lent_gbps)
            } else {
                "-".into()
            },
            ratio(r.producer_gbps, r.raw_lent_gbps),
            r.memcpy_gbps,
        );
    }
    if rows.iter().any(|r| r.py_noop_p50.is_some()) {
        s.push_str("\n| placement | transport | noop p50 µs rust / python | python / rust | exchange p50 µs rust / python | produce_large_batches GB/s rust / python | rust / python |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        for r in rows {
            let Some(py) = r.py_noop_p50 else { continue };
            let (ri, pi) = (
                r.rust_int64_gbps.unwrap_or(0.0),
                r.py_producer_gbps.unwrap_or(0.0),
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} / {} | {} | {} / {} | {:.3} / {:.3} | {} |",
                r.placement,
                r.transport,
                us(r.noop_p50),
                us(py),
                dratio(py, r.noop_p50),
                us(r.exchange_p50),
                opt_us(r.py_exchange_p50),
                ri,
                pi,
                ratio(ri, pi),
            );
        }
    }
    s
}

/// The large-batch table: ~3 MB batches produced and echoed on every transport beside
/// a memcpy of the same bytes (same run and placement), each producer against the unix
/// one of its placement, and (`exec:` rows) the same with validation `standard`.
pub fn large_markdown(rows: &[TransportRow]) -> String {
    let mut s = String::new();
    s.push_str("| placement | transport | producer ~3 MB GB/s | exchange ~3 MB GB/s (both ways) | memcpy 3 MB GB/s | producer / memcpy | producer / unix producer | exchange / memcpy | validation standard: producer GB/s (/ memcpy) | exchange GB/s (/ memcpy) |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let unix = rows
            .iter()
            .find(|u| u.placement == r.placement && u.transport == "unix")
            .map_or(0.0, |u| u.producer_large_gbps);
        let vs_memcpy = |gbps: Option<f64>| {
            gbps.map_or_else(
                || "-".to_owned(),
                |g| format!("{g:.2} ({})", ratio(g, r.memcpy_large_gbps)),
            )
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            r.placement,
            r.transport,
            r.producer_large_gbps,
            r.exchange_large_gbps,
            r.memcpy_large_gbps,
            ratio(r.producer_large_gbps, r.memcpy_large_gbps),
            ratio(r.producer_large_gbps, unix),
            ratio(r.exchange_large_gbps, r.memcpy_large_gbps),
            vs_memcpy(r.producer_large_std_gbps),
            vs_memcpy(r.exchange_large_std_gbps),
        );
    }
    s
}

/// One bar of a panel.
struct Bar {
    label: String,
    value: f64,
    color: &'static str,
}

const RAW: &str = "#9e9e9e";
const RUST: &str = "#d9534f";
const PYTHON: &str = "#3572a5";

/// A two-panel SVG: noop p50 latency (raw ping-pong, rust, python) and producer
/// throughput (raw, rust), grouped by placement and transport.
pub fn svg(rows: &[TransportRow]) -> String {
    let mut latency = Vec::new();
    let mut throughput = Vec::new();
    for r in rows {
        let group = format!("{} {}", r.transport, r.placement);
        latency.push(Bar {
            label: format!("{group} raw"),
            value: r.ping_p50.as_secs_f64() * 1e6,
            color: RAW,
        });
        latency.push(Bar {
            label: format!("{group} rust"),
            value: r.noop_p50.as_secs_f64() * 1e6,
            color: RUST,
        });
        if let Some(py) = r.py_noop_p50 {
            latency.push(Bar {
                label: format!("{group} python"),
                value: py.as_secs_f64() * 1e6,
                color: PYTHON,
            });
        }
        throughput.push(Bar {
            label: format!("{group} raw"),
            value: r.raw_gbps,
            color: RAW,
        });
        throughput.push(Bar {
            label: format!("{group} rust"),
            value: r.producer_gbps,
            color: RUST,
        });
    }
    let bar_h = 16.0;
    let panel_h = |n: usize| 40.0 + n as f64 * (bar_h + 4.0);
    let h1 = panel_h(latency.len());
    let h2 = panel_h(throughput.len());
    let width = 760.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="11">"#,
        h1 + h2 + 20.0
    );
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    panel(
        &mut s,
        0.0,
        "void_noop p50 latency (µs, lower is better; raw = 1-byte ping-pong)",
        "µs",
        &latency,
        width,
    );
    panel(
        &mut s,
        h1 + 20.0,
        "producer throughput (GB/s, higher is better; raw = bytes over the same transport)",
        "GB/s",
        &throughput,
        width,
    );
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, top: f64, title: &str, unit: &str, bars: &[Bar], width: f64) {
    let left = 200.0;
    let plot_w = width - left - 90.0;
    let max = bars
        .iter()
        .map(|b| b.value)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let _ = writeln!(
        s,
        r#"<text x="8" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        top + 20.0,
        escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = top + 32.0 + i as f64 * 20.0;
        let w = (b.value / max * plot_w).max(1.0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{w:.1}" height="16" fill="{}"/><text x="{:.1}" y="{}">{:.2} {unit}</text>"#,
            left - 6.0,
            y + 12.0,
            escape(&b.label),
            b.color,
            left + w + 4.0,
            y + 12.0,
            b.value
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_svg_carry_every_row() {
        let row = TransportRow {
            placement: "same-core",
            transport: "unix",
            ping_p50: Duration::from_micros(4),
            noop_p50: Duration::from_micros(10),
            raw_gbps: 2.0,
            raw_landed_gbps: 1.25,
            producer_gbps: 1.0,
            py_noop_p50: Some(Duration::from_micros(400)),
            rust_int64_gbps: Some(1.0),
            py_producer_gbps: Some(0.5),
            ..TransportRow::default()
        };
        let md = markdown(std::slice::from_ref(&row));
        assert!(md.contains("| same-core | unix | 4.00 | 10.00 |"), "{md}");
        assert!(md.contains("| 2.50 |"), "noop / ping-pong ratio: {md}");
        assert!(
            md.contains("| 1.00 | 2.00 | 0.50 | 1.25 | 0.80 |"),
            "producer, raw, ratio, landed, ratio: {md}"
        );
        assert!(md.contains("| 40.00 |"), "python / rust ratio: {md}");
        let shm = TransportRow {
            placement: "same-core",
            transport: "shm",
            producer_large_gbps: 9.0,
            exchange_large_gbps: 6.0,
            memcpy_large_gbps: 12.0,
            producer_large_std_gbps: Some(10.2),
            ..TransportRow::default()
        };
        let unix = TransportRow {
            producer_large_gbps: 3.0,
            ..row.clone()
        };
        let large = large_markdown(&[unix, shm]);
        assert!(
            large.contains(
                "| same-core | shm | 9.00 | 6.00 | 12.00 | 0.75 | 3.00 | 0.50 | 10.20 (0.85) | - |"
            ),
            "{large}"
        );
        let svg = svg(&[row]);
        assert!(svg.starts_with("<svg"));
        assert_eq!(
            svg.matches("<rect x=").count(),
            5,
            "3 latency + 2 throughput bars"
        );
    }
}

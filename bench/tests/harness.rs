//! The harness's moving parts over every transport: our worker answers the measured
//! calls, the raw server answers ping and bulk, and the idle-connection memory target.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use vgi_rpc::client::Client;
use vgi_rpc_bench::placement::SAME_CORE;
use vgi_rpc_bench::raw::{Baseline as _, READ_CHUNK};
use vgi_rpc_bench::scenario::{self, ExchangeSession, MixedExchange, Params};
use vgi_rpc_bench::service::MIXED_ROW_BYTES;
use vgi_rpc_bench::transport::{self, TRANSPORTS};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vgi-rpc-bench"))
}

#[test]
fn every_transport_serves_the_measured_calls() {
    let p = Params::new().unwrap();
    for t in TRANSPORTS {
        let end = transport::start(&transport::rust_worker(exe()), t, &SAME_CORE).unwrap();
        let mut client = end.connect().unwrap();
        scenario::noop(&mut client, &p).unwrap();
        scenario::small_args(&mut client, &p).unwrap();
        assert_eq!(scenario::echo_mib(&mut client, &p).unwrap(), 2 << 20);
        let bytes = scenario::produce_mixed(&mut client, 1000, 3).unwrap();
        assert_eq!(bytes, (3000 * MIXED_ROW_BYTES) as u64, "{}", t.name);
        // ~3 MB batches, produced and echoed: through the segment on the shm transport,
        // which is empty again at the next turn boundary.
        let rows = scenario::mixed_rows_for(3_000_000);
        scenario::produce_mixed(&mut client, rows, 2).unwrap();
        let mut ex = MixedExchange::open(&mut client, rows).unwrap();
        assert_eq!(
            ex.round_trip().unwrap(),
            2 * (rows * MIXED_ROW_BYTES) as u64
        );
        ex.round_trip().unwrap();
        ex.close().unwrap();
        scenario::noop(&mut client, &p).unwrap();
        match scenario::segment_allocations(&client) {
            Some(table) => assert_eq!(table.unwrap(), [], "{}: regions left", t.name),
            None => assert!(
                t.shm.is_none(),
                "{}: the worker declined the segment",
                t.name
            ),
        }
        if !t.announced {
            // The `standard` validation variant of the large rows (worker and client).
            let level = vgi_rpc::wire::Validation::Standard;
            let worker = transport::rust_worker_at(exe(), level);
            let trusted = transport::start(&worker, t, &SAME_CORE).unwrap();
            let options = transport::trusted_options(level);
            let mut client = trusted.connect_with(options).unwrap();
            scenario::produce_mixed(&mut client, rows, 2).unwrap();
            let mut ex = MixedExchange::open(&mut client, rows).unwrap();
            ex.round_trip().unwrap();
            ex.close().unwrap();
            assert_eq!(
                client.side_channel().is_some(),
                t.shm.is_some(),
                "{}",
                t.name
            );
        }
        scenario::produce_int64(&mut client, 10, 2).unwrap();
        let mut ex = ExchangeSession::open(&mut client, &p).unwrap();
        ex.round_trip().unwrap();
        ex.close().unwrap();
        let rate =
            scenario::concurrent_noop(&end, 4, std::time::Duration::from_millis(50)).unwrap();
        assert!(rate > 0.0, "{}: no calls completed", t.name);

        let raw = transport::start(&transport::raw_server(exe()), t, &SAME_CORE).unwrap();
        let mut stream = raw.open_raw().unwrap();
        stream.ping().unwrap();
        let mut buf = vec![0u8; READ_CHUNK];
        assert_eq!(stream.bulk(3 << 20, &mut buf).unwrap(), 3 << 20);
        stream.ping().unwrap();
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn worker_with_16_idle_connections_stays_under_16_mib() {
    let unix = TRANSPORTS.iter().find(|t| t.name == "unix").unwrap();
    let end = transport::start(&transport::rust_worker(exe()), unix, &SAME_CORE).unwrap();
    let p = Params::new().unwrap();
    let clients: Vec<Client> = (0..16)
        .map(|_| {
            let mut c = end.connect().unwrap();
            scenario::noop(&mut c, &p).unwrap();
            c
        })
        .collect();
    let rss = vm_rss_kib(end.pid().unwrap());
    assert!(
        rss < 16 * 1024,
        "worker VmRSS {rss} KiB with {} idle connections",
        clients.len()
    );
}

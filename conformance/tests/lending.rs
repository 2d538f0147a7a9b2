//! Large bodies — our client's requests and our worker's answers — are lent to the
//! kernel, not copied into it (see `vgi_rpc::wire`'s splice module), and arrive intact:
//! over a pipe (`vmsplice`) and over a Unix socket (`vmsplice` into a private pipe, then
//! `splice`).
//!
//! The checks that the path is used: over a pipe, each process's own I/O accounting
//! (`wchar` in `/proc/<pid>/io` counts what `write`-family calls moved, and lent pages
//! do not pass through them, so after echoing 16 MiB each side has written only the
//! messages' small heads); over a socket, where `send` is not in `wchar` either way,
//! the process's count of lent bytes, client and server in one process.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, Target};
use vgi_rpc::transport::{ServeOptions, Shutdown, UnixSocketListener, lent_bytes, serve_listener};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
const MIB: usize = 1 << 20;

/// Held by each test: the process's count of lent bytes must only move for the test
/// reading it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Calls `echo_bytes` with `data` and returns the answer's bytes.
fn echo(client: &mut Client, data: &[u8]) -> Vec<u8> {
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let params =
        RecordBatch::try_from_iter([("data", Arc::new(BinaryArray::from(vec![data])) as ArrayRef)])
            .unwrap();
    let answer = client
        .call(&target, "echo_bytes", &params, &CallOptions::default())
        .unwrap();
    let batch = answer.batch.expect("a result");
    let column = batch
        .column(0)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap();
    column.value(0).to_vec()
}

/// 1 MiB of bytes, different for each `round`.
fn round_bytes(round: u8) -> Vec<u8> {
    (0..MIB)
        .map(|i| (i as u8).wrapping_mul(round | 1))
        .collect()
}

fn wchar(pid: &str) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn large_bodies_over_a_pipe_are_lent_both_ways_and_arrive_intact() {
    let _alone = ONE_AT_A_TIME.lock().unwrap();
    let dir = std::env::temp_dir().join(format!("vgi-lending-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let address = format!(
        "exec:sh -c 'echo $$ > {}; exec {WORKER}'",
        pidfile.display()
    );
    let mut client = Client::connect(&address).unwrap();
    assert_eq!(echo(&mut client, b"warm"), b"warm");
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let (before, client_before) = (wchar(&pid), wchar("self"));
    for round in 0..16u8 {
        let data = round_bytes(round);
        assert_eq!(echo(&mut client, &data), data, "round {round}");
    }
    let (written, client_written) = (wchar(&pid) - before, wchar("self") - client_before);
    assert!(
        written < MIB as u64,
        "16 MiB echoed, the worker wrote {written} bytes through write calls"
    );
    assert!(
        client_written < MIB as u64,
        "16 MiB sent, the client wrote {client_written} bytes through write calls"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn large_bodies_over_a_unix_socket_are_lent_both_ways_and_arrive_intact() {
    let _alone = ONE_AT_A_TIME.lock().unwrap();
    let path = std::env::temp_dir().join(format!("vgi-lending-{}.sock", std::process::id()));
    let listener = UnixSocketListener::bind(&path).unwrap();
    let server = vgi_rpc_conformance::server_builder().build().unwrap();
    let shutdown = Arc::new(Shutdown::new().unwrap());
    let serving = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            serve_listener(&server, &listener, &ServeOptions::default(), &shutdown).unwrap();
        })
    };
    let mut client = Client::connect(&format!("unix:{}", path.display())).unwrap();
    assert_eq!(echo(&mut client, b"warm"), b"warm");
    let before = lent_bytes();
    for round in 0..16u8 {
        let data = round_bytes(round);
        assert_eq!(echo(&mut client, &data), data, "round {round}");
    }
    let lent = lent_bytes() - before;
    // Each 1 MiB goes out twice (request and answer), each time as one lent body part.
    assert!(
        lent >= 2 * 16 * MIB as u64,
        "16 MiB echoed over a Unix socket, {lent} bytes lent (client and server together)"
    );
    drop(client);
    shutdown.trigger();
    serving.join().unwrap();
}

//! Large bodies over a pipe — our client's requests to an `exec:` worker and our
//! worker's answers — leave by `vmsplice` (lent, not copied: see `vgi_rpc::wire`'s
//! splice module), and arrive intact.
//!
//! The check that the path is used reads each process's own I/O accounting: `wchar` in
//! `/proc/<pid>/io` counts what `write`-family calls moved, and lent pages do not pass
//! through them, so after echoing 16 MiB each side has written only the messages' small
//! heads.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch};
use vgi_rpc::client::{CallOptions, Client, Target};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");
const MIB: usize = 1 << 20;

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
    let dir = std::env::temp_dir().join(format!("vgi-lending-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let address = format!(
        "exec:sh -c 'echo $$ > {}; exec {WORKER}'",
        pidfile.display()
    );
    let mut client = Client::connect(&address).unwrap();
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let call = |client: &mut Client, data: &[u8]| {
        let params = RecordBatch::try_from_iter([(
            "data",
            Arc::new(BinaryArray::from(vec![data])) as ArrayRef,
        )])
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
    };
    assert_eq!(call(&mut client, b"warm"), b"warm");
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let (before, client_before) = (wchar(&pid), wchar("self"));
    for round in 0..16u8 {
        let data: Vec<u8> = (0..MIB)
            .map(|i| (i as u8).wrapping_mul(round | 1))
            .collect();
        assert_eq!(call(&mut client, &data), data, "round {round}");
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

//! `vgi-rpc --shm` leaves nothing in `/dev/shm`: after a normal run, after the client is
//! killed with SIGKILL in the middle of a stream (or before the worker ever answered),
//! and after the worker is.
//!
//! Other processes on the machine may create `psm_*` segments while these tests run, so
//! each check looks only at names that appeared during the scenario, and waits a moment
//! for a live one to go: a leaked name never does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[path = "../../tests/support/bins.rs"]
mod bins;

/// The scenarios watch the same directory: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn our_worker() -> &'static Path {
    static WORKER: OnceLock<PathBuf> = OnceLock::new();
    WORKER.get_or_init(|| bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker"))
}

fn segments() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("psm_"))
        .collect()
}

/// Names that appeared since `before` and are still there after up to 3 s.
fn leaked(before: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let new: BTreeSet<String> = segments().difference(before).cloned().collect();
        if new.is_empty() || Instant::now() > deadline {
            return new;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a segment not in `before` exists; returns it.
fn wait_for_new_segment(before: &BTreeSet<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(name) = segments().difference(before).next() {
            return name.clone();
        }
        assert!(Instant::now() < deadline, "no segment was created");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cli(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vgi-rpc"));
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::null());
    cmd
}

fn exec_address() -> String {
    format!("exec:{} --pipe", our_worker().display())
}

/// A long producer stream of ~1.6 MB batches (they travel through the segment), read
/// until its first row is out; returns the running CLI.
fn start_long_stream(address: &str) -> Child {
    let mut child = cli(&[
        "--shm",
        "64MiB",
        "call",
        address,
        "produce_large_batches",
        "rows_per_batch=100000",
        "batch_count=100000",
        "--format",
        "csv",
    ])
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..3 {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
    }
    // Keep draining in the background so the CLI never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_normal_run_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = segments();
    let out = cli(&[
        "--shm",
        "64MiB",
        "call",
        &exec_address(),
        "produce_large_batches",
        "rows_per_batch=100000",
        "batch_count=3",
        "--format",
        "csv",
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 300_001);
    assert_eq!(leaked(&before), BTreeSet::new());
}

#[test]
fn killing_the_client_mid_stream_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = segments();
    let mut client = start_long_stream(&exec_address());
    kill9(&mut client);
    // The worker (the client's child) sees its pipes close and exits; the name was
    // already gone once it had answered.
    assert_eq!(leaked(&before), BTreeSet::new());
}

#[test]
fn killing_the_worker_mid_stream_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sock");
    let mut worker = Command::new(our_worker())
        .arg("--unix")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.starts_with("UNIX:"), "{banner:?}");
    let before = segments();
    let mut client = start_long_stream(&format!("unix:{}", path.display()));
    kill9(&mut worker);
    let status = client.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "a dead worker is a transport failure"
    );
    assert_eq!(leaked(&before), BTreeSet::new());
}

#[test]
fn a_client_killed_before_any_answer_leaves_an_orphan_the_next_client_sweeps() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = segments();
    // A "worker" that never answers and exits when its stdin closes.
    let mut client = cli(&["--shm", "8MiB", "describe", "exec:sh -c 'cat >/dev/null'"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let orphan = wait_for_new_segment(&before);
    std::thread::sleep(Duration::from_millis(200));
    kill9(&mut client);
    assert!(
        segments().contains(&orphan),
        "the segment should outlive a client killed before the worker attached"
    );
    // The next client sweeps it before creating its own.
    let out = cli(&[
        "--shm",
        "8MiB",
        "call",
        &exec_address(),
        "echo_string",
        "value=hi",
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    assert!(!segments().contains(&orphan), "{orphan} was not swept");
    assert_eq!(leaked(&before), BTreeSet::new());
}

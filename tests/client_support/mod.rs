//! Shared by the `client_*` integration tests: locating our conformance worker, starting
//! the reference Python worker on a socket, and small batch helpers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgi_rpc::client::Target;

#[path = "../support/bins.rs"]
mod bins;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// `ConformanceService` 2.0.0.
pub fn primary() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// `conformance.Secondary.v1` (no version).
pub fn secondary() -> Target {
    Target::new("conformance.Secondary.v1", None)
}

/// Our conformance worker, as `cargo test --workspace` built it for this profile.
pub fn our_worker() -> PathBuf {
    bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker")
}

/// `exec:` address of our worker over pipes.
pub fn our_exec_address() -> String {
    format!("exec:{} --pipe", our_worker().display())
}

/// The reference venv (created by `scripts/python-venv.sh` if needed).
pub fn python_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let output = Command::new("bash")
            .arg(Path::new(MANIFEST_DIR).join("scripts/python-venv.sh"))
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "cannot create the reference Python venv (needs Python >= 3.13; set VGI_PYTHON): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        PathBuf::from(stdout.lines().last().unwrap().trim())
    })
    .clone()
}

/// `exec:` address of the reference worker over pipes.
pub fn python_exec_address() -> String {
    format!(
        "exec:{} --pipe",
        python_venv().join("bin/vgi-rpc-conformance").display()
    )
}

/// A reference Python worker serving a socket; killed and reaped on drop.
pub struct PyServer {
    child: Child,
    /// The client address (`unix:<path>` or `tcp://host:port`).
    pub address: String,
    _dir: Option<TempDir>,
}

impl PyServer {
    /// `vgi-rpc-conformance --unix <tmp>/w.sock --threaded`.
    pub fn unix() -> PyServer {
        let dir = TempDir::new();
        let path = dir.0.join("w.sock");
        Self::start(&["--unix", path.to_str().unwrap()], Some(dir))
    }

    /// `vgi-rpc-conformance --tcp 127.0.0.1:0 --threaded`.
    pub fn tcp() -> PyServer {
        Self::start(&["--tcp", "127.0.0.1:0"], None)
    }

    fn start(args: &[&str], dir: Option<TempDir>) -> PyServer {
        let mut child = Command::new(python_venv().join("bin/vgi-rpc-conformance"))
            .args(args)
            .arg("--threaded")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the reference worker starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let line = line.trim();
        let address = if let Some(path) = line.strip_prefix("UNIX:") {
            format!("unix:{path}")
        } else if let Some(hp) = line.strip_prefix("TCP:") {
            format!("tcp://{hp}")
        } else {
            let _ = child.kill();
            panic!("unexpected first line from the reference worker: {line:?}");
        };
        PyServer {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vgi-client-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A one-row batch from named columns.
pub fn row(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The parameters batch of a method without parameters.
pub fn no_params() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap()
}

pub fn string_value(batch: &RecordBatch) -> String {
    batch.column(0).as_string::<i32>().value(0).to_owned()
}

pub fn i64_column(batch: &RecordBatch, name: &str) -> Vec<i64> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

pub fn f64_column(batch: &RecordBatch, name: &str) -> Vec<f64> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

/// Whether a process with this pid still exists (a zombie counts: it was not reaped).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

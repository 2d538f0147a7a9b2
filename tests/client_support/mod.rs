//! Shared by `client_lifecycle` and the `client_cpu` bench: locating our conformance
//! worker, the primary target, the empty parameters batch, and process checks.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use vgi_rpc::client::Target;

#[path = "../support/bins.rs"]
mod bins;

/// `ConformanceService` 2.0.0.
pub fn primary() -> Target {
    Target::new("ConformanceService", Some("2.0.0"))
}

/// Our conformance worker, as `cargo test --workspace` built it for this profile.
pub fn our_worker() -> PathBuf {
    bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker")
}

/// `exec:` address of our worker over pipes.
pub fn our_exec_address() -> String {
    format!("exec:{} --pipe", our_worker().display())
}

/// The parameters batch of a method without parameters.
pub fn no_params() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap()
}

/// Whether a process with this pid still exists (a zombie counts: it was not reaped).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

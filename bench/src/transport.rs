//! The bench's side of the shared transport table ([`vgi_rpc_conformance::matrix`], the
//! one the test matrix runs over): its worker programs, and starting them on a
//! placement's worker core. Raw byte streams to the baseline server are
//! [`Endpoint::open_raw`].
//!
//! Our worker, the raw baseline server and the Python reference all take the same flags,
//! so adding a transport is one entry in [`TRANSPORTS`]. Clients connect with
//! [`Endpoint::connect`], which adds the row's shared-memory segment if it has one.

use std::path::Path;

use anyhow::Context as _;
use vgi_rpc::client::ConnectOptions;
use vgi_rpc::wire::Validation;
pub use vgi_rpc_conformance::matrix::{
    Endpoint, RawConnection, TRANSPORTS, Transport, WorkerProgram,
};

use crate::placement::Placement;

/// This harness's worker (conformance services + `VgiBench`), from the binary at `exe`.
pub fn rust_worker(exe: &Path) -> WorkerProgram {
    WorkerProgram::new("rust", vec![exe.display().to_string(), "worker".into()])
}

/// This harness's worker checking what its client sends only at `level` (below `full`:
/// for a client that vouches for itself, see [`trusted_options`]).
pub fn rust_worker_at(exe: &Path, level: Validation) -> WorkerProgram {
    let mut argv = vec![exe.display().to_string(), "worker".into()];
    argv.extend(["--validation".into(), level.as_str().into()]);
    WorkerProgram::new("rust-trusted", argv)
}

/// Client options that check what the worker sends only at `level`: the trade-off
/// `ConnectOptions::with_validation` offers for an `exec:` worker the client trusts (on
/// sockets the client checks fully regardless). The harness uses it for its own worker.
pub fn trusted_options(level: Validation) -> ConnectOptions {
    #[allow(unsafe_code)]
    // SAFETY: the worker is this harness's own binary (`rust_worker_at`), which sends
    // well-formed Arrow data; the library lowers the level only for `exec:` workers.
    let options = unsafe { ConnectOptions::default().with_validation(level) };
    options
}

/// The raw baseline server (ping-pong and bulk bytes), from the binary at `exe`.
pub fn raw_server(exe: &Path) -> WorkerProgram {
    WorkerProgram::new("raw", vec![exe.display().to_string(), "raw-server".into()])
}

/// The Python reference worker, when its venv exists (`VGI_VENV`, default
/// `target/py-venv` of this workspace, where `scripts/python-venv.sh` creates it).
pub fn python_worker() -> Option<WorkerProgram> {
    vgi_rpc_conformance::matrix::python_venv().map(|venv| WorkerProgram::python_reference(&venv))
}

/// Starts (or, for `exec:`, prepares) `program` serving `transport` on the worker core of
/// `placement`.
///
/// # Errors
/// The worker failed to start or announced something unexpected.
pub fn start(
    program: &WorkerProgram,
    transport: &Transport,
    placement: &Placement,
) -> anyhow::Result<Endpoint> {
    let pinned = program.prefixed(&placement.worker_prefix());
    Endpoint::start(&pinned, transport)
        .with_context(|| format!("starting {} on {}", program.label, transport.name))
}

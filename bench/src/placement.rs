//! Pinning client and worker to cores. Children inherit the parent's affinity, so the
//! worker is always started under `taskset -c <core>` explicitly.

use rustix::thread::{CpuSet, sched_setaffinity};

/// Which cores the client and the worker run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Label printed beside every figure.
    pub name: &'static str,
    /// The client's core (all client threads).
    pub client: usize,
    /// The worker's core.
    pub worker: usize,
}

/// Client and worker on core 0.
pub const SAME_CORE: Placement = Placement {
    name: "same-core",
    client: 0,
    worker: 0,
};

/// Client on core 0, worker on core 1.
pub const SPLIT_CORES: Placement = Placement {
    name: "split-cores",
    client: 0,
    worker: 1,
};

/// The placements to run: both, or the one named by `VGI_BENCH_PLACEMENT=same|split`.
pub fn selected() -> Vec<Placement> {
    match std::env::var("VGI_BENCH_PLACEMENT").as_deref() {
        Ok("same") => vec![SAME_CORE],
        Ok("split") => vec![SPLIT_CORES],
        _ => vec![SAME_CORE, SPLIT_CORES],
    }
}

/// Pins the calling thread (and threads it spawns later) to `core`.
///
/// # Errors
/// The kernel refused the mask (e.g. the core does not exist).
pub fn pin_current_thread(core: usize) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    set.set(core);
    sched_setaffinity(None, &set)?;
    Ok(())
}

impl Placement {
    /// The command prefix that starts a worker on this placement's worker core.
    pub fn worker_prefix(&self) -> Vec<String> {
        vec!["taskset".into(), "-c".into(), self.worker.to_string()]
    }
}

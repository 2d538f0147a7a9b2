//! What an operator configures ([`StickyOptions`]) and controls at run time
//! ([`DrainHandle`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::registry::Registry;

/// Sticky sessions of an HTTP server ([`HttpOptions::sticky`](crate::transport::http::HttpOptions::sticky)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StickyOptions {
    /// Lifetime of a session opened without its own TTL (advertised, in whole seconds,
    /// as `VGI-Sticky-Default-TTL`). Default 300 s.
    pub default_ttl: Duration,
    /// Headers a client must replay on every request of a session: each goes out once,
    /// as `VGI-Echo-<name>: <value>`, on the response that opens the session, and the
    /// names are advertised in `VGI-Sticky-Echo-Headers` (e.g. `fly-force-instance-id`
    /// for client-driven routing). Default: none.
    pub echo_headers: Vec<(String, String)>,
    /// Live sessions this worker holds at most; an open beyond it fails. Default 10000.
    pub max_sessions: usize,
    drain: DrainHandle,
}

impl Default for StickyOptions {
    fn default() -> Self {
        StickyOptions {
            default_ttl: Duration::from_secs(300),
            echo_headers: Vec::new(),
            max_sessions: 10_000,
            drain: DrainHandle::default(),
        }
    }
}

impl StickyOptions {
    /// The defaults.
    pub fn new() -> Self {
        StickyOptions::default()
    }

    /// Sets [`StickyOptions::default_ttl`] (at least one second).
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Adds an echo header ([`StickyOptions::echo_headers`]).
    #[must_use]
    pub fn echo_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.echo_headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`StickyOptions::max_sessions`].
    #[must_use]
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// The operator's handle on the servers built with these options: drain (refuse new
    /// sessions, keep serving live ones) and shut the live sessions down.
    pub fn drain_handle(&self) -> DrainHandle {
        self.drain.clone()
    }
}

/// Graceful drain of sticky sessions (the reference's `drain_handle`): while draining,
/// opening a session fails with `ServerDrainingError`; live sessions keep serving until
/// they close or expire, or [`DrainHandle::shutdown`] releases them all.
#[derive(Debug, Clone, Default)]
pub struct DrainHandle {
    shared: Arc<DrainShared>,
}

#[derive(Debug, Default)]
struct DrainShared {
    draining: AtomicBool,
    registries: Mutex<Vec<Weak<Registry>>>,
}

impl DrainHandle {
    /// Adds a server's registry to what [`DrainHandle::shutdown`] releases.
    pub(super) fn register(&self, registry: &Arc<Registry>) {
        if let Ok(mut list) = self.shared.registries.lock() {
            list.retain(|weak| weak.strong_count() > 0);
            list.push(Arc::downgrade(registry));
        }
    }

    /// Starts draining: new sessions are refused.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
    }

    /// Stops draining (a test fixture's undo; deployments only ever drain).
    pub fn resume(&self) {
        self.shared.draining.store(false, Ordering::SeqCst);
    }

    /// Whether [`DrainHandle::drain`] is in effect.
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::SeqCst)
    }

    /// Releases every live session (their values are dropped once no call uses them).
    pub fn shutdown(&self) {
        let registries: Vec<Arc<Registry>> = match self.shared.registries.lock() {
            Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        };
        for registry in registries {
            registry.clear();
        }
    }
}

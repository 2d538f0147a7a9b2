//! The live sessions of one server: bounded by the caller, expired on lookup and by the
//! sweep. Values are dropped outside the map's lock, so a value's `Drop` never runs while
//! other requests wait on the map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::SESSION_ID_LEN;
use crate::server::sticky::SessionValue;

/// One live session.
pub(super) struct Entry {
    pub(super) value: SessionValue,
    pub(super) expires: Instant,
    pub(super) principal: String,
    /// Serializes the calls on this session.
    pub(super) lock: Arc<tokio::sync::Mutex<()>>,
}

/// The live sessions of one server.
#[derive(Default)]
pub(super) struct Registry {
    entries: Mutex<HashMap<[u8; SESSION_ID_LEN], Arc<Entry>>>,
}

impl Registry {
    pub(super) fn entries(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<[u8; SESSION_ID_LEN], Arc<Entry>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live entry `id` of `principal`; an expired one is evicted on the way.
    pub(super) fn get(&self, id: &[u8; SESSION_ID_LEN], principal: &str) -> Option<Arc<Entry>> {
        let mut entries = self.entries();
        let entry = entries.get(id)?;
        if entry.expires <= Instant::now() {
            let expired = entries.remove(id);
            drop(entries);
            drop(expired);
            return None;
        }
        (entry.principal == principal).then(|| Arc::clone(entry))
    }

    pub(super) fn remove(&self, id: &[u8; SESSION_ID_LEN]) -> bool {
        let removed = self.entries().remove(id);
        removed.is_some()
    }

    pub(super) fn sweep(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        self.entries().retain(|_, entry| {
            let live = entry.expires > now;
            if !live {
                expired.push(Arc::clone(entry));
            }
            live
        });
        // Values drop here, outside the lock.
        drop(expired);
    }

    pub(super) fn clear(&self) {
        let all = std::mem::take(&mut *self.entries());
        drop(all);
    }
}

//! Random identifiers (server ids, request ids, stream ids) without a RNG dependency:
//! std's randomly keyed SipHash over a counter and the clock is plenty for ids that only
//! need to be unique, not secret.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `digits` lowercase hex digits.
pub(crate) fn random_hex(digits: usize) -> String {
    let mut out = String::with_capacity(digits + 16);
    while out.len() < digits {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.write_u128(nanos);
        // Writing to a String cannot fail.
        let _ = write!(out, "{:016x}", h.finish());
    }
    out.truncate(digits);
    out
}

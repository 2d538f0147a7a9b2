//! Random identifiers (server ids, request ids, stream ids) without a RNG dependency.
//!
//! Ids only need to be unique, not secret. Each thread seeds a SplitMix64 sequence once
//! from std's randomly keyed SipHash over a process-wide counter and the clock, then
//! steps it per id: every call gets a request id, and hashing and reading the clock per
//! id was a measurable share of a small call.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

/// The next 64 random bits of this thread's sequence (SplitMix64), e.g. for trace and
/// span ids.
pub(crate) fn random_u64() -> u64 {
    let state = STATE
        .try_with(|s| {
            let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(next);
            next
        })
        .unwrap_or_else(|_| seed());
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `digits` lowercase hex digits.
pub(crate) fn random_hex(digits: usize) -> String {
    let mut out = String::new();
    random_hex_into(&mut out, digits);
    out
}

/// [`random_hex`] into `out`, replacing what it held (no allocation once it has room).
pub(crate) fn random_hex_into(out: &mut String, digits: usize) {
    out.clear();
    out.reserve(digits.next_multiple_of(16));
    while out.len() < digits {
        // Not `format!`: it was a visible share of a small call.
        crate::hex::push(out, &random_u64().to_be_bytes());
    }
    out.truncate(digits);
}

#[cfg(test)]
mod tests {
    use super::random_hex;

    #[test]
    fn ids_have_the_asked_length_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| random_hex(16)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert_eq!(random_hex(32).len(), 32);
        assert_eq!(random_hex(12).len(), 12);
    }
}

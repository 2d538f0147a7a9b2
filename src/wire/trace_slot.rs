//! The one entry of a repeated message that changes on every call: its trace context.
//!
//! A traced client puts a fresh `traceparent` into every request, so a request that
//! would otherwise repeat byte for byte (a parameterless call) never does, and the
//! caches that skip building and decoding a repeated message ([`super::Repeat`], the
//! client's request encoder) missed on every traced call: instrumenting both ends cost
//! more than half a local noop again, most of it rebuilding and re-decoding messages
//! that differ in 55 bytes.
//!
//! A version-00 `traceparent` is always 55 characters, and a flatbuffer's layout depends
//! on the lengths of its strings, not on their contents, so two messages that differ
//! only in that value are the same bytes everywhere else. A [`Slot`] is where the value
//! sits in a kept message: found once, as the only place the value occurs with its
//! flatbuffer length prefix and terminator. Another message is the kept one with another
//! trace context when every byte outside the slot is equal and the bytes inside are
//! printable ASCII (so valid UTF-8, as a decoder requires of a flatbuffer string); the
//! decoder would read the kept message's batch with that value in place of the old one.
//! Nothing here interprets the value: a malformed `traceparent` travels as it would
//! through a full decode, and telemetry judges it later.

use super::Metadata;
use super::keys::{self, TRACEPARENT_LEN as LEN};

/// Where a kept message holds its `traceparent` value (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(usize);

impl Slot {
    /// The place of `metadata`'s `traceparent` in `bytes`, the message it was encoded
    /// to or decoded from: `None` without a [`LEN`]-byte value, or when the value does
    /// not occur exactly once as a flatbuffer string.
    pub(crate) fn find(bytes: &[u8], metadata: &Metadata) -> Option<Slot> {
        let value = metadata.get(keys::TRACEPARENT)?.as_bytes();
        if value.len() != LEN {
            return None;
        }
        let prefix = u32::try_from(LEN).ok()?.to_le_bytes();
        let mut found = bytes
            .windows(LEN + 5)
            .enumerate()
            .filter(|(_, w)| w[..4] == prefix && &w[4..4 + LEN] == value && w[4 + LEN] == 0)
            .map(|(at, _)| at + 4);
        let at = found.next()?;
        found.next().is_none().then_some(Slot(at))
    }

    /// The value in this slot of `bytes` when `bytes` begin with `kept` apart from this
    /// slot and hold printable ASCII in it (`kept` being the message the slot was found
    /// in); `None` otherwise.
    pub(crate) fn value_in<'a>(self, kept: &[u8], bytes: &'a [u8]) -> Option<&'a str> {
        let end = self.0 + LEN;
        let same = bytes.len() >= kept.len()
            && kept.len() >= end
            && bytes[..self.0] == kept[..self.0]
            && bytes[end..kept.len()] == kept[end..];
        let value = bytes.get(self.0..end).filter(|_| same)?;
        if !value.iter().all(|b| (0x20..0x7f).contains(b)) {
            return None;
        }
        // Not `from_utf8`: a second pass over bytes just checked, on every traced call.
        // SAFETY: every byte is printable ASCII (checked above), so the bytes are UTF-8.
        #[allow(unsafe_code)]
        Some(unsafe { std::str::from_utf8_unchecked(value) })
    }

    /// Writes `value` into this slot of `bytes`, the kept message; `false`, writing
    /// nothing, when `value` is not [`LEN`] bytes long.
    pub(crate) fn write(self, bytes: &mut [u8], value: &str) -> bool {
        match bytes.get_mut(self.0..self.0 + LEN) {
            Some(slot) if value.len() == LEN => {
                slot.copy_from_slice(value.as_bytes());
                true
            }
            _ => false,
        }
    }
}

/// Whether `a` and `b` have the same entries in the same order, where the
/// `traceparent` values need only both be [`LEN`] bytes long.
pub(crate) fn same_but_traceparent(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && if ka == keys::TRACEPARENT {
                    va.len() == LEN && vb.len() == LEN
                } else {
                    va == vb
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const B: &str = "00-1234567890abcdef1234567890abcdef-0123456789abcdef-00";

    #[test]
    fn two_traced_messages_differ_in_the_slot_only() {
        let with = |tp: &str| {
            Metadata::new()
                .with(keys::METHOD, "noop")
                .with(keys::TRACEPARENT, tp)
        };
        let a = super::super::repeat::tests::stream(1, &with(A));
        let b = super::super::repeat::tests::stream(1, &with(B));
        let slot = Slot::find(&a, &with(A)).expect("the value is in the message");
        assert_eq!(Slot::find(&b, &with(B)), Some(slot));
        assert_eq!(slot.value_in(&a, &b), Some(B));
        let mut patched = a.clone();
        assert!(slot.write(&mut patched, B));
        assert_eq!(patched, b, "the encoder lays both out alike");
        // Longer input (what was read ahead) still matches its prefix.
        let mut ahead = b.clone();
        ahead.extend_from_slice(b"next");
        assert_eq!(slot.value_in(&a, &ahead), Some(B));
        // Anything else differing, a short read or a non-ASCII value does not match.
        assert_eq!(slot.value_in(&a, &b[..b.len() - 1]), None);
        let other = super::super::repeat::tests::stream(2, &with(B));
        assert_eq!(slot.value_in(&a, &other), None);
        let mut binary = b.clone();
        binary[slot.0 + 3] = 0xff;
        assert_eq!(slot.value_in(&a, &binary), None);
    }

    #[test]
    fn no_slot_without_a_unique_version_00_value() {
        let short = Metadata::new().with(keys::TRACEPARENT, "00-short");
        let bytes = super::super::repeat::tests::stream(1, &short);
        assert_eq!(Slot::find(&bytes, &short), None);
        // The same value under two keys: its place is ambiguous.
        let twice = Metadata::new().with("echo", A).with(keys::TRACEPARENT, A);
        let bytes = super::super::repeat::tests::stream(1, &twice);
        assert_eq!(Slot::find(&bytes, &twice), None);
        assert_eq!(Slot::find(&bytes, &Metadata::new()), None);
    }

    #[test]
    fn metadata_alike_but_for_the_traceparent() {
        let m = |tp: &str, x: &str| Metadata::new().with(keys::TRACEPARENT, tp).with("x", x);
        assert!(same_but_traceparent(&m(A, "1"), &m(B, "1")));
        assert!(!same_but_traceparent(&m(A, "1"), &m(B, "2")));
        assert!(!same_but_traceparent(&m(A, "1"), &m("00-short", "1")));
        assert!(!same_but_traceparent(&m(A, "1"), &Metadata::new()));
    }
}

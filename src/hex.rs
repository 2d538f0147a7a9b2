//! Lowercase hex, the one encoder the crate uses for digests, key ids and diagnostics.

/// The two lowercase hex digits of `b`.
pub(crate) fn digits(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
}

/// Appends `bytes` to `out` as lowercase hex digits.
pub(crate) fn push(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let [high, low] = digits(*b);
        out.push(char::from(high));
        out.push(char::from(low));
    }
}

/// `bytes` as lowercase hex digits.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push(&mut out, bytes);
    out
}

/// Exactly `2 * N` hex digits (either case) as `N` bytes; `None` otherwise.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    // `from_str_radix` alone would take a leading `+`.
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x00, 0x9c, 0xff]), "009cff");
        assert_eq!(super::decode_array::<3>("009CfF"), Some([0x00, 0x9c, 0xff]));
        assert_eq!(super::decode_array::<2>("009cff"), None);
        assert_eq!(super::decode_array::<1>("+1"), None);
    }
}

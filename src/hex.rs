//! Lowercase hex, the one encoder the crate uses for digests, key ids and diagnostics.

/// The two lowercase hex digits of `b`.
pub(crate) const fn digits(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[(b >> 4) as usize], DIGITS[(b & 0x0f) as usize]]
}

/// Writes `bytes` as lowercase hex digits into `out` (a digit pair per byte, as far as
/// `out` reaches: it is meant to be twice as long).
#[cfg(feature = "otel")]
pub(crate) fn write(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*b)]);
    }
}

/// Each byte's two digits: one load per byte instead of two (a trace context, 25 bytes,
/// is written for every traced call).
#[cfg(feature = "otel")]
static PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = digits(i as u8);
        i += 1;
    }
    table
};

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
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    // Branch-free: a non-digit's value has its high bit set, and any set high bit in
    // `bad` refuses the whole text.
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        bad |= high | low;
        *byte = high << 4 | (low & 0x0f);
    }
    (bad & 0x80 == 0).then_some(out)
}

/// Each byte's value as a hex digit (either case), or `0x80` for a non-digit.
static VALUES: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x00, 0x9c, 0xff]), "009cff");
        assert_eq!(super::decode_array::<3>("009CfF"), Some([0x00, 0x9c, 0xff]));
        assert_eq!(super::decode_array::<2>("009cff"), None);
        assert_eq!(super::decode_array::<1>("+1"), None);
        assert_eq!(super::decode_array::<1>("g0"), None);
        assert_eq!(super::decode_array::<1>("0G"), None);
        assert_eq!(super::decode_array::<1>("\u{e9}"), None);
        let all: String = (0..=255u8).map(|b| format!("{b:02X}")).collect();
        let bytes = super::decode_array::<256>(&all).unwrap();
        assert!(bytes.iter().enumerate().all(|(i, b)| usize::from(*b) == i));
        #[cfg(feature = "otel")]
        {
            let mut written = [0u8; 512];
            super::write(&bytes, &mut written);
            assert_eq!(written, all.to_ascii_lowercase().as_bytes());
        }
    }
}

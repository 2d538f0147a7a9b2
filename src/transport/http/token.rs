//! Sealed continuation tokens: the server's private notes that let any worker holding
//! the same key continue a stream another worker started.
//!
//! A token is standard base64 of `u8 version | 24-byte nonce | XChaCha20-Poly1305
//! ciphertext + tag`; the plaintext is `u8 codec (0 raw, 1 zstd) | payload`. The version
//! byte tells the two kinds apart (a call token cannot be replayed as a cursor) and is
//! authenticated with the caller's binding (protocol, and the principal once identity
//! exists) as associated data, so a token lifted from one protocol or principal does not
//! open under another. Every failure to open looks the same to the caller.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Version byte of a call token (minted once per stream, at `/init`).
pub(crate) const CALL_TOKEN: u8 = 0x02;
/// Version byte of a cursor (re-minted every turn).
pub(crate) const CURSOR: u8 = 0x05;

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
/// Payloads at least this long are zstd-compressed inside the seal.
const COMPRESS_FROM: usize = 512;
/// The largest payload a token may decompress to (a saved stream state).
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// The key every worker of a deployment shares, and the cipher built from it.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// A fresh random key (tokens then open only on this process).
    pub(crate) fn random_key() -> [u8; 32] {
        XChaCha20Poly1305::generate_key(&mut OsRng).into()
    }

    /// Seals `payload` as a token of kind `version`, bound to `binding`.
    pub(crate) fn seal(&self, version: u8, binding: &[u8], payload: &[u8]) -> String {
        let mut plain = Vec::with_capacity(payload.len() + 1);
        match (payload.len() >= COMPRESS_FROM)
            .then(|| super::zstd_ctx::compress(payload, 1).ok())
            .flatten()
        {
            Some(packed) if packed.len() < payload.len() => {
                plain.push(ZSTD);
                plain.extend_from_slice(&packed);
            }
            _ => {
                plain.push(RAW);
                plain.extend_from_slice(payload);
            }
        }
        STANDARD.encode(seal_raw(
            &self.cipher,
            version,
            &plain,
            &aad(version, binding),
        ))
    }

    /// Opens a token of kind `version` bound to `binding`; `None` for anything else
    /// (malformed, truncated, forged, another kind or binding, oversized payload).
    pub(crate) fn open(&self, version: u8, binding: &[u8], token: &str) -> Option<Vec<u8>> {
        let raw = STANDARD.decode(token.trim()).ok()?;
        let plain = open_raw(&self.cipher, version, &raw, &aad(version, binding))?;
        let (&codec, payload) = plain.split_first()?;
        match codec {
            RAW => Some(payload.to_vec()),
            ZSTD => zstd::bulk::decompress(payload, MAX_PAYLOAD).ok(),
            _ => None,
        }
    }
}

/// `version u8 | nonce 24 | ciphertext+tag`: `plain` sealed under `cipher` with a fresh
/// random nonce, bound to `aad`. The framing of every token this crate seals.
pub(crate) fn seal_raw(
    cipher: &XChaCha20Poly1305,
    version: u8,
    plain: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    // Encryption with a valid key and nonce cannot fail for in-memory buffers; should it
    // ever, an empty ciphertext simply never opens.
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    raw.push(version);
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&sealed);
    raw
}

/// Opens what [`seal_raw`] made: `None` for another version, a short token, or one that
/// does not verify under `cipher` and `aad`.
pub(crate) fn open_raw(
    cipher: &XChaCha20Poly1305,
    version: u8,
    raw: &[u8],
    aad: &[u8],
) -> Option<Vec<u8>> {
    if raw.len() < 1 + NONCE_LEN + TAG_LEN || raw[0] != version {
        return None;
    }
    let nonce = XNonce::from_slice(&raw[1..1 + NONCE_LEN]);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &raw[1 + NONCE_LEN..],
                aad,
            },
        )
        .ok()
}

fn aad(version: u8, binding: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(binding.len() + 8);
    aad.extend_from_slice(b"vgi-rpc-token");
    aad.push(version);
    aad.extend_from_slice(binding);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32])
    }

    #[test]
    fn round_trips_small_and_compressible_payloads() {
        let s = sealer();
        for payload in [b"state".to_vec(), vec![b'x'; 100_000]] {
            let token = s.seal(CURSOR, b"P", &payload);
            assert_eq!(s.open(CURSOR, b"P", &token).as_deref(), Some(&payload[..]));
        }
        // The compressible payload really was compressed inside the seal.
        let token = s.seal(CURSOR, b"P", &vec![b'x'; 100_000]);
        assert!(token.len() < 10_000, "token of {} bytes", token.len());
    }

    #[test]
    fn refuses_other_kinds_bindings_keys_and_tampering() {
        let s = sealer();
        let token = s.seal(CURSOR, b"P", b"state");
        assert!(s.open(CALL_TOKEN, b"P", &token).is_none(), "kind");
        assert!(s.open(CURSOR, b"Q", &token).is_none(), "binding");
        assert!(
            Sealer::new(&[8u8; 32]).open(CURSOR, b"P", &token).is_none(),
            "key"
        );
        let mut raw = STANDARD.decode(&token).unwrap_or_default();
        for i in [0, 1, 30, raw.len() - 1] {
            raw[i] ^= 1;
            assert!(
                s.open(CURSOR, b"P", &STANDARD.encode(&raw)).is_none(),
                "bit {i}"
            );
            raw[i] ^= 1;
        }
        for cut in [0, 1, 25, raw.len() - 1] {
            assert!(
                s.open(CURSOR, b"P", &STANDARD.encode(&raw[..cut]))
                    .is_none(),
                "cut {cut}"
            );
        }
        assert!(s.open(CURSOR, b"P", "not base64!").is_none());
    }
}

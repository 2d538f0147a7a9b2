//! Sealed grants: the framework's own `issue_grant` credential and its verifier
//! (`IDENTITY_V2_SPEC.md` §9), byte-identical in every port.
//!
//! ```text
//! token    = "vgig1." base64url_nopad(kid(8) || envelope)
//! kid      = SHA-256("vgi_rpc.grant.kid.v1" 0x00 || key)[0..8]
//! envelope = 0x01 || nonce(24) || XChaCha20-Poly1305(payload, aad)
//! aad      = "vgi_rpc.grant.v1" 0x00 || kid || audience
//! payload  = issued_at i64 | expires_at i64 | grant_id | principal | purpose
//!            | u16 scope count | scopes   (strings: u16 length || UTF-8; little-endian)
//! ```
//!
//! No storage: the key is the trust anchor, the kid travels in the clear (bound by the
//! AAD) so a verifier picks its key without trial decryption, and the audience in the AAD
//! keeps two deployments that share a key from accepting each other's grants. Grants are
//! not individually revocable; the levers are a short maximum lifetime and key rotation
//! (the first key mints, every key verifies). Every verification failure is one error;
//! only "outside its validity window" is distinguished, and only after the grant is
//! proven authentic, so the distinction tells a forger nothing.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::DateTime;
use sha2::{Digest, Sha256};

use super::{IdentityFailure, IssuedGrant};
use crate::hex::encode as hex;
use crate::{Error, Result};

/// The prefix that routes a bearer to the grant verifier (the version is in the prefix,
/// so another format is another prefix and is never half-parsed).
pub const PREFIX: &str = "vgig1.";
/// Default ceiling on a grant's lifetime: seven days.
pub const DEFAULT_MAX_TTL_SECONDS: i64 = 604_800;
/// Clock skew tolerated on both ends of the validity window.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Environment: comma-separated base64 keys of 32 bytes, minting key first.
pub const KEYS_ENV: &str = "VGI_RPC_GRANT_KEYS";
/// Environment: the audience bound into every grant (default `""`).
pub const AUDIENCE_ENV: &str = "VGI_RPC_GRANT_AUDIENCE";
/// Environment: the lifetime ceiling in seconds (default seven days).
pub const MAX_TTL_ENV: &str = "VGI_RPC_GRANT_MAX_TTL_SECONDS";

const VERSION: u8 = 0x01;
const KID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const MAX_TOKEN_CHARS: usize = 4096;

/// The keys (first mints, all verify), audience and lifetime ceiling of a deployment.
#[derive(Clone)]
pub struct GrantKeys {
    keys: Vec<([u8; KID_LEN], XChaCha20Poly1305)>,
    audience: String,
    max_ttl_seconds: i64,
}

impl fmt::Debug for GrantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids only: never key material.
        let kids: Vec<String> = self.keys.iter().map(|(kid, _)| hex(kid)).collect();
        f.debug_struct("GrantKeys")
            .field("kids", &kids)
            .field("audience", &self.audience)
            .field("max_ttl_seconds", &self.max_ttl_seconds)
            .finish()
    }
}

impl GrantKeys {
    /// Keys (the first mints), an audience and a lifetime ceiling.
    ///
    /// # Errors
    /// No keys, a repeated key, or a non-positive ceiling.
    pub fn new(
        keys: &[[u8; 32]],
        audience: impl Into<String>,
        max_ttl_seconds: i64,
    ) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::Config(
                "grant keys: at least one key is required".into(),
            ));
        }
        if max_ttl_seconds <= 0 {
            return Err(Error::Config(
                "grant keys: the maximum lifetime must be positive".into(),
            ));
        }
        let mut out: Vec<([u8; KID_LEN], XChaCha20Poly1305)> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                return Err(Error::Config(format!(
                    "grant keys: key #{} is repeated",
                    i + 1
                )));
            }
            out.push((key_id(key), XChaCha20Poly1305::new(key.into())));
        }
        Ok(GrantKeys {
            keys: out,
            audience: audience.into(),
            max_ttl_seconds,
        })
    }

    /// Parses one key: standard base64 (padding optional) of exactly 32 bytes.
    ///
    /// # Errors
    /// Not base64, or not 32 bytes.
    pub fn parse_key(text: &str) -> Result<[u8; 32]> {
        let bytes = STANDARD_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| Error::Config("grant key: not standard base64".into()))?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            Error::Config(format!("grant key: {} bytes, expected exactly 32", b.len()))
        })
    }

    /// The configuration from `VGI_RPC_GRANT_KEYS`, `VGI_RPC_GRANT_AUDIENCE` and
    /// `VGI_RPC_GRANT_MAX_TTL_SECONDS`; `Ok(None)` when no keys are set.
    ///
    /// # Errors
    /// A malformed key or ceiling: the worker must not start.
    pub fn from_env() -> Result<Option<Self>> {
        let Ok(list) = std::env::var(KEYS_ENV) else {
            return Ok(None);
        };
        let keys = list
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(Self::parse_key)
            .collect::<Result<Vec<_>>>()?;
        let audience = std::env::var(AUDIENCE_ENV).unwrap_or_default();
        let max_ttl = match std::env::var(MAX_TTL_ENV) {
            Ok(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("{MAX_TTL_ENV}: not an integer")))?,
            Err(_) => DEFAULT_MAX_TTL_SECONDS,
        };
        Self::new(&keys, audience, max_ttl).map(Some)
    }

    /// The audience bound into every grant.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The lifetime ceiling.
    pub fn max_ttl_seconds(&self) -> i64 {
        self.max_ttl_seconds
    }

    fn aad(&self, kid: &[u8; KID_LEN]) -> Vec<u8> {
        let mut aad = b"vgi_rpc.grant.v1\0".to_vec();
        aad.extend_from_slice(kid);
        aad.extend_from_slice(self.audience.as_bytes());
        aad
    }
}

/// What a grant says, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantClaims {
    /// Seconds since the epoch when it was minted.
    pub issued_at: i64,
    /// Seconds since the epoch when it stops working.
    pub expires_at: i64,
    /// Correlation handle (32 hex digits when the framework minted it).
    pub grant_id: String,
    /// Who it authenticates as.
    pub principal: String,
    /// Why it was minted.
    pub purpose: String,
    /// What it may do, in request order.
    pub scopes: Vec<String>,
}

/// Why a grant was refused: `expired` only for an authentic grant outside its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantInvalid {
    /// The grant is authentic but expired or not yet valid.
    pub expired: bool,
}

impl fmt::Display for GrantInvalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.expired {
            "grant outside its validity window"
        } else {
            "grant invalid"
        })
    }
}

impl std::error::Error for GrantInvalid {}

/// Seals `claims` with the minting key and `nonce` (exposed for the byte-exact vectors;
/// [`mint`] draws a random nonce).
pub fn seal(keys: &GrantKeys, claims: &GrantClaims, nonce: &[u8; NONCE_LEN]) -> Result<String> {
    let (kid, cipher) = &keys.keys[0];
    let payload = encode_payload(claims)?;
    let aad = keys.aad(kid);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: &payload,
                aad: &aad,
            },
        )
        .map_err(|_| Error::Config("grant: sealing failed".into()))?;
    let mut raw = Vec::with_capacity(KID_LEN + 1 + NONCE_LEN + sealed.len());
    raw.extend_from_slice(kid);
    raw.push(VERSION);
    raw.extend_from_slice(nonce);
    raw.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// The framework's mint: a grant for `principal` living `min(ttl_seconds, ceiling)`.
///
/// # Errors
/// [`IdentityFailure::Refused`] for a non-positive `ttl_seconds` or a field too long for
/// the format.
pub fn mint(
    keys: &GrantKeys,
    principal: &str,
    purpose: &str,
    scopes: &[String],
    ttl_seconds: i64,
) -> std::result::Result<IssuedGrant, IdentityFailure> {
    if ttl_seconds <= 0 {
        return Err(IdentityFailure::Refused(
            "ttl_seconds must be positive".into(),
        ));
    }
    let issued_at = now();
    let mut id = [0u8; 16];
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    id.copy_from_slice(&nonce[..16]);
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let claims = GrantClaims {
        issued_at,
        expires_at: issued_at.saturating_add(ttl_seconds.min(keys.max_ttl_seconds)),
        grant_id: hex(&id),
        principal: principal.to_owned(),
        purpose: purpose.to_owned(),
        scopes: scopes.to_vec(),
    };
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(&nonce);
    let token =
        seal(keys, &claims, &nonce_bytes).map_err(|e| IdentityFailure::Refused(e.to_string()))?;
    let expires = DateTime::from_timestamp(claims.expires_at, 0)
        .ok_or_else(|| IdentityFailure::Refused("expires_at out of range".into()))?;
    Ok(IssuedGrant::new(token, expires).with_grant_id(claims.grant_id))
}

/// Verifies a bearer that starts with [`PREFIX`], in the contract's order, at `now`
/// (seconds since the epoch).
///
/// # Errors
/// [`GrantInvalid`]: one answer for every failure, `expired` only after authenticity.
pub fn verify_at(
    keys: &GrantKeys,
    token: &str,
    now: i64,
) -> std::result::Result<GrantClaims, GrantInvalid> {
    const BAD: GrantInvalid = GrantInvalid { expired: false };
    let body = token.strip_prefix(PREFIX).ok_or(BAD)?;
    if token.len() > MAX_TOKEN_CHARS {
        return Err(BAD);
    }
    let raw = canonical_b64url(body).ok_or(BAD)?;
    if raw.len() < KID_LEN + 1 + NONCE_LEN + TAG_LEN {
        return Err(BAD);
    }
    let (kid, envelope) = raw.split_at(KID_LEN);
    let (kid, cipher) = keys.keys.iter().find(|(k, _)| k == kid).ok_or(BAD)?;
    if envelope[0] != VERSION {
        return Err(BAD);
    }
    let nonce = XNonce::from_slice(&envelope[1..=NONCE_LEN]);
    let aad = keys.aad(kid);
    let payload = cipher
        .decrypt(
            nonce,
            Payload {
                msg: &envelope[1 + NONCE_LEN..],
                aad: &aad,
            },
        )
        .map_err(|_| BAD)?;
    let claims = decode_payload(&payload).ok_or(BAD)?;
    if claims.principal.is_empty()
        || claims.expires_at <= claims.issued_at
        || claims.expires_at - claims.issued_at > keys.max_ttl_seconds
    {
        return Err(BAD);
    }
    let expired = GrantInvalid { expired: true };
    if claims.issued_at > now.saturating_add(CLOCK_SKEW_SECONDS)
        || now >= claims.expires_at.saturating_add(CLOCK_SKEW_SECONDS)
    {
        return Err(expired);
    }
    Ok(claims)
}

/// [`verify_at`] the current time.
///
/// # Errors
/// As [`verify_at`].
pub fn verify(keys: &GrantKeys, token: &str) -> std::result::Result<GrantClaims, GrantInvalid> {
    verify_at(keys, token, now())
}

/// `SHA-256("vgi_rpc.grant.kid.v1" 0x00 || key)[0..8]`.
pub fn key_id(key: &[u8; 32]) -> [u8; KID_LEN] {
    let mut h = Sha256::new();
    h.update(b"vgi_rpc.grant.kid.v1\0");
    h.update(key);
    let digest = h.finalize();
    let mut kid = [0u8; KID_LEN];
    kid.copy_from_slice(&digest[..KID_LEN]);
    kid
}

/// Decodes unpadded base64url that has exactly one spelling: the alphabet only, no `=`,
/// and re-encoding gives the same text (so non-zero trailing bits are refused).
fn canonical_b64url(text: &str) -> Option<Vec<u8>> {
    let ok = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok || text.len() % 4 == 1 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
    (URL_SAFE_NO_PAD.encode(&raw) == text).then_some(raw)
}

fn encode_payload(c: &GrantClaims) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&c.issued_at.to_le_bytes());
    out.extend_from_slice(&c.expires_at.to_le_bytes());
    for s in [&c.grant_id, &c.principal, &c.purpose] {
        put_str(&mut out, s)?;
    }
    let count = u16::try_from(c.scopes.len())
        .map_err(|_| Error::Config("grant: too many scopes".into()))?;
    out.extend_from_slice(&count.to_le_bytes());
    for s in &c.scopes {
        put_str(&mut out, s)?;
    }
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len())
        .map_err(|_| Error::Config("grant: a field is longer than 65535 bytes".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Strict: exact lengths, valid UTF-8, no trailing bytes.
fn decode_payload(mut b: &[u8]) -> Option<GrantClaims> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    fn u16_at(b: &mut &[u8]) -> Option<u16> {
        Some(u16::from_le_bytes(take(b, 2)?.try_into().ok()?))
    }
    fn string(b: &mut &[u8]) -> Option<String> {
        let n = usize::from(u16_at(b)?);
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let issued_at = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let expires_at = i64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let grant_id = string(&mut b)?;
    let principal = string(&mut b)?;
    let purpose = string(&mut b)?;
    let count = u16_at(&mut b)?;
    let scopes = (0..count)
        .map(|_| string(&mut b))
        .collect::<Option<Vec<_>>>()?;
    b.is_empty().then_some(GrantClaims {
        issued_at,
        expires_at,
        grant_id,
        principal,
        purpose,
        scopes,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "grant_vectors.rs"]
mod vectors;

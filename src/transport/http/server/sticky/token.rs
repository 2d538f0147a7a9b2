//! The `VGI-Session` token (spec §3): `version u8 | nonce 24 | ciphertext+tag`,
//! base64url without padding; the plaintext is `created_at u64 | server_id_len u8 |
//! server_id | session_id 12 | expires_at u64` (little-endian), and the associated data
//! binds it to the caller exactly as the reference binds its state tokens, so any other
//! caller's open fails in the AEAD itself.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;

use super::SESSION_ID_LEN;
use crate::server::AuthContext;
use crate::transport::http::token::{open_raw, seal_raw};
use crate::{ErrorCode, RpcError};

pub(super) const TOKEN_VERSION: u8 = 1;
/// A token longer than this is not one of ours (a 255-byte server id seals to ~430).
const MAX_TOKEN_CHARS: usize = 1024;
/// Decodes base64url as Python's `urlsafe_b64decode` after re-padding: padding optional,
/// stray trailing bits ignored (what fails then is the seal, as in the reference).
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Seals and opens the tokens of one worker.
pub(super) struct Sealer {
    cipher: XChaCha20Poly1305,
    pub(super) server_id: String,
}

impl Sealer {
    pub(super) fn new(key: &[u8; 32], server_id: &str) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            server_id: server_id.to_owned(),
        }
    }

    /// `created_at u64 | server_id_len u8 | server_id | session_id 12 | expires_at u64`
    /// (little-endian), sealed as `version | nonce | ciphertext+tag`, base64url.
    pub(super) fn seal(&self, id: &[u8; SESSION_ID_LEN], expires_at: u64, aad: &[u8]) -> String {
        let now = unix_now();
        let server_id = self.server_id.as_bytes();
        let server_id = &server_id[..server_id.len().min(255)];
        let mut plain = Vec::with_capacity(8 + 1 + server_id.len() + SESSION_ID_LEN + 8);
        plain.extend_from_slice(&now.to_le_bytes());
        plain.push(server_id.len() as u8);
        plain.extend_from_slice(server_id);
        plain.extend_from_slice(id);
        plain.extend_from_slice(&expires_at.to_le_bytes());
        URL_SAFE_NO_PAD.encode(seal_raw(&self.cipher, TOKEN_VERSION, &plain, aad))
    }

    /// Opens a token: `(server_id, session_id, expires_at)`.
    pub(super) fn open(
        &self,
        token: &str,
        aad: &[u8],
    ) -> Result<(String, [u8; SESSION_ID_LEN], u64), Box<RpcError>> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(lost("malformed session token"));
        }
        let raw = LENIENT
            .decode(token)
            .map_err(|_| lost("malformed session token"))?;
        let plain = open_raw(&self.cipher, TOKEN_VERSION, &raw, aad)
            .ok_or_else(|| lost("session token verification failed"))?;
        let malformed = || lost("malformed session token");
        let (server_len, rest) = plain
            .get(8..)
            .and_then(<[u8]>::split_first)
            .ok_or_else(malformed)?;
        let server_len = usize::from(*server_len);
        if rest.len() != server_len + SESSION_ID_LEN + 8 {
            return Err(malformed());
        }
        let server_id = String::from_utf8_lossy(&rest[..server_len]).into_owned();
        let mut id = [0u8; SESSION_ID_LEN];
        id.copy_from_slice(&rest[server_len..server_len + SESSION_ID_LEN]);
        let mut expires = [0u8; 8];
        expires.copy_from_slice(&rest[server_len + SESSION_ID_LEN..]);
        let expires_at = u64::from_le_bytes(expires);
        if expires_at < unix_now() {
            return Err(lost("session not found, expired, or principal mismatch"));
        }
        Ok((server_id, id, expires_at))
    }
}

pub(super) fn lost(message: &str) -> Box<RpcError> {
    Box::new(
        RpcError::new("SessionLostError", message)
            .with_code(ErrorCode::Aborted)
            .with_kind("session_lost"),
    )
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The peer-evidence digest an authenticator may attach (`peer_evidence_binding`).
fn evidence(auth: &AuthContext) -> Option<&str> {
    auth.claims
        .get("peer_evidence_binding")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The associated data binding a token to its caller: the reference's state-token AAD
/// at server scope (`vgi_rpc.state.v6`/`v7`, identity tail, `\0\0server`).
pub(super) fn aad(auth: &AuthContext) -> Vec<u8> {
    let binding = evidence(auth);
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(if binding.is_some() {
        b"vgi_rpc.state.v7\x00"
    } else {
        b"vgi_rpc.state.v6\x00"
    });
    if auth.authenticated {
        aad.push(1);
        aad.extend_from_slice(auth.domain.as_deref().unwrap_or_default().as_bytes());
        aad.push(0);
        aad.extend_from_slice(auth.principal.as_deref().unwrap_or_default().as_bytes());
    } else {
        aad.extend_from_slice(b"\x00anonymous");
    }
    if let Some(binding) = binding {
        aad.push(0);
        aad.extend_from_slice(binding.as_bytes());
    }
    aad.extend_from_slice(b"\x00\x00server");
    aad
}

/// The registry's defence-in-depth owner check (the AAD already binds the token).
pub(super) fn principal_key(auth: &AuthContext) -> String {
    let base = if auth.authenticated {
        format!(
            "{}\0{}",
            auth.domain.as_deref().unwrap_or_default(),
            auth.principal.as_deref().unwrap_or_default()
        )
    } else {
        "\0anonymous".to_owned()
    };
    match evidence(auth) {
        Some(binding) => format!("{base}\0{binding}"),
        None => base,
    }
}

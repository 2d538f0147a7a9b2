//! The guards, in the order the contract pins (`IDENTITY_V2_SPEC.md` §4).
//!
//! - Authorization runs before anything touches the subject credential, so a caller who
//!   may not introspect learns nothing about it, not even how long looking took.
//! - The shape test runs on the *trimmed* credential (trimming only adds refusals, and
//!   does not depend on any regex dialect's anchors), while the resolver receives what
//!   the caller actually sent. Rust's `str::trim` trims the Unicode `White_Space`
//!   property, a superset of the contract's floor (U+0009–U+000D, U+0020, U+0085,
//!   U+00A0).
//! - The cap measures the untrimmed credential in UTF-8 bytes.
//! - The JWS matcher is hand-rolled: linear, no backtracking on attacker input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::errors::{introspection_refused, stale_auth, token_unresolved};
use crate::Result;
use crate::server::AuthContext;

/// The largest credential (in UTF-8 bytes) a resolver is ever handed.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Whether `token` may reach a resolver: not blank, at most [`MAX_TOKEN_BYTES`], and not
/// shaped like a JWS (`a.b.c` of base64url segments, the third possibly empty) once
/// trimmed. A JWS is validated locally against a key set, never routed to a resolver.
pub fn is_resolvable_shape(token: &str) -> bool {
    let trimmed = token.trim();
    !trimmed.is_empty() && token.len() <= MAX_TOKEN_BYTES && !is_jws_shaped(trimmed)
}

/// A stable digest of a credential for diagnostics (SHA-256, lowercase hex): enough to
/// correlate one credential's failures without logging the credential.
pub fn token_digest(token: &str) -> String {
    crate::hex::encode(&Sha256::digest(token.as_bytes()))
}

fn is_jws_shaped(s: &str) -> bool {
    let segment = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = s.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => {
            !a.is_empty() && !b.is_empty() && segment(a) && segment(b) && segment(c)
        }
        _ => false,
    }
}

/// `introspect_token`'s credential guard: the uniform refusal for anything a resolver
/// must not see.
pub(crate) fn check_resolvable(token: &str) -> Result<()> {
    if is_resolvable_shape(token) {
        Ok(())
    } else {
        Err(token_unresolved().into())
    }
}

/// The caller must be authenticated and on the allowlist.
pub(crate) fn check_introspector(auth: &AuthContext, allowed: &[String]) -> Result<()> {
    let caller = auth.principal_or_empty();
    if auth.authenticated && !caller.is_empty() && allowed.iter().any(|p| p == caller) {
        Ok(())
    } else {
        Err(introspection_refused("caller is not an introspector").into())
    }
}

/// The caller must have logged in within `max_age` (its `auth_time` claim, seconds since
/// the epoch, as a number or a numeric string).
pub(crate) fn check_freshness(auth: &AuthContext, max_age: Duration) -> Result<()> {
    if !auth.authenticated || auth.principal_or_empty().is_empty() {
        return Err(stale_auth("caller is not authenticated").into());
    }
    let Some(raw) = auth.claims.get("auth_time") else {
        return Err(stale_auth(
            "credential carries no auth_time; only a recently authenticated user may mint a grant",
        )
        .into());
    };
    let auth_time = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|t| t.is_finite())
    .ok_or_else(|| crate::Error::from(stale_auth("credential carries an unusable auth_time")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let age = now - auth_time;
    let ceiling = max_age.as_secs_f64();
    if age > ceiling {
        return Err(stale_auth(&format!(
            "last authentication was {age:.0}s ago, which exceeds the {ceiling:.0}s ceiling for \
             minting a grant; re-authenticate"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWS: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    #[test]
    fn the_jws_trap_trims_the_contract_floor_before_matching() {
        assert!(!is_resolvable_shape(JWS));
        for ws in ['\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}'] {
            for padded in [
                format!("{ws}{JWS}"),
                format!("{JWS}{ws}"),
                format!("{ws}{JWS}{ws}"),
            ] {
                assert!(!is_resolvable_shape(&padded), "{padded:?}");
            }
        }
        assert!(!is_resolvable_shape(&format!("{JWS}\n\n")));
        assert!(
            !is_resolvable_shape("a.b."),
            "an empty signature is still a JWS"
        );
        for ordinary in [
            "opaque-token",
            "two.segments",
            "a.b.c.d",
            "sk_live_abc123",
            ".b.c",
            "a+b.c.d",
        ] {
            assert!(is_resolvable_shape(ordinary), "{ordinary}");
        }
    }

    #[test]
    fn the_cap_counts_utf8_bytes_of_the_untrimmed_credential() {
        assert!(is_resolvable_shape(&"a".repeat(MAX_TOKEN_BYTES)));
        assert!(!is_resolvable_shape(&"a".repeat(MAX_TOKEN_BYTES + 1)));
        assert!(
            !is_resolvable_shape(&"é".repeat(2100)),
            "4200 bytes, 2100 chars"
        );
        assert!(!is_resolvable_shape(&format!("x{}", " ".repeat(9000))));
        for blank in ["", " ", "   ", "\n", "\t\r\n"] {
            assert!(!is_resolvable_shape(blank), "{blank:?}");
        }
    }

    #[test]
    fn authorization_needs_an_authenticated_principal_on_the_list() {
        let allowed = vec!["ops".to_owned()];
        assert!(check_introspector(&AuthContext::authenticated("t", "ops"), &allowed).is_ok());
        let outsider = check_introspector(&AuthContext::authenticated("t", "eve"), &allowed);
        let err = outsider.unwrap_err();
        assert_eq!(
            err.as_rpc().and_then(|e| e.kind.as_deref()),
            Some("introspection_refused")
        );
        assert!(check_introspector(&AuthContext::anonymous(), &allowed).is_err());
    }

    #[test]
    fn freshness_refuses_missing_unusable_and_stale_auth_times() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let max = Duration::from_secs(900);
        let who = |t: Option<Value>| {
            let a = AuthContext::authenticated("t", "alice");
            match t {
                Some(v) => a.with_claim("auth_time", v),
                None => a,
            }
        };
        assert!(check_freshness(&who(Some(Value::from((now - 60.0).to_string()))), max).is_ok());
        assert!(check_freshness(&who(Some(Value::from(now - 60.0))), max).is_ok());
        for bad in [
            None,
            Some(Value::from("not-a-timestamp")),
            Some(Value::from("nan")),
            Some(Value::from(now - 86400.0)),
        ] {
            let e = check_freshness(&who(bad.clone()), max).unwrap_err();
            assert_eq!(
                e.as_rpc().and_then(|e| e.kind.as_deref()),
                Some("stale_auth"),
                "{bad:?}"
            );
        }
        assert!(check_freshness(&AuthContext::anonymous(), max).is_err());
    }

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

use super::token::{TOKEN_VERSION, unix_now};
use super::*;
use crate::transport::http::token::{NONCE_LEN, TAG_LEN};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn sticky(server_id: &str, key: u8) -> Sticky {
    Sticky::new(&StickyOptions::new(), &[key; 32], server_id)
}

fn alice() -> AuthContext {
    AuthContext::authenticated("conformance", "alice")
}

#[test]
fn tokens_round_trip_in_the_documented_envelope() {
    let s = sticky("abc123", 7);
    let id = [9u8; SESSION_ID_LEN];
    let token = s.sealer.seal(&id, unix_now() + 60, &aad(&alice()));
    assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    assert_eq!(raw[0], TOKEN_VERSION);
    // version | nonce | created_at 8 | len 1 | "abc123" | id 12 | expires 8 | tag
    assert_eq!(raw.len(), 1 + NONCE_LEN + 8 + 1 + 6 + 12 + 8 + TAG_LEN);
    let (server_id, opened, _) = s.sealer.open(&token, &aad(&alice())).unwrap();
    assert_eq!((server_id.as_str(), opened), ("abc123", id));
    // Padding a client may add is accepted.
    let padded = format!("{token}{}", "=".repeat((4 - token.len() % 4) % 4));
    assert!(s.sealer.open(&padded, &aad(&alice())).is_ok());
}

#[test]
fn every_bad_token_is_session_lost() {
    let s = sticky("abc123", 7);
    let id = [1u8; SESSION_ID_LEN];
    let token = s.sealer.seal(&id, unix_now() + 60, &aad(&alice()));
    let bob = AuthContext::authenticated("conformance", "bob");
    let other_domain = AuthContext::authenticated("jwt", "alice");
    let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(&raw);
    let cases = [
        (s.sealer.open("not-a-real-token", &aad(&alice())), "garbage"),
        (s.sealer.open(&tampered, &aad(&alice())), "tampered"),
        (s.sealer.open(&token, &aad(&bob)), "other principal"),
        (s.sealer.open(&token, &aad(&other_domain)), "other domain"),
        (
            s.sealer.open(&token, &aad(&AuthContext::anonymous())),
            "anonymous",
        ),
        (
            sticky("abc123", 8).sealer.open(&token, &aad(&alice())),
            "other key",
        ),
        (
            s.sealer.open(&"A".repeat(5000), &aad(&alice())),
            "oversized",
        ),
    ];
    for (result, case) in cases {
        let err = result.expect_err(case);
        assert_eq!(err.error_type, "SessionLostError", "{case}");
        assert_eq!(err.kind.as_deref(), Some("session_lost"), "{case}");
        assert_eq!(err.code, ErrorCode::Aborted, "{case}");
    }
    let expired = s.sealer.seal(&id, unix_now() - 2, &aad(&alice()));
    assert!(s.sealer.open(&expired, &aad(&alice())).is_err(), "expired");
}

#[test]
fn the_aad_matches_the_reference_state_token_binding() {
    assert_eq!(
        aad(&AuthContext::anonymous()),
        b"vgi_rpc.state.v6\x00\x00anonymous\x00\x00server"
    );
    assert_eq!(
        aad(&alice()),
        b"vgi_rpc.state.v6\x00\x01conformance\x00alice\x00\x00server"
    );
}

#[test]
fn the_registry_is_bounded_and_expires() {
    let s = Sticky::new(&StickyOptions::new().max_sessions(2), &[1; 32], "w");
    let value: SessionValue = Arc::new(5_i64);
    let a = s
        .open_session(Arc::clone(&value), Some(Duration::from_secs(60)), "p")
        .unwrap();
    let _b = s
        .open_session(Arc::clone(&value), Some(Duration::ZERO), "p")
        .unwrap();
    // Full, but the expired one makes room.
    let c = s
        .open_session(Arc::clone(&value), Some(Duration::from_secs(60)), "p")
        .unwrap();
    let err = s.open_session(Arc::clone(&value), None, "p").unwrap_err();
    assert_eq!(err.as_rpc().unwrap().code, ErrorCode::ResourceExhausted);
    assert!(s.registry.get(&a, "p").is_some());
    assert!(s.registry.get(&a, "q").is_none(), "another principal");
    assert!(s.registry.remove(&c));
    assert_eq!(s.registry.entries().len(), 1);
    // Only the registry and `value` hold the value: shutdown releases the registry's.
    s.drain.shutdown();
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn draining_refuses_opens_with_server_draining() {
    let options = StickyOptions::new();
    let s = Sticky::new(&options, &[1; 32], "w");
    options.drain_handle().drain();
    let err = s.open_session(Arc::new(1_i64), None, "p").unwrap_err();
    let err = err.as_rpc().unwrap();
    assert_eq!(err.error_type, "ServerDrainingError");
    assert_eq!(err.kind.as_deref(), Some("server_draining"));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    options.drain_handle().resume();
    assert!(s.open_session(Arc::new(1_i64), None, "p").is_ok());
}

//! The reference's sealed-grant vectors (`grant_token_vectors.json`, copied from vgi-rpc
//! 0.52.2): the minter must produce each token byte for byte, the verifier must accept
//! every `accept` case and reject every `reject` case with the right `expired` flag.

use serde_json::Value;

use super::*;

const VECTORS: &str = include_str!("../../tests/fixtures/identity/grant_token_vectors.json");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The verifier configured by `case`, falling back to the file's defaults.
fn verifier(case: &Value, defaults: &Value) -> (GrantKeys, i64) {
    let pick = |key: &str| case.get(key).unwrap_or(&defaults[key]);
    let keys: Vec<[u8; 32]> = strings(pick("verify_keys_b64"))
        .iter()
        .map(|k| GrantKeys::parse_key(k).unwrap())
        .collect();
    let keys = GrantKeys::new(
        &keys,
        pick("audience").as_str().unwrap(),
        pick("max_ttl_seconds").as_i64().unwrap(),
    )
    .unwrap();
    (keys, pick("now").as_i64().unwrap())
}

#[test]
fn the_minter_reproduces_every_vector_byte_for_byte() {
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let cases = file["mint"].as_array().unwrap();
    assert!(cases.len() >= 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key = GrantKeys::parse_key(case["minting_key_b64"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex(&key_id(&key)),
            case["kid_hex"].as_str().unwrap(),
            "{name}: kid"
        );
        let keys = GrantKeys::new(
            &[key],
            case["audience"].as_str().unwrap(),
            case["max_ttl_seconds"].as_i64().unwrap(),
        )
        .unwrap();
        assert_eq!(
            hex(&keys.aad(&key_id(&key))),
            case["aad_hex"].as_str().unwrap(),
            "{name}: aad"
        );
        let c = &case["claims"];
        let claims = GrantClaims {
            issued_at: c["issued_at"].as_i64().unwrap(),
            expires_at: c["expires_at"].as_i64().unwrap(),
            grant_id: c["grant_id"].as_str().unwrap().to_owned(),
            principal: c["principal"].as_str().unwrap().to_owned(),
            purpose: c["purpose"].as_str().unwrap().to_owned(),
            scopes: strings(&c["scopes"]),
        };
        let r = &case["request"];
        let ttl = r["ttl_seconds"]
            .as_i64()
            .unwrap()
            .min(keys.max_ttl_seconds());
        assert_eq!(
            claims.expires_at - claims.issued_at,
            ttl,
            "{name}: lifetime"
        );
        assert_eq!(
            hex(&encode_payload(&claims).unwrap()),
            case["payload_hex"].as_str().unwrap(),
            "{name}: payload"
        );
        let nonce: [u8; NONCE_LEN] = unhex(case["nonce_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let token = seal(&keys, &claims, &nonce).unwrap();
        assert_eq!(token, case["token"].as_str().unwrap(), "{name}: token");
        let opened = verify_at(&keys, &token, claims.issued_at + 1).unwrap();
        assert_eq!(opened, claims, "{name}: round trip");
    }
}

#[test]
fn the_verifier_accepts_and_rejects_as_the_vectors_say() {
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let defaults = &file["defaults"];
    let accept = file["accept"].as_array().unwrap();
    let reject = file["reject"].as_array().unwrap();
    assert!(!accept.is_empty() && reject.len() >= 8);
    for case in accept {
        let (keys, now) = verifier(case, defaults);
        let got = verify_at(&keys, case["token"].as_str().unwrap(), now);
        assert!(got.is_ok(), "{}: {got:?}", case["name"]);
    }
    for case in reject {
        let (keys, now) = verifier(case, defaults);
        let got = verify_at(&keys, case["token"].as_str().unwrap(), now);
        let expired = case["expired"].as_bool().unwrap();
        assert_eq!(got, Err(GrantInvalid { expired }), "{}", case["name"]);
    }
}

#[test]
fn minting_caps_the_lifetime_and_refuses_a_non_positive_one() {
    let keys = GrantKeys::new(&[[7u8; 32]], "aud", 3600).unwrap();
    let grant = mint(&keys, "alice", "nightly", &["read".to_owned()], 10_000_000).unwrap();
    let claims = verify(&keys, &grant.token).unwrap();
    assert_eq!(claims.expires_at - claims.issued_at, 3600);
    assert_eq!(
        (claims.principal.as_str(), claims.grant_id.len()),
        ("alice", 32)
    );
    assert_eq!(grant.expires_at.timestamp(), claims.expires_at);
    assert!(matches!(
        mint(&keys, "alice", "p", &[], 0),
        Err(IdentityFailure::Refused(_))
    ));
    let other = GrantKeys::new(&[[7u8; 32]], "elsewhere", 3600).unwrap();
    assert_eq!(
        verify(&other, &grant.token),
        Err(GrantInvalid { expired: false }),
        "audience is bound"
    );
}

#[test]
fn configuration_refuses_bad_keys() {
    assert!(
        GrantKeys::parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").is_ok(),
        "padding optional"
    );
    assert!(GrantKeys::parse_key("AAECAw==").is_err(), "4 bytes");
    assert!(GrantKeys::parse_key("not base64!").is_err());
    assert!(
        GrantKeys::new(&[[1; 32], [1; 32]], "", 60).is_err(),
        "duplicate"
    );
    assert!(GrantKeys::new(&[[1; 32]], "", 0).is_err(), "ceiling");
    assert!(GrantKeys::new(&[], "", 60).is_err(), "no keys");
}

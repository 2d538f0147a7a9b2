//! Authentication over real sockets: JWTs (static keys and a JWKS served over HTTP),
//! adversarial credentials, and the rule that a refused request never reaches a handler.
//!
//! Every refusal is asserted on status, `VGI-Auth-Reason`, the JSON envelope and
//! `Cache-Control`, and beside it the handler's call counter, which must not move.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use vgi_rpc::client::{Client, ConnectOptions, HttpConnectOptions};
use vgi_rpc::prelude::*;
use vgi_rpc::transport::http::HttpOptions;
use vgi_rpc::transport::http::auth::Jwt;
use vgi_rpc_conformance::identity::{Whoami, WhoamiClient, WhoamiImpl, WhoamiServer};

use crate::raw::{Reply, Worker, post};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "vgi-test";
const WHOAMI: &str = "/conformance.Whoami.v1/whoami";

/// `whoami`, counting how often a request got through to it.
struct Counting(Arc<AtomicUsize>);

impl Whoami for Counting {
    fn whoami(&self, ctx: &CallContext) -> vgi_rpc::Result<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        WhoamiImpl.whoami(ctx)
    }
}

/// An Ed25519 key from a fixed seed, as PKCS#8 DER (what `EncodingKey` takes).
fn ed_key(seed: u8) -> EncodingKey {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&[seed; 32]);
    EncodingKey::from_ed_der(&der)
}

fn public_jwk(seed: u8, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&ed_key(seed), Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600, "auth_time": now() - 30})
}

fn token(seed: u8, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &ed_key(seed)).unwrap()
}

/// A worker authenticating with `jwt`, and its handler's call counter.
fn jwt_worker(jwt: Jwt) -> (Worker, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let builder = vgi_rpc_conformance::server_builder()
        .service(WhoamiServer::new(Counting(Arc::clone(&calls))));
    (
        Worker::start_with(HttpOptions::default().authenticate(jwt), builder),
        calls,
    )
}

fn whoami_as(port: u16, bearer: &str) -> serde_json::Value {
    let http = HttpConnectOptions::default().with_bearer(bearer);
    let url: vgi_rpc::transport::Address = format!("http://127.0.0.1:{port}").parse().unwrap();
    let client = Client::connect_with(&url, ConnectOptions::default().with_http(http)).unwrap();
    let answer = WhoamiClient::from_client(client).whoami().unwrap();
    serde_json::from_str(&answer).unwrap()
}

fn assert_refused(reply: &Reply, reason: &str, what: &str) {
    assert_eq!(
        reply.status,
        401,
        "{what}: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("vgi-auth-reason"), Some(reason), "{what}");
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    let body = reply.json();
    assert_eq!(
        (body["error"].as_str(), body["reason"].as_str()),
        (Some("unauthorized"), Some(reason)),
        "{what}"
    );
    assert!(
        body.get("proxy_hint").is_none(),
        "{what}: no proxy dependency, no proxy note"
    );
}

fn bearer(port: u16, value: &str) -> Reply {
    post(port, WHOAMI, &[("Authorization", value)], b"")
}

#[test]
fn a_valid_jwt_reaches_the_handler_with_its_principal_and_claims() {
    let keys = JwkSet {
        keys: vec![public_jwk(1, "k1")],
    };
    let (worker, calls) = jwt_worker(Jwt::with_keys(ISSUER, AUDIENCE, &keys).unwrap());
    let who = whoami_as(worker.port, &token(1, "k1", &claims("alice")));
    assert_eq!(who["authenticated"], true);
    assert_eq!(
        (who["domain"].as_str(), who["principal"].as_str()),
        (Some("jwt"), Some("alice"))
    );
    assert_eq!(who["claims"]["iss"], ISSUER);
    assert!(
        who["claims"]["auth_time"].is_number(),
        "every claim reaches the handler"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The typed client surfaces a refusal as an authentication error, not a decode error.
    let client = Client::connect(&format!("http://127.0.0.1:{}", worker.port)).unwrap();
    let err = WhoamiClient::from_client(client).whoami().unwrap_err();
    assert!(err.to_string().contains("missing_credential"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn forged_expired_misaddressed_and_malformed_jwts_are_refused_before_any_handler() {
    let keys = JwkSet {
        keys: vec![public_jwk(1, "k1")],
    };
    let (worker, calls) = jwt_worker(Jwt::with_keys(ISSUER, AUDIENCE, &keys).unwrap());
    let port = worker.port;
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 3600);
    let mut elsewhere = claims("alice");
    elsewhere["aud"] = json!("another-service");
    let mut foreign = claims("alice");
    foreign["iss"] = json!("https://evil.example");
    let mut early = claims("alice");
    early["nbf"] = json!(now() + 3600);
    let mut nobody = claims("alice");
    nobody.as_object_mut().unwrap().remove("sub");
    let good = token(1, "k1", &claims("alice"));
    // alg none: an unsigned token with the trusted kid.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims("alice").to_string())
    );
    // HS/RS confusion: HS256 keyed with the public key the server trusts.
    let public = URL_SAFE_NO_PAD
        .decode(
            serde_json::to_value(public_jwk(1, "k1")).unwrap()["x"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = encode(
        &hs,
        &claims("alice"),
        &EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", token(1, "k1", &expired), "expired_credential"),
        (
            "wrong audience",
            token(1, "k1", &elsewhere),
            "invalid_credential",
        ),
        (
            "wrong issuer",
            token(1, "k1", &foreign),
            "invalid_credential",
        ),
        (
            "not yet valid",
            token(1, "k1", &early),
            "invalid_credential",
        ),
        ("no subject", token(1, "k1", &nobody), "invalid_credential"),
        (
            "forged signature",
            token(2, "k1", &claims("alice")),
            "invalid_credential",
        ),
        (
            "unknown kid",
            token(1, "k9", &claims("alice")),
            "invalid_credential",
        ),
        ("alg none", none, "invalid_credential"),
        ("HS/RS confusion", confused, "invalid_credential"),
        ("garbage", "not.a.jwt".into(), "invalid_credential"),
        ("oversized", "a".repeat(60_000), "invalid_credential"),
    ];
    for (what, credential, reason) in &cases {
        assert_refused(&bearer(port, &format!("Bearer {credential}")), reason, what);
    }
    assert_refused(
        &post(port, WHOAMI, &[], b""),
        "missing_credential",
        "no credential",
    );
    assert_refused(
        &bearer(port, &format!("Basic {good}")),
        "invalid_credential",
        "not a bearer",
    );
    let twice = format!("Bearer {good}");
    let duplicated = post(
        port,
        WHOAMI,
        &[("Authorization", &twice), ("Authorization", &twice)],
        b"",
    );
    assert_refused(&duplicated, "invalid_credential", "duplicated credentials");
    let html = post(port, WHOAMI, &[("Accept", "text/html")], b"");
    assert_eq!(
        (html.status, html.header("vgi-auth-reason")),
        (401, Some("missing_credential"))
    );
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing refused reached the handler"
    );
    // The health probe stays open, and the worker still serves a good token.
    assert_eq!(crate::raw::get(port, "GET", "/health").status, 200);
    assert_eq!(whoami_as(port, &good)["principal"], "alice");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Serves `documents` in turn (the last one repeatedly) as a JWKS; counts the fetches.
fn jwks_server(documents: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&fetches);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let n = count.fetch_add(1, Ordering::SeqCst);
            let body = &documents[n.min(documents.len() - 1)];
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, fetches)
}

#[test]
fn a_jwks_is_fetched_once_and_refetched_for_a_rotated_key_at_most_every_interval() {
    let one = serde_json::to_string(&JwkSet {
        keys: vec![public_jwk(1, "k1")],
    })
    .unwrap();
    let two = serde_json::to_string(&JwkSet {
        keys: vec![public_jwk(1, "k1"), public_jwk(3, "k2")],
    })
    .unwrap();
    let rotated = token(3, "k2", &claims("carol"));
    // Default interval: a key id the cache lacks does not refetch right after a fetch.
    let (url, fetches) = jwks_server(vec![one.clone(), two.clone()]);
    let (worker, _) = jwt_worker(Jwt::with_jwks_uri(ISSUER, AUDIENCE, url));
    assert_eq!(
        whoami_as(worker.port, &token(1, "k1", &claims("alice")))["principal"],
        "alice"
    );
    assert_eq!(
        whoami_as(worker.port, &token(1, "k1", &claims("bob")))["principal"],
        "bob"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the key set is cached");
    assert_refused(
        &bearer(worker.port, &format!("Bearer {rotated}")),
        "invalid_credential",
        "k2 early",
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "refetches are rate limited"
    );
    // No interval: the unknown key id refetches, and the rotated key is accepted.
    let (url, fetches) = jwks_server(vec![one, two]);
    let (worker, _) = jwt_worker(
        Jwt::with_jwks_uri(ISSUER, AUDIENCE, url).min_refresh(std::time::Duration::ZERO),
    );
    assert_eq!(
        whoami_as(worker.port, &token(1, "k1", &claims("alice")))["principal"],
        "alice"
    );
    assert_eq!(whoami_as(worker.port, &rotated)["principal"], "carol");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one fetch, one refetch for k2"
    );
}

#[test]
fn an_unreachable_jwks_is_503_with_retry_after_not_401() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let (worker, calls) = jwt_worker(Jwt::with_jwks_uri(ISSUER, AUDIENCE, url));
    let reply = bearer(
        worker.port,
        &format!("Bearer {}", token(1, "k1", &claims("alice"))),
    );
    assert_eq!(
        reply.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert!(
        reply.header("vgi-auth-reason").is_none(),
        "an outage is not a rejection"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

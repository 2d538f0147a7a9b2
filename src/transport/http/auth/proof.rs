//! Proxy proof (`docs/proxy-proof-spec.md`): refuse any request that did not come through
//! a trusted proxy, while the end user's own credential still rides in `Authorization`.
//!
//! The proxy mints `VGI-Proxy-Proof: v1.<kid>.<ts>.<nonce>.<mac>`, an HMAC-SHA256 over a
//! NUL-framed string that ends in this worker's own origin id (never transmitted, so a
//! proof for one worker is invalid at every other). The worker checks shape and charsets
//! before decoding anything, the key id, a two-sided time window, the MAC in constant
//! time, and a bounded nonce cache against replay. It proves the hop, never the user: a
//! verified proof adds attribution to the claims (`vgi_proxy_proof`), while the domain and
//! principal stay the inner authenticator's. A proof is a precondition ANDed with that
//! authenticator ([`ProxyProof::gate`]), never an alternative in a [`Chain`](super::Chain).
//! Every failure is one answer on the wire (401 `proxy_required`); the reason code
//! (`no_proof`, `malformed`, `unknown_kid`, `expired`, `not_yet_valid`, `bad_mac`,
//! `replayed`) goes to the log only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::{AuthContext, AuthError, AuthReason, AuthRequest, Authenticate};
use crate::{Error, Result};

/// The request header carrying the proof.
pub const PROOF_HEADER: &str = "vgi-proxy-proof";
/// The claim holding a request's proof attribution.
pub const CLAIMS_KEY: &str = "vgi_proxy_proof";
const MAX_HEADER_BYTES: usize = 512;
const DOMAIN: &[u8] = b"vgi.proxy.proof.v1";

/// Whether a failed proof denies the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofMode {
    /// Verified and recorded, never denies: the rollout lever.
    Allow,
    /// A request without a valid proof is refused 401.
    Require,
}

/// A worker's proof configuration: its origin id, the proxies' secrets by key id, the
/// time window and the replay cache.
pub struct ProxyProof {
    mode: ProofMode,
    origin_id: String,
    secrets: HashMap<String, (String, [u8; 32])>,
    skew: u64,
    replay: Option<Mutex<NonceCache>>,
}

impl ProxyProof {
    /// A gate for this worker (`origin_id`) accepting proofs from `secrets`
    /// (`kid:64-hex,kid:64-hex`, each kid its own label). Defaults: 30-second skew, a
    /// replay cache of 100 000 nonces.
    ///
    /// # Errors
    /// A malformed origin id, kid or secret, or no secrets: the worker must not start
    /// serving something weaker than its operator configured.
    pub fn new(mode: ProofMode, origin_id: &str, secrets: &str) -> Result<Self> {
        if !origin_charset(origin_id) {
            return Err(Error::Config(format!(
                "proxy proof: origin id {origin_id:?} has characters outside [A-Za-z0-9._:/-]{{1,255}}"
            )));
        }
        let mut map = HashMap::new();
        for item in secrets.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kid, hex) = item.split_once(':').ok_or_else(|| {
                Error::Config(format!("proxy proof: expected kid:hex, got {item:?}"))
            })?;
            if !kid_charset(kid) {
                return Err(Error::Config(format!(
                    "proxy proof: kid {kid:?} must match [A-Za-z0-9_-]{{1,64}}"
                )));
            }
            let secret = crate::hex::decode_array::<32>(hex).ok_or_else(|| {
                Error::Config(format!(
                    "proxy proof: the secret of {kid:?} is not 64 hex digits"
                ))
            })?;
            map.insert(kid.to_owned(), (kid.to_owned(), secret));
        }
        if map.is_empty() {
            return Err(Error::Config("proxy proof: no secrets configured".into()));
        }
        Ok(ProxyProof {
            mode,
            origin_id: origin_id.to_owned(),
            secrets: map,
            skew: 30,
            replay: Some(Mutex::new(NonceCache::new(30, 100_000))),
        })
    }

    /// The acceptance half-window (default 30 s); the replay cache keeps nonces as long.
    #[must_use]
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew.as_secs();
        if let Some(cache) = &mut self.replay {
            let capacity = cache.get_mut().map_or(100_000, |c| c.capacity);
            self.replay = Some(Mutex::new(NonceCache::new(self.skew, capacity)));
        }
        self
    }

    /// Turns nonce replay rejection off (the window alone then bounds replay) or on with
    /// a capacity.
    #[must_use]
    pub fn replay_cache(mut self, capacity: Option<usize>) -> Self {
        self.replay = capacity.map(|c| Mutex::new(NonceCache::new(self.skew, c)));
        self
    }

    /// The mode.
    pub fn mode(&self) -> ProofMode {
        self.mode
    }

    /// This gate ANDed with `inner` (the user's authentication; `None`: the proof alone
    /// admits, "only my proxy may call this worker").
    pub fn gate(self, inner: Option<Arc<dyn Authenticate>>) -> RequireProof {
        Arc::new(self).shared_gate(inner)
    }

    /// [`ProxyProof::gate`] for a shared configuration (one replay cache for all).
    pub fn shared_gate(self: Arc<Self>, inner: Option<Arc<dyn Authenticate>>) -> RequireProof {
        RequireProof { proof: self, inner }
    }

    fn verify(
        &self,
        request: &AuthRequest<'_>,
        now: u64,
    ) -> std::result::Result<Map<String, Value>, &'static str> {
        let mut values = request.headers.get_all(PROOF_HEADER).iter();
        let raw = match (values.next(), values.next()) {
            (None, _) => return Err("no_proof"),
            (Some(_), Some(_)) => return Err("malformed"),
            (Some(v), None) => v.to_str().map_err(|_| "malformed")?,
        };
        if raw.is_empty() || raw.len() > MAX_HEADER_BYTES || raw.contains(',') {
            return Err("malformed");
        }
        let parts: Vec<&str> = raw.split('.').collect();
        let [version, kid, ts, nonce, mac] = parts[..] else {
            return Err("malformed");
        };
        let b64 = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let ts_ok = (1..=20).contains(&ts.len()) && ts.bytes().all(|b| b.is_ascii_digit());
        if version != "v1" || !kid_charset(kid) || !ts_ok || !b64(nonce, 22) || !b64(mac, 43) {
            return Err("malformed");
        }
        let (label, secret) = self.secrets.get(kid).ok_or("unknown_kid")?;
        let ts: u128 = ts.parse().map_err(|_| "malformed")?;
        let now = u128::from(now);
        let skew = u128::from(self.skew);
        if now > ts && now - ts > skew {
            return Err("expired");
        }
        if ts > now && ts - now > skew {
            return Err("not_yet_valid");
        }
        let received = URL_SAFE_NO_PAD.decode(mac).map_err(|_| "malformed")?;
        let mut hmac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| "malformed")?;
        hmac.update(&canonical(kid, &ts.to_string(), nonce, &self.origin_id));
        // Constant-time (`Mac::verify_slice`); the kid is public, so choosing the one
        // candidate secret by it is a safe branch.
        hmac.verify_slice(&received).map_err(|_| "bad_mac")?;
        if let Some(cache) = &self.replay {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            if !cache.check_and_add(nonce) {
                return Err("replayed");
            }
        }
        Ok(attribution(&[
            ("verified", "true"),
            ("proxy", label),
            ("kid", kid),
            ("origin_id", &self.origin_id),
            ("reason", "ok"),
        ]))
    }
}

/// A [`ProxyProof`] ANDed with the user's authentication ([`ProxyProof::gate`]).
pub struct RequireProof {
    proof: Arc<ProxyProof>,
    inner: Option<Arc<dyn Authenticate>>,
}

impl Authenticate for RequireProof {
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> std::result::Result<AuthContext, AuthError> {
        let proof = self.proof.verify(request, unix_now());
        let claims = match proof {
            Ok(claims) => claims,
            Err(reason) => {
                tracing::warn!(remote = ?request.remote, proof_reason = reason, "proxy proof rejected");
                if self.proof.mode == ProofMode::Require {
                    return Err(AuthError::denied(
                        AuthReason::ProxyRequired,
                        format!("proxy proof rejected: {reason}"),
                    ));
                }
                attribution(&[
                    ("verified", "false"),
                    ("proxy", ""),
                    ("kid", ""),
                    ("origin_id", &self.proof.origin_id),
                    ("reason", reason),
                ])
            }
        };
        let verified = claims.get("verified").and_then(Value::as_str) == Some("true");
        let mut ctx = match &self.inner {
            Some(inner) => inner.authenticate(request)?,
            None if verified => {
                let proxy = claims
                    .get("proxy")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                AuthContext::authenticated(CLAIMS_KEY, proxy)
            }
            None => AuthContext::anonymous(),
        };
        ctx.claims
            .insert(CLAIMS_KEY.to_owned(), Value::Object(claims));
        Ok(ctx)
    }

    fn proxy_headers(&self) -> Vec<String> {
        let mut headers = self
            .inner
            .as_ref()
            .map(|i| i.proxy_headers())
            .unwrap_or_default();
        if self.proof.mode == ProofMode::Require {
            headers.insert(0, "VGI-Proxy-Proof".to_owned());
        }
        headers
    }
}

/// Mints a proof, as a proxy does: `secret` under `kid`, for the worker `origin_id`, at
/// `now` (Unix seconds) with a 16-byte `nonce`.
pub fn mint_proof(
    secret: &[u8; 32],
    kid: &str,
    origin_id: &str,
    now: u64,
    nonce: &[u8; 16],
) -> String {
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let ts = now.to_string();
    let mut hmac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    hmac.update(&canonical(kid, &ts, &nonce, origin_id));
    let mac = URL_SAFE_NO_PAD.encode(hmac.finalize().into_bytes());
    format!("v1.{kid}.{ts}.{nonce}.{mac}")
}

fn canonical(kid: &str, ts: &str, nonce: &str, origin_id: &str) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(DOMAIN.len() + kid.len() + ts.len() + nonce.len() + origin_id.len() + 4);
    for (i, part) in [
        DOMAIN,
        kid.as_bytes(),
        ts.as_bytes(),
        nonce.as_bytes(),
        origin_id.as_bytes(),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part);
    }
    out
}

fn attribution(fields: &[(&str, &str)]) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

fn kid_charset(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn origin_charset(origin: &str) -> bool {
    (1..=255).contains(&origin.len())
        && origin
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Nonces seen within the window, bounded: on overflow the oldest goes (a burst must not
/// become an outage; the time window still bounds replay).
struct NonceCache {
    ttl: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl NonceCache {
    fn new(ttl_seconds: u64, capacity: usize) -> Self {
        NonceCache {
            ttl: Duration::from_secs(ttl_seconds),
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// `false` when `nonce` was already seen within the window.
    fn check_and_add(&mut self, nonce: &str) -> bool {
        let now = Instant::now();
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) <= self.ttl && self.order.len() < self.capacity {
                break;
            }
            if let Some((at, old)) = self.order.pop_front()
                && self.seen.get(&old) == Some(&at)
            {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_owned(), now);
        self.order.push_back((now, nonce.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;

    const SECRET: [u8; 32] = [0x11; 32];

    fn check(
        proof: &ProxyProof,
        values: &[&str],
        now: u64,
    ) -> std::result::Result<Map<String, Value>, &'static str> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(PROOF_HEADER, HeaderValue::from_str(v).unwrap());
        }
        let (method, uri) = (Method::POST, Uri::from_static("/p/m"));
        proof.verify(&AuthRequest::new(&method, &uri, &headers, None), now)
    }

    fn gate() -> ProxyProof {
        ProxyProof::new(
            ProofMode::Require,
            "origin",
            &format!("kid:{}", "11".repeat(32)),
        )
        .unwrap()
    }

    #[test]
    fn the_verifier_reports_each_reason_in_the_specified_order() {
        let proof = gate();
        let now = 1_800_000_000;
        let good = mint_proof(&SECRET, "kid", "origin", now, &[7; 16]);
        assert_eq!(check(&proof, &[&good], now).unwrap()["proxy"], "kid");
        assert_eq!(check(&proof, &[&good], now), Err("replayed"));
        assert_eq!(check(&proof, &[], now), Err("no_proof"));
        let fresh = mint_proof(&SECRET, "kid", "origin", now, &[8; 16]);
        assert_eq!(
            check(&proof, &[&fresh, &fresh], now),
            Err("malformed"),
            "two headers"
        );
        assert_eq!(
            check(
                &proof,
                &[&"v1.kid.1.AAAAAAAAAAAAAAAAAAAAAA.".repeat(20)],
                now
            ),
            Err("malformed"),
            "over 512 bytes"
        );
        assert_eq!(
            check(&proof, &[&fresh.replace("v1.", "v2.")], now),
            Err("malformed")
        );
        assert_eq!(
            check(
                &proof,
                &[&mint_proof(&SECRET, "other", "origin", now, &[9; 16])],
                now
            ),
            Err("unknown_kid")
        );
        assert_eq!(
            check(
                &proof,
                &[&mint_proof(&SECRET, "kid", "origin", now - 31, &[10; 16])],
                now
            ),
            Err("expired")
        );
        assert_eq!(
            check(
                &proof,
                &[&mint_proof(&SECRET, "kid", "origin", now + 31, &[11; 16])],
                now
            ),
            Err("not_yet_valid")
        );
        assert_eq!(
            check(
                &proof,
                &[&mint_proof(&SECRET, "kid", "elsewhere", now, &[12; 16])],
                now
            ),
            Err("bad_mac")
        );
        assert_eq!(
            check(
                &proof,
                &[&mint_proof(&[0x22; 32], "kid", "origin", now, &[13; 16])],
                now
            ),
            Err("bad_mac")
        );
        let huge_ts =
            "v1.kid.99999999999999999999.AAAAAAAAAAAAAAAAAAAAAA.".to_owned() + &"A".repeat(43);
        assert_eq!(
            check(&proof, &[&huge_ts], now),
            Err("not_yet_valid"),
            "20 digits do not overflow"
        );
    }

    #[test]
    fn the_mac_matches_the_reference_framing() {
        // kid "conformance-proxy", origin "conformance-origin", secret 0x11*32, ts 1700000000,
        // nonce 16 zero bytes: the token the reference's mint_proof produces.
        let token = mint_proof(
            &SECRET,
            "conformance-proxy",
            "conformance-origin",
            1_700_000_000,
            &[0; 16],
        );
        assert_eq!(token, REFERENCE_TOKEN);
    }

    /// `vgi_rpc.http.mint_proof(bytes.fromhex("11"*32), "conformance-proxy",
    /// "conformance-origin", now=1700000000, nonce="AAAAAAAAAAAAAAAAAAAAAA")`.
    const REFERENCE_TOKEN: &str = "v1.conformance-proxy.1700000000.AAAAAAAAAAAAAAAAAAAAAA.pbkCqAOjBHRZQEdGllYzePRph5t7AfpPDYCuvS5JqL8";

    #[test]
    fn configuration_fails_closed() {
        assert!(ProxyProof::new(ProofMode::Require, "origin", "").is_err());
        assert!(ProxyProof::new(ProofMode::Require, "origin", "kid:abcd").is_err());
        assert!(
            ProxyProof::new(
                ProofMode::Require,
                "origin",
                &format!("bad.kid:{}", "11".repeat(32))
            )
            .is_err()
        );
        assert!(
            ProxyProof::new(
                ProofMode::Require,
                "bad origin",
                &format!("kid:{}", "11".repeat(32))
            )
            .is_err()
        );
    }

    #[test]
    fn the_nonce_cache_is_bounded() {
        let mut cache = NonceCache::new(30, 2);
        assert!(cache.check_and_add("a") && cache.check_and_add("b") && cache.check_and_add("c"));
        assert!(cache.seen.len() <= 2, "the oldest was evicted");
        assert!(!cache.check_and_add("c"));
    }
}

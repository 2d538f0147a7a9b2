//! The local server's signed URLs: `GET` URLs with an expiry and an HMAC-SHA256 over
//! the object's path and that expiry, under a key drawn when the server starts. The
//! signing half is an `object_store` [`Signer`], so [`LocalStorage`](super::LocalStorage)
//! takes the same upload-then-sign path as S3; the checking half is the server's.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::object_store::path::Path;
use ::object_store::signer::Signer;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Method, Url};
use sha2::Sha256;

/// Query parameter carrying a URL's expiry (Unix seconds).
pub(crate) const EXPIRES: &str = "X-Vgi-Expires";
/// Query parameter carrying a URL's signature (hex HMAC-SHA256).
pub(crate) const SIGNATURE: &str = "X-Vgi-Signature";

/// The signing half of the local server: its address and key.
#[derive(Clone)]
pub(crate) struct UrlKey {
    pub(crate) base: String,
    key: [u8; 32],
}

impl fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlKey")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl UrlKey {
    pub(crate) fn new(base: String, key: [u8; 32]) -> Self {
        UrlKey { base, key }
    }

    fn mac(&self, path: &str, expires: u64) -> Hmac<Sha256> {
        // A 32-byte key always fits HMAC-SHA256.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The signature of `path` (no leading `/`) until `expires`.
    fn sign(&self, path: &str, expires: u64) -> String {
        crate::hex::encode(&self.mac(path, expires).finalize().into_bytes())
    }

    /// Whether `signature` is this key's for `path` and `expires` (constant time).
    pub(crate) fn verify(&self, path: &str, expires: u64, signature: &str) -> bool {
        crate::hex::decode_array::<32>(signature)
            .is_some_and(|sig| self.mac(path, expires).verify_slice(&sig).is_ok())
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl Signer for UrlKey {
    async fn signed_url(
        &self,
        method: Method,
        path: &Path,
        expires_in: Duration,
    ) -> ::object_store::Result<Url> {
        if method != Method::GET {
            return Err(::object_store::Error::NotSupported {
                source: format!("the local server signs GET URLs only, not {method}").into(),
            });
        }
        let expires = unix_now().saturating_add(expires_in.as_secs().max(1));
        let path = path.as_ref();
        let url = format!(
            "{}/{path}?{EXPIRES}={expires}&{SIGNATURE}={}",
            self.base,
            self.sign(path, expires)
        );
        Url::parse(&url).map_err(|e| ::object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_path_and_expiry() {
        let key = UrlKey::new("http://127.0.0.1:1".into(), [7; 32]);
        let sig = key.sign("vgi-rpc/a.arrow", 100);
        assert!(key.verify("vgi-rpc/a.arrow", 100, &sig));
        assert!(!key.verify("vgi-rpc/b.arrow", 100, &sig));
        assert!(!key.verify("vgi-rpc/a.arrow", 101, &sig));
        assert!(!key.verify("vgi-rpc/a.arrow", 100, "00"));
        let other = UrlKey::new("http://127.0.0.1:1".into(), [8; 32]);
        assert!(!other.verify("vgi-rpc/a.arrow", 100, &sig));
    }
}

//! [`LocalStorage`]: external storage in a local directory, for examples, tests and
//! single-machine deployments, with no cloud account.
//!
//! Objects are written through `object_store`'s `LocalFileSystem` (the same
//! [`ObjectStoreStorage`] path as S3), and readers fetch them from a small built-in
//! HTTP/1.1 server on the loopback interface (`local_server`) that signs and checks its
//! URLs as an object store does: `GET`/`HEAD` only, an expiry, and an HMAC-SHA256 over
//! the path and expiry with a key drawn at start. Why a server and not `file://` URLs:
//! a pointer's URL is the peer's input, and a reader that opened local paths from it
//! would hand the peer its file system; every reader, ours and the Python reference's,
//! already fetches `http(s)` under a URL policy, so a loopback server needs no new trust
//! and no new fetch path (range requests included). The server lives as long as the
//! last clone of its [`LocalStorage`].

use std::fmt;
use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::object_store::local::LocalFileSystem;
use ::object_store::path::Path;
use ::object_store::signer::Signer;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Method, Url};
use sha2::Sha256;

use super::Storage;
use super::local_server::{self, Server};
use super::store::ObjectStoreStorage;
use crate::Result;

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

/// External storage in a local directory, served to readers by a loopback HTTP server;
/// see the [module docs](self).
///
/// ```no_run
/// use std::sync::Arc;
/// use vgi_rpc::external::{ExternalConfig, LocalStorage, UrlPolicy};
/// # fn main() -> vgi_rpc::Result<()> {
/// let storage = LocalStorage::start("/tmp/vgi-objects")?;
/// let config = ExternalConfig::new()
///     .with_storage(Arc::new(storage))
///     .with_url_policy(UrlPolicy::loopback());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LocalStorage {
    inner: ObjectStoreStorage,
    server: Arc<Server>,
}

impl LocalStorage {
    /// Stores objects under `dir` (created if missing) and starts the server on a free
    /// loopback port.
    ///
    /// # Errors
    /// The directory cannot be created, or the server cannot bind.
    pub fn start(dir: impl AsRef<FsPath>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let root: PathBuf = dir.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| io::Error::other(format!("{}: {e}", root.display())))?;
        let server = Arc::new(local_server::start(root)?);
        let inner = ObjectStoreStorage::with_signer(Arc::new(store), Arc::new(server.key()))
            .without_encoding_attribute();
        Ok(LocalStorage { inner, server })
    }

    /// Sets how long URLs stay valid (default one hour).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.inner = self.inner.with_ttl(ttl);
        self
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.server.key_ref().base
    }
}

impl Storage for LocalStorage {
    fn put(&self, object: Vec<u8>, content_encoding: Option<&str>) -> Result<String> {
        self.inner.put(object, content_encoding)
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

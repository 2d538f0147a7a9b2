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

use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::object_store::local::LocalFileSystem;

use super::Storage;
use super::local_server::{self, Server};
use super::store::ObjectStoreStorage;
use crate::Result;

/// External storage in a local directory, served to readers by a loopback HTTP server;
/// see the [module docs](crate::external).
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

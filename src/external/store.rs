//! [`ObjectStoreStorage`]: a [`Storage`] over any `object_store` backend that can sign
//! URLs (S3 and every S3-API server; GCS and Azure with their features), as the
//! reference's `S3Storage`: each object is uploaded under `{prefix}{random}.arrow` (or
//! `.arrow.zst` / `.arrow.gz` when compressed, with its `Content-Encoding`), and the
//! reader gets a signed GET URL valid for the configured TTL (default one hour, the
//! reference's `presign_expiry_seconds`).
//!
//! `object_store` is async; [`Storage::put`] is called from connection threads (and from
//! the HTTP transport's blocking tasks). Uploads run on one small process-wide tokio
//! runtime and the caller waits on a channel, so `put` works from any thread, inside a
//! tokio runtime or not, without `block_on`'s "runtime within a runtime" panic.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use ::object_store::path::Path;
use ::object_store::signer::Signer;
use ::object_store::{Attribute, Attributes, ObjectStore, PutOptions, PutPayload};
use reqwest::Method;

use super::Storage;
use crate::wire::external::redact_url;
use crate::{Error, ExternalFailure, Result};

/// A [`Storage`] over an `object_store` backend and a URL [`Signer`]; see the
/// [module docs](crate::external).
///
/// ```no_run
/// use std::sync::Arc;
/// use vgi_rpc::external::object_store::aws::AmazonS3Builder;
/// use vgi_rpc::external::{ExternalConfig, ObjectStoreStorage};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let s3 = AmazonS3Builder::from_env().with_bucket_name("my-bucket").build()?;
/// let storage = ObjectStoreStorage::new(Arc::new(s3))
///     .with_prefix("results/")
///     .with_ttl(std::time::Duration::from_secs(900));
/// let config = ExternalConfig::new().with_storage(Arc::new(storage));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ObjectStoreStorage {
    store: Arc<dyn ObjectStore>,
    signer: Arc<dyn Signer>,
    prefix: String,
    ttl: Duration,
    encoding_attribute: bool,
}

impl fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreStorage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreStorage {
    /// Storage in `store`, which also signs the GET URLs (`AmazonS3`,
    /// `GoogleCloudStorage`, `MicrosoftAzure`).
    pub fn new<S: ObjectStore + Signer>(store: Arc<S>) -> Self {
        Self::with_signer(store.clone(), store)
    }

    /// Storage in `store`, with URLs signed by `signer` (a store that cannot sign, such
    /// as a local directory, behind a server that checks the signatures).
    pub fn with_signer(store: Arc<dyn ObjectStore>, signer: Arc<dyn Signer>) -> Self {
        ObjectStoreStorage {
            store,
            signer,
            prefix: "vgi-rpc/".to_owned(),
            ttl: Duration::from_secs(3600),
            encoding_attribute: true,
        }
    }

    /// The key prefix of uploaded objects (default `vgi-rpc/`, as the reference's):
    /// give the bucket a lifecycle rule that expires it, vgi-rpc never deletes.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long the signed GET URLs stay valid (default one hour).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The TTL of signed URLs.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores no `Content-Encoding` attribute (for stores that refuse attributes, like
    /// the local file system); the encoding is then told by the key's suffix.
    #[must_use]
    pub(crate) fn without_encoding_attribute(mut self) -> Self {
        self.encoding_attribute = false;
        self
    }
}

fn upload_error(what: impl fmt::Display) -> Error {
    Error::external(ExternalFailure::Upload, what)
}

/// The key suffix of an object stored with `encoding`, as the reference names them.
pub(crate) fn suffix(encoding: Option<&str>) -> &'static str {
    match encoding {
        Some("zstd") => ".arrow.zst",
        Some("gzip") => ".arrow.gz",
        _ => ".arrow",
    }
}

/// `N` random bytes from the OS (object names must not be guessable, and the local
/// server's signing key is secret).
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes)
}

impl Storage for ObjectStoreStorage {
    fn put(&self, object: Vec<u8>, content_encoding: Option<&str>) -> Result<String> {
        let key = format!(
            "{}{}{}",
            self.prefix,
            crate::hex::encode(
                &random_bytes::<16>().map_err(|e| upload_error(format!("no random name: {e}")))?
            ),
            suffix(content_encoding)
        );
        let path = Path::parse(&key)
            .map_err(|e| upload_error(format!("invalid object key {key:?}: {e}")))?;
        let mut attributes = Attributes::new();
        if self.encoding_attribute {
            attributes.insert(Attribute::ContentType, "application/octet-stream".into());
            if let Some(encoding) = content_encoding {
                attributes.insert(Attribute::ContentEncoding, encoding.to_owned().into());
            }
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let (store, signer, ttl) = (self.store.clone(), self.signer.clone(), self.ttl);
        let url = run(async move {
            store
                .put_opts(&path, PutPayload::from(object), options)
                .await
                .map_err(|e| upload_error(format!("upload of {path} to {store} failed: {e}")))?;
            signer
                .signed_url(Method::GET, &path, ttl)
                .await
                .map_err(|e| upload_error(format!("cannot sign a GET URL for {path}: {e}")))
        })??;
        tracing::debug!(url = %redact_url(url.as_str()), "external object stored");
        Ok(url.into())
    }
}

/// The process-wide runtime behind every [`ObjectStoreStorage`] (created on first use,
/// never dropped, so dropping a storage inside an async context cannot panic).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("vgi-rpc-object-store")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| upload_error(format!("cannot start the object-store runtime: {e}")))
}

/// Runs `future` on the object-store runtime and waits for its answer on this thread.
pub(crate) fn run<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> Result<T> {
    let (answer, answered) = mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = answer.send(future.await);
    });
    answered
        .recv()
        .map_err(|_| upload_error("the object-store task ended without an answer"))
}

//! External storage: batches too big for the wire travel through object storage, and a
//! zero-row pointer batch (`vgi_rpc.location`, `vgi_rpc.location.sha256`) takes their
//! place on the wire (the protocol's "external location").
//!
//! The engines only know the sans-IO seam, [`ExternalLocation`](crate::wire::ExternalLocation)
//! (`wire::external`: which batches go out, the object's layout, the reader's checks).
//! This module is the I/O behind it:
//!
//! - [`Storage`]: where objects go. One method, `put`, returning a URL a reader can GET
//!   (for object stores, a signed GET URL with a TTL), so an `object_store`-backed
//!   implementation fits as well as [`FakeStorage`], the reference's HTTP test service.
//! - [`ObjectStoreStorage`] (feature `object-store`): any `object_store` backend that
//!   signs URLs — S3 and S3-API servers, GCS and Azure with `object-store-gcp` /
//!   `object-store-azure` — answering signed GET URLs with a TTL; and [`LocalStorage`],
//!   a directory served by a built-in loopback HTTP server, for examples and tests.
//! - [`ExternalConfig`]: the [`ExternalLocation`](crate::wire::ExternalLocation) the
//!   engines use: an optional storage and threshold for the writer (with optional
//!   compression), and the reader's fetcher — a [`UrlPolicy`] checked on the first URL and
//!   on every redirect, a HEAD (or a one-byte range GET for pre-signed URLs) then one GET,
//!   or parallel range GETs for objects from 64 MiB, encoded and decoded byte caps, decompression by the
//!   response's `Content-Encoding`, bounded retries, and error messages that never carry a
//!   URL's query, userinfo or fragment (signed URLs carry credentials there).
//!
//! Install it on a client with `ConnectOptions::with_external` and on a server with
//! `ServerBuilder::external`:
//!
//! ```no_run
//! use std::sync::Arc;
//! use vgi_rpc::external::{ExternalConfig, FakeStorage, UrlPolicy};
//! let config = ExternalConfig::new()
//!     .with_storage(Arc::new(FakeStorage::new("http://127.0.0.1:9000")))
//!     .with_threshold(1 << 20)
//!     .with_url_policy(UrlPolicy::loopback());
//! let options = vgi_rpc::client::ConnectOptions::default().with_external(Arc::new(config));
//! ```

mod config;
mod fake;
mod fetch;
#[cfg(feature = "object-store")]
mod local;
#[cfg(feature = "object-store")]
mod local_server;
mod options;
mod policy;
mod range;
mod request;
#[cfg(feature = "object-store")]
mod signed;
#[cfg(feature = "object-store")]
mod store;

/// The `object_store` crate this module builds on (feature `object-store`): build an
/// `AmazonS3` (or, with their features, GCS or Azure) store with the same version.
#[cfg(feature = "object-store")]
pub use ::object_store;
pub use config::{Compression, ExternalConfig};
pub use fake::FakeStorage;
#[cfg(feature = "object-store")]
pub use local::LocalStorage;
pub use options::FetchOptions;
pub use policy::UrlPolicy;
#[cfg(feature = "object-store")]
pub use store::ObjectStoreStorage;

use std::fmt;

use crate::Result;

/// Where externalized objects are stored.
///
/// Implementations must be thread-safe: a server uploads from every connection's thread.
/// Objects are never deleted by vgi-rpc; give the bucket a lifecycle rule.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Stores `object` (an Arrow IPC stream, already encoded with `content_encoding`
    /// when that is `Some`, e.g. `"zstd"`; the store must serve it back with that
    /// `Content-Encoding`) and returns the URL readers fetch it from.
    ///
    /// # Errors
    /// [`Error::External`](crate::Error::External) (`Upload`) when the store refused it
    /// or could not be reached.
    fn put(&self, object: Vec<u8>, content_encoding: Option<&str>) -> Result<String>;
}

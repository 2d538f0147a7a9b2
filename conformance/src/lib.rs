//! # vgi-rpc-conformance: the reference ConformanceService, implemented with vgi-rpc
//!
//! The vgi-rpc reference (Python, 0.52.2) ships a conformance worker whose 90-method
//! `ConformanceService` (version 2.0.0) exercises every framework capability, plus a
//! second protocol, `conformance.Secondary.v1`, that every worker co-hosts. The reference's
//! runner (`vgi-rpc-test`) is the acceptance test of every transport. This crate
//! implements both protocols with `#[vgi_rpc::service]`, so that the runner can drive the
//! Rust runtime, and ships the worker binary `vgi-rpc-conformance-worker`.
//!
//! - [`Conformance`] / [`ConformanceImpl`]: the primary protocol and its implementation.
//! - [`Secondary`] / [`SecondaryImpl`]: the co-hosted fixture protocol.
//! - [`types`]: the records and enums (the reference's dataclasses).
//! - [`producers`] / [`exchanges`]: the stream states.
//! - [`fake_storage`]: the reference's fake object storage, for externalization tests.
//! - [`matrix`]: the transport table and worker starting shared by the test matrix and
//!   the benchmarks.
//!
//! ```no_run
//! # fn main() -> vgi_rpc::Result<()> {
//! let server = vgi_rpc_conformance::server_builder().build()?;
//! vgi_rpc::serve_stdio(server)
//! # }
//! ```

pub mod announce;
mod batches;
pub mod exchanges;
pub mod fake_storage;
mod handlers;
mod headers;
pub mod identity;
pub mod kind_probe;
pub mod matrix;
pub mod probe;
pub mod producers;
#[cfg(test)]
mod protocol_tests;
mod published;
mod pytext;
pub mod s3_server;
pub mod secondary;
mod service;
#[cfg(test)]
mod shm_tests;
pub mod types;

pub use handlers::ConformanceImpl;
pub use published::Publishing;
pub use pytext::{python_float_repr, python_str_repr};
pub use secondary::{Secondary, SecondaryClient, SecondaryImpl, SecondaryServer};
pub use service::{Conformance, ConformanceClient, ConformanceServer};

/// A server builder hosting what the reference worker hosts, in its order:
/// `ConformanceService` first, then `conformance.Secondary.v1` (reflection is appended by
/// the builder). Callers add options (access log, more services) before `build()`.
pub fn server_builder() -> vgi_rpc::server::ServerBuilder {
    vgi_rpc::Server::builder()
        .service(ConformanceServer::new(ConformanceImpl::new()))
        .service(SecondaryServer::new(SecondaryImpl))
}

/// [`server_builder`] wired to external storage, as the reference's `--fake-storage`
/// worker is: large answers go out as pointers, pointer inputs are resolved, and
/// `published_string` publishes into the same storage ([`Publishing`]).
pub fn server_builder_with_external(
    external: std::sync::Arc<vgi_rpc::external::ExternalConfig>,
) -> vgi_rpc::server::ServerBuilder {
    let primary = Publishing::new(
        ConformanceServer::new(ConformanceImpl::new()),
        external.clone(),
    );
    vgi_rpc::Server::builder()
        .service(primary)
        .service(SecondaryServer::new(SecondaryImpl))
        .external(external)
}

//! HTTP: how a service leaves one machine, behind reverse proxies and load balancers.
//!
//! Both ends live here. The server end is an `axum::Router` ([`router`]) a user can nest
//! in their own app, or [`serve`] for a ready listener; the call engine never runs on an
//! async worker (under [`serve`] on the connection's own thread, else on tokio's blocking
//! pool: `server/conn.rs`). Streams are stateless across requests: each
//! turn's answer carries a sealed continuation token (`token.rs`), so any worker holding
//! the same key continues any stream ([`Resumable`](crate::stream::Resumable) states), and
//! states that cannot be saved stay held on the worker that started them.
//!
//! Sticky sessions ([`HttpOptions::sticky`], off by default) let a method keep a live
//! value on the worker that opened it: the client echoes a sealed `VGI-Session` token
//! (the client engine's `StickySessions` scopes) and handlers reach the value through
//! `CallContext::session`; see `server/sticky/` for the registry, token and drain.
//!
//! With feature `tls`, [`serve_tls`] terminates TLS itself (rustls), optionally requiring
//! client certificates whose verified chain reaches the authenticators (`auth::Mtls`).
//!
//! The client end (`http://` and `https://` addresses) runs the client engine's request
//! encoding, response decoding and error handling over reqwest; HTTP adds only what is
//! HTTP: compression, capability probing, headers and retries where the protocol allows.
//!
//! The wire contract is the reference's (vgi-rpc 0.52.2): routes `POST {prefix}/{protocol}/
//! {method}` (unary), `…/init` and `…/exchange` (streams), `GET|HEAD|OPTIONS
//! {prefix}/health`, status codes, capability headers and error bodies as it sends them.

pub mod auth;
pub mod client;
pub mod server;
mod token;
mod zstd_ctx;

pub use server::{
    AuthLayerState, DrainHandle, HttpOptions, StickyOptions, StorageOptions, authenticate_layer,
    router, serve, serve_router,
};
#[cfg(feature = "tls")]
pub use server::{TlsConfig, serve_tls};

//! The server: hosts protocols, validates and dispatches requests, drives streams.

mod context;
mod service;

pub use context::CallContext;
pub use service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};

/// A set of hosted protocols (placeholder until the dispatcher lands).
pub struct Server;

/// Serves `server` on stdin/stdout until stdin closes (placeholder).
///
/// # Errors
/// I/O errors on the pipes.
pub fn serve_stdio(_server: Server) -> crate::Result<()> {
    Ok(())
}

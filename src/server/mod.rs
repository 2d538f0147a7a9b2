//! The server (temporarily reduced while the schema layer lands).

mod context;
mod service;

pub use context::CallContext;
pub use service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};

/// A set of hosted protocols (placeholder).
pub struct Server;

/// Serves `server` on stdin/stdout (placeholder).
///
/// # Errors
/// I/O errors on the pipes.
pub fn serve_stdio(_server: Server) -> crate::Result<()> {
    Ok(())
}

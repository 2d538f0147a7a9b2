//! Pointer inputs: a request or stream input that arrived as a pointer becomes the batch
//! it names before the call engine sees it.
//!
//! Shared-memory pointers are the connection's side channel's (`side.rs`); external
//! storage pointers are resolved here through the server's
//! [`ExternalLocation`](crate::wire::ExternalLocation), under its URL policy and caps. A
//! failure is the input's: a request's is answered where a bad parameter batch would be,
//! a stream input's ends the stream with an EXCEPTION; the connection stays in step
//! either way. These are transport-agnostic, so a request/response transport can resolve
//! its bodies' pointers with the same functions.

use arrow_array::RecordBatch;

use super::registry::ServerInner;
use super::route::Request;
use super::side::ConnSide;
use crate::wire::{self, BatchKind, ExternalLocation, Limits, Metadata};
use crate::{Error, ExternalFailure, Result};

/// What resolves a call's pointer inputs: the connection's side channel (shared memory)
/// and the server's external storage.
pub(crate) struct Inputs<'a> {
    pub(crate) side: &'a ConnSide,
    pub(crate) external: Option<&'a dyn ExternalLocation>,
    pub(crate) limits: &'a Limits,
}

impl Inputs<'_> {
    pub(crate) fn resolve(
        &self,
        batch: RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        let (batch, metadata) = self.side.resolve_input(batch, metadata)?;
        if BatchKind::of(&batch, &metadata) == BatchKind::ExternalPointer {
            return resolve_external(self.external, &batch, &metadata, self.limits);
        }
        Ok((batch, metadata))
    }
}

/// Resolves an external pointer input. The object's logs are dropped (a server has no
/// log handler for its client's logs); an EXCEPTION in it fails the input.
pub(crate) fn resolve_external(
    external: Option<&dyn ExternalLocation>,
    batch: &RecordBatch,
    metadata: &Metadata,
    limits: &Limits,
) -> Result<(RecordBatch, Metadata)> {
    let Some(external) = external else {
        return Err(Error::external(
            ExternalFailure::NotEnabled,
            "the client sent an external-storage pointer, but this server has no external storage configured",
        ));
    };
    let resolved = wire::external::resolve(external, batch, metadata, limits)?;
    if let Some(error) = resolved
        .controls
        .iter()
        .find(|md| md.get(wire::keys::LOG_LEVEL) == Some("EXCEPTION"))
    {
        return Err(Error::external(
            ExternalFailure::Invalid,
            format!(
                "the externalized input carries an error: {}",
                error.get(wire::keys::LOG_MESSAGE).unwrap_or_default()
            ),
        ));
    }
    Ok((resolved.batch, resolved.metadata))
}

/// Resolves a request that arrived as an external pointer; a failure is the request's
/// fault, answered where a bad parameter batch would be.
pub(crate) fn resolve_request(inner: &ServerInner, request: &mut Request, limits: &Limits) {
    if request.fault.is_some()
        || BatchKind::of(&request.batch, &request.metadata) != BatchKind::ExternalPointer
    {
        return;
    }
    match resolve_external(
        inner.external.as_deref(),
        &request.batch,
        &request.metadata,
        limits,
    ) {
        // The dispatch metadata (method, versions) stays the outer batch's.
        Ok((batch, _)) => request.batch = batch,
        Err(e) => request.fault = Some(e),
    }
}

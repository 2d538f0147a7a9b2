//! `_KindProbe`: the one-method protocol the shared suite's transport-kind test calls on
//! every transport, to check that a call sees the transport that carried it.
//!
//! The reference declares it inside its own test fixture (versionless, so adding it never
//! bumps `ConformanceService`); our worker hosts it only when asked (`--kind-probe`), so
//! the protocol lists every other test sees stay the reference's.

use vgi_rpc::prelude::*;

/// Reports the transport kind of the call.
#[vgi_rpc::service(protocol = "_KindProbe")]
pub trait KindProbe: Send + Sync + 'static {
    /// `pipe`, `unix`, `tcp` or `http`: what `CallContext::peer().kind` says.
    fn report_transport_kind(&self, ctx: &CallContext) -> Result<String>;
}

/// The [`KindProbe`] implementation.
pub struct KindProbeImpl;

impl KindProbe for KindProbeImpl {
    fn report_transport_kind(&self, ctx: &CallContext) -> Result<String> {
        Ok(ctx.peer().kind.as_str().to_owned())
    }
}

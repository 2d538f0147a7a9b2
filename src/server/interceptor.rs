//! The pre-dispatch hook: code that runs before every call's handler, on every transport.
//!
//! Authentication, authorization, trace-context extraction and request-scoped values all
//! need the same moment: the request has been routed and validated, the handler has not
//! run. An [`Interceptor`] sees the call's method, its request metadata and the
//! [`Peer`]; it may refuse the call with an error (the caller receives its
//! [`RpcError`](crate::RpcError) form as an ordinary in-band error and the connection stays
//! usable) or attach typed values that
//! the handler reads back through [`CallContext::extension`](super::CallContext::extension).
//! Interceptors run in the order they were added; the first refusal wins.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::peer::Peer;
use crate::Result;
use crate::wire::Metadata;

/// Runs before each call's handler.
///
/// # Example
/// ```
/// use vgi_rpc::server::{CallInfo, Interceptor};
/// use vgi_rpc::{ErrorCode, RpcError};
///
/// /// The caller's tenant, for handlers to read with `ctx.extension::<Tenant>()`.
/// struct Tenant(String);
///
/// /// Refuses calls without an `x-tenant` metadata entry.
/// fn require_tenant(call: &mut CallInfo<'_>) -> vgi_rpc::Result<()> {
///     let tenant = call.metadata().get("x-tenant").ok_or_else(|| {
///         RpcError::new("PermissionError", "no tenant").with_code(ErrorCode::Unauthenticated)
///     })?;
///     let tenant = Tenant(tenant.to_owned());
///     call.insert(tenant);
///     Ok(())
/// }
///
/// let server = vgi_rpc::Server::builder().interceptor(require_tenant).build()?;
/// # let _ = server;
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub trait Interceptor: Send + Sync {
    /// Inspects a call before its handler runs.
    ///
    /// # Errors
    /// The error the caller receives (as [`Error::to_rpc`](crate::Error::to_rpc) reports
    /// it) instead of the handler's answer.
    fn intercept(&self, call: &mut CallInfo<'_>) -> Result<()>;
}

impl<F> Interceptor for F
where
    F: Fn(&mut CallInfo<'_>) -> Result<()> + Send + Sync,
{
    fn intercept(&self, call: &mut CallInfo<'_>) -> Result<()> {
        self(call)
    }
}

/// What an [`Interceptor`] sees of a call, and where it attaches values.
pub struct CallInfo<'a> {
    pub(crate) protocol: &'a str,
    pub(crate) method: &'a str,
    pub(crate) metadata: &'a Metadata,
    pub(crate) peer: &'a Peer,
    pub(crate) extensions: &'a mut Extensions,
}

impl CallInfo<'_> {
    /// The protocol that owns the method.
    pub fn protocol(&self) -> &str {
        self.protocol
    }

    /// The method name.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The request batch's custom metadata, framework keys (`vgi_rpc.*`) included.
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }

    /// Who is calling.
    pub fn peer(&self) -> &Peer {
        self.peer
    }

    /// Attaches `value` to the call (replacing one of the same type); the handler reads
    /// it with [`CallContext::extension`](super::CallContext::extension).
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.extensions.insert(value);
    }

    /// A value an earlier interceptor attached.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get()
    }
}

/// Typed values attached to one call, at most one per type.
#[derive(Default)]
pub struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Extensions {
    /// Attaches `value`, replacing a value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was attached.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// Whether nothing is attached.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.0.len())
            .finish()
    }
}

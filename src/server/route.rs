//! Routing a request: which hosted method it addresses, or why it is refused.
//!
//! The checks run in the reference's order so that a request with several problems gets
//! the same error from us as from the reference.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::answer::empty;
use super::exception::framework;
use super::registry::{Binding, MissingMethod, ServerInner};
use super::service::{MethodKind, MethodSpec};
use super::validate::validate_params;
use crate::wire::{Metadata, keys};
use crate::{Error, Result, RpcError};

/// The request as read off the wire (a shared-memory pointer already resolved).
pub(crate) struct Request {
    pub(crate) batch: RecordBatch,
    pub(crate) metadata: Metadata,
    /// Why the request's batch could not be obtained (an unresolvable shared-memory
    /// pointer): reported where a bad parameter batch would be.
    pub(crate) fault: Option<Error>,
}

impl Request {
    pub(crate) fn new(batch: RecordBatch, metadata: Metadata) -> Self {
        Request {
            batch,
            metadata,
            fault: None,
        }
    }
}

/// A request that passed routing, version and parameter checks.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) binding: &'a Binding,
    pub(crate) index: usize,
}

/// Where a valid request goes.
pub(crate) enum Routed<'a> {
    TransportOptions,
    Call(Call<'a>),
}

/// Why a request was refused before dispatch, and how to answer it.
pub(crate) struct Rejection {
    pub(crate) error: RpcError,
    pub(crate) schema: SchemaRef,
    pub(crate) protocol: String,
    pub(crate) method: String,
    /// The request addressed a stream method, so an input stream follows it.
    pub(crate) stream: bool,
}

impl Rejection {
    fn boxed(error: RpcError, protocol: &str, method: &str) -> Box<Self> {
        Box::new(Rejection {
            error,
            schema: empty(),
            protocol: protocol.to_owned(),
            method: method.to_owned(),
            stream: false,
        })
    }
}

/// Validates a request in the reference's order: method key, request version, built-ins,
/// protocol routing, method lookup, protocol version gate, parameters.
pub(crate) fn route<'a>(
    inner: &'a ServerInner,
    request: &Request,
) -> std::result::Result<Routed<'a>, Box<Rejection>> {
    let md = &request.metadata;
    let primary = inner.primary_protocol();
    let Some(method) = md.get(keys::METHOD) else {
        let err = framework::protocol_error(
            "Missing 'vgi_rpc.method' in request batch custom_metadata. Each request batch must carry a 'vgi_rpc.method' key.",
        );
        return Err(Rejection::boxed(err, primary, ""));
    };
    if md.get(keys::REQUEST_VERSION) != Some(keys::REQUEST_VERSION_VALUE) {
        let err = framework::version_error(md.get(keys::REQUEST_VERSION));
        return Err(Rejection::boxed(err, primary, method));
    }
    if method == keys::TRANSPORT_OPTIONS_METHOD {
        return Ok(Routed::TransportOptions);
    }
    if method == keys::DESCRIBE_METHOD {
        return Err(Rejection::boxed(
            framework::describe_retired(),
            primary,
            method,
        ));
    }
    let Some(protocol) = md.get(keys::PROTOCOL) else {
        let err = framework::protocol_not_specified(&inner.hosted());
        return Err(Rejection::boxed(err, primary, method));
    };
    let (binding, index) = match inner.find_method(protocol, method) {
        Ok(found) => found,
        Err(MissingMethod::Protocol(err)) => return Err(Rejection::boxed(*err, primary, method)),
        Err(MissingMethod::Method(err)) => return Err(Rejection::boxed(*err, protocol, method)),
    };
    let spec = &binding.spec.methods[index];
    check_version(
        binding.spec.version.as_deref(),
        protocol,
        md.get(keys::PROTOCOL_VERSION),
    )
    .and_then(|()| match &request.fault {
        Some(Error::External { kind, message }) => Err(Error::external(*kind, message)),
        Some(fault) => Err(Error::protocol(fault.to_string())),
        None => validate_params(method, &spec.params, &request.batch),
    })
    .map_err(|e| {
        let mut rejection = Rejection::boxed(e.to_rpc(), protocol, method);
        rejection.schema = error_schema(spec);
        rejection.stream = spec.kind != MethodKind::Unary;
        rejection
    })?;
    Ok(Routed::Call(Call { binding, index }))
}

/// Errors of a unary call go out on its result schema; stream errors on the empty schema.
pub(crate) fn error_schema(spec: &MethodSpec) -> SchemaRef {
    match (&spec.result, spec.kind) {
        (Some(result), MethodKind::Unary) => result.clone(),
        _ => empty(),
    }
}

/// The first two dot-separated parts of a version.
fn major_minor(v: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = v.split('.');
    (parts.next(), parts.next())
}

fn check_version(declared: Option<&str>, protocol: &str, sent: Option<&str>) -> Result<()> {
    let Some(declared) = declared else {
        return Ok(());
    };
    match sent {
        // The same version (the usual case) needs no splitting.
        Some(v) if v == declared || major_minor(v) == major_minor(declared) => Ok(()),
        other => Err(framework::version_mismatch(protocol, other, declared).into()),
    }
}

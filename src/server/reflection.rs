//! `vgi_rpc.Reflection.v1`: the co-hosted protocol that describes a server.
//!
//! `list_protocols()` and `describe(protocol)` both return a record serialized as a nested
//! IPC stream in a `binary` column. Everything they report is fixed once the server is
//! built, so the answers are encoded once, up front.

use std::sync::Arc;

use arrow_array::{Array, BinaryArray, RecordBatch};
use arrow_schema::Schema;

use super::CallContext;
use super::service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};
use crate::schema::ArrowRecord;
use crate::schema::reflection::{
    self, DESCRIBE, LIST_PROTOCOLS, MethodInfo, ProtocolList, ProtocolSummary, ServiceDescription,
};
use crate::wire::{encode_schema_message, encode_stream, keys};
use crate::{Error, Result};

/// The reflection service, with its answers pre-encoded.
pub(crate) struct ReflectionService {
    spec: Arc<ProtocolSpec>,
    list: Vec<u8>,
    descriptions: Vec<(String, Vec<u8>)>,
}

impl ReflectionService {
    /// The reflection protocol's own description.
    pub(crate) fn spec() -> ProtocolSpec {
        let binary_result = Some(reflection::result_schema());
        ProtocolSpec {
            name: keys::REFLECTION_PROTOCOL.to_owned(),
            version: None,
            doc: "Discovery: what this server hosts and each protocol's methods.".to_owned(),
            methods: vec![
                MethodSpec {
                    name: DESCRIBE.to_owned(),
                    doc: "Describe one hosted protocol's methods.".to_owned(),
                    kind: MethodKind::Unary,
                    params: reflection::describe_params_schema(),
                    defaults: vec![None],
                    result: binary_result.clone(),
                    header: None,
                },
                MethodSpec {
                    name: LIST_PROTOCOLS.to_owned(),
                    doc: "List the protocols this server hosts.".to_owned(),
                    kind: MethodKind::Unary,
                    params: Arc::new(Schema::empty()),
                    defaults: vec![],
                    result: binary_result,
                    header: None,
                },
            ],
        }
    }

    /// Builds the answers for `protocols` (each with its hash), reflection included.
    pub(crate) fn new(
        server_id: &str,
        server_version: &str,
        protocols: &[(Arc<ProtocolSpec>, String)],
    ) -> Result<Self> {
        let summary = |spec: &ProtocolSpec, hash: &str| {
            ProtocolSummary::hosted(&spec.name, spec.version.as_deref(), hash)
        };
        let list = ProtocolList {
            server_id: server_id.to_owned(),
            server_version: server_version.to_owned(),
            request_version: keys::REQUEST_VERSION_VALUE.to_owned(),
            protocols: protocols.iter().map(|(s, h)| summary(s, h)).collect(),
        };
        let list = record_ipc(list)?;
        let mut descriptions = Vec::new();
        for (spec, hash) in protocols {
            let s = summary(spec, hash);
            let mut methods: Vec<MethodInfo> = spec.methods.iter().map(method_info).collect();
            methods.sort_by(|a, b| a.name.cmp(&b.name));
            let description = ServiceDescription {
                protocol: s.protocol,
                protocol_version: s.protocol_version,
                protocol_hash: s.protocol_hash,
                deprecated: s.deprecated,
                deprecation_message: s.deprecation_message,
                features: s.features,
                methods,
            };
            descriptions.push((spec.name.clone(), record_ipc(description)?));
        }
        Ok(ReflectionService {
            spec: Arc::new(Self::spec()),
            list,
            descriptions,
        })
    }
}

fn method_info(m: &MethodSpec) -> MethodInfo {
    let ipc = |s: &Option<arrow_schema::SchemaRef>| {
        crate::schema::Bytes(
            s.as_ref()
                .map(|s| encode_schema_message(s))
                .unwrap_or_default(),
        )
    };
    MethodInfo {
        name: m.name.clone(),
        method_type: m.kind.method_type().to_owned(),
        has_return: m.result.is_some(),
        has_header: m.header.is_some(),
        stream_kind: m.kind.stream_kind().to_owned(),
        params_schema_ipc: crate::schema::Bytes(encode_schema_message(
            &reflection::annotate_params(&m.params, &m.doc, &m.defaults),
        )),
        result_schema_ipc: ipc(&m.result),
        header_schema_ipc: ipc(&m.header),
        idempotency: "unknown".to_owned(),
        deprecated: false,
        deprecation_message: String::new(),
    }
}

pub(crate) fn record_ipc<T: ArrowRecord>(record: T) -> Result<Vec<u8>> {
    let batch = T::to_batch(vec![record])?;
    encode_stream(&T::schema(), &[batch])
}

pub(crate) fn binary_result(bytes: &[u8]) -> Result<Response> {
    let schema = reflection::result_schema();
    let column = Arc::new(BinaryArray::from_vec(vec![bytes]));
    Ok(Response::Unary(Some(RecordBatch::try_new(
        schema,
        vec![column],
    )?)))
}

impl Service for ReflectionService {
    fn spec(&self) -> &Arc<ProtocolSpec> {
        &self.spec
    }

    fn call(&self, method: usize, args: &RecordBatch, _ctx: &CallContext) -> Result<Response> {
        match self.spec.methods.get(method).map(|m| m.name.as_str()) {
            Some(LIST_PROTOCOLS) => binary_result(&self.list),
            Some(DESCRIBE) => {
                let wanted = args
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .filter(|a| !a.is_empty())
                    .map(|a| a.value(0).to_owned())
                    .ok_or_else(|| Error::type_error("describe() needs a 'protocol' string"))?;
                match self.descriptions.iter().find(|(name, _)| *name == wanted) {
                    Some((_, bytes)) => binary_result(bytes),
                    None => {
                        let hosted: Vec<&str> =
                            self.descriptions.iter().map(|(n, _)| n.as_str()).collect();
                        Err(
                            super::exception::framework::protocol_not_supported(&wanted, &hosted)
                                .into(),
                        )
                    }
                }
            }
            _ => Err(Error::protocol("unknown reflection method")),
        }
    }
}

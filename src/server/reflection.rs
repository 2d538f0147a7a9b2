//! `vgi_rpc.Reflection.v1`: the co-hosted protocol that describes a server.
//!
//! `list_protocols()` and `describe(protocol)` both return a record serialized as a nested
//! IPC stream in a `binary` column. Everything they report is fixed once the server is
//! built, so the answers are encoded once, up front.

use std::sync::Arc;

use arrow_array::{Array, BinaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::CallContext;
use super::service::{MethodKind, MethodSpec, ProtocolSpec, Response, Service};
use crate::schema::ArrowRecord;
use crate::wire::{encode_schema_message, encode_stream, keys};
use crate::{Error, Result};

/// One hosted protocol, as listed by `list_protocols`.
#[derive(Debug, Clone, crate::ArrowRecord)]
pub(crate) struct ProtocolSummary {
    pub protocol: String,
    pub protocol_version: String,
    pub protocol_hash: String,
    pub deprecated: bool,
    pub deprecation_message: String,
    pub features: Vec<String>,
}

/// The answer of `list_protocols`.
#[derive(Debug, Clone, crate::ArrowRecord)]
pub(crate) struct ProtocolList {
    pub server_id: String,
    pub server_version: String,
    pub request_version: String,
    pub protocols: Vec<ProtocolSummary>,
}

/// One method's wire surface, as reported by `describe`.
#[derive(Debug, Clone, crate::ArrowRecord)]
pub(crate) struct MethodInfo {
    pub name: String,
    pub method_type: String,
    pub has_return: bool,
    pub has_header: bool,
    pub stream_kind: String,
    pub params_schema_ipc: crate::schema::Bytes,
    pub result_schema_ipc: crate::schema::Bytes,
    pub header_schema_ipc: crate::schema::Bytes,
    pub idempotency: String,
    pub deprecated: bool,
    pub deprecation_message: String,
}

/// The answer of `describe`.
#[derive(Debug, Clone, crate::ArrowRecord)]
pub(crate) struct ServiceDescription {
    pub protocol: String,
    pub protocol_version: String,
    pub protocol_hash: String,
    pub deprecated: bool,
    pub deprecation_message: String,
    pub features: Vec<String>,
    pub methods: Vec<MethodInfo>,
}

/// The reflection service, with its answers pre-encoded.
pub(crate) struct ReflectionService {
    spec: Arc<ProtocolSpec>,
    list: Vec<u8>,
    descriptions: Vec<(String, Vec<u8>)>,
}

impl ReflectionService {
    /// The reflection protocol's own description.
    pub(crate) fn spec() -> ProtocolSpec {
        let binary_result = Some(Arc::new(Schema::new(vec![Field::new(
            "result",
            DataType::Binary,
            false,
        )])));
        ProtocolSpec {
            name: keys::REFLECTION_PROTOCOL.to_owned(),
            version: None,
            doc: "Discovery: what this server hosts and each protocol's methods.".to_owned(),
            methods: vec![
                MethodSpec {
                    name: "describe".to_owned(),
                    doc: "Describe one hosted protocol's methods.".to_owned(),
                    kind: MethodKind::Unary,
                    params: Arc::new(Schema::new(vec![Field::new(
                        "protocol",
                        DataType::Utf8,
                        false,
                    )])),
                    defaults: vec![None],
                    result: binary_result.clone(),
                    header: None,
                },
                MethodSpec {
                    name: "list_protocols".to_owned(),
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
        let summary = |spec: &ProtocolSpec, hash: &str| ProtocolSummary {
            protocol: spec.name.clone(),
            protocol_version: spec.version.clone().unwrap_or_default(),
            protocol_hash: hash.to_owned(),
            deprecated: false,
            deprecation_message: String::new(),
            features: Vec::new(),
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
                deprecated: false,
                deprecation_message: String::new(),
                features: Vec::new(),
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
        params_schema_ipc: crate::schema::Bytes(encode_schema_message(&described_params(m))),
        result_schema_ipc: ipc(&m.result),
        header_schema_ipc: ipc(&m.header),
        idempotency: "unknown".to_owned(),
        deprecated: false,
        deprecation_message: String::new(),
    }
}

/// The parameter schema as `describe` reports it: the declared fields, plus this
/// implementation's doc and defaults annotations as schema-level metadata (see
/// [`keys::DESCRIBE_DOC`], [`keys::DESCRIBE_PARAM_DEFAULTS`]). Field-level content is
/// untouched, so requests built from it validate and the protocol hash is unchanged.
fn described_params(m: &MethodSpec) -> Schema {
    let mut defaults = serde_json::Map::new();
    for (field, default) in m.params.fields().iter().zip(&m.defaults) {
        if let Some(text) = default {
            defaults.insert(
                field.name().clone(),
                serde_json::Value::String(text.clone()),
            );
        }
    }
    let mut metadata = m.params.metadata().clone();
    metadata.insert(
        keys::DESCRIBE_PARAM_DEFAULTS.to_owned(),
        serde_json::Value::Object(defaults).to_string(),
    );
    if !m.doc.is_empty() {
        metadata.insert(keys::DESCRIBE_DOC.to_owned(), m.doc.clone());
    }
    Schema::new_with_metadata(m.params.fields().clone(), metadata)
}

fn record_ipc<T: ArrowRecord>(record: T) -> Result<Vec<u8>> {
    let batch = T::to_batch(vec![record])?;
    encode_stream(&T::schema(), &[batch])
}

fn binary_result(bytes: &[u8]) -> Result<Response> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "result",
        DataType::Binary,
        false,
    )]));
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
            Some("list_protocols") => binary_result(&self.list),
            Some("describe") => {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn described_params_carry_doc_and_defaults_but_keep_fields() {
        let spec = MethodSpec {
            name: "m".to_owned(),
            doc: "Does m.".to_owned(),
            kind: MethodKind::Unary,
            params: Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int64, false),
                Field::new("b", DataType::Utf8, false),
            ])),
            defaults: vec![None, Some("\"x\"".to_owned())],
            result: None,
            header: None,
        };
        let described = described_params(&spec);
        assert_eq!(described.fields(), spec.params.fields());
        assert_eq!(described.metadata()[keys::DESCRIBE_DOC], "Does m.");
        let defaults: serde_json::Value =
            serde_json::from_str(&described.metadata()[keys::DESCRIBE_PARAM_DEFAULTS]).unwrap();
        assert_eq!(defaults, serde_json::json!({"b": "\"x\""}));
    }
}

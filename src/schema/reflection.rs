//! The records of `vgi_rpc.Reflection.v1`, the co-hosted protocol that describes a server,
//! shared by the server that answers it and the client that asks (see
//! `Client::describe` in [`crate::client`]).
//!
//! `list_protocols()` answers a [`ProtocolList`] and `describe(protocol)` a
//! [`ServiceDescription`]. Each answer is the `result: binary` of a unary call holding the
//! record as a nested IPC stream (a record's top-level form, see [`crate::ArrowRecord`]).
//! Field names and order are the reference's (`vgi_rpc.rpc._reflection`); records are read
//! by field name, so a peer's extra fields are ignored.
//!
//! Beyond the reference, this implementation's servers annotate each reported parameter
//! schema with schema-level metadata: the method's doc ([`keys::DESCRIBE_DOC`]) and the
//! parameters' client-side defaults ([`keys::DESCRIBE_PARAM_DEFAULTS`]). Readers that do
//! not know them ignore them, and the protocol hash does not cover them.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::schema::Bytes;
use crate::wire::keys;

/// The reflection method answering a [`ProtocolList`].
pub const LIST_PROTOCOLS: &str = "list_protocols";
/// The reflection method answering a [`ServiceDescription`] of one protocol.
pub const DESCRIBE: &str = "describe";
/// The name prefix of framework protocols (reflection itself), as opposed to the
/// application protocols a server hosts.
pub const FRAMEWORK_PREFIX: &str = "vgi_rpc.";

/// `MethodInfo::method_type` of a unary method (`"stream"` for the others).
pub const METHOD_TYPE_UNARY: &str = "unary";
/// `MethodInfo::stream_kind` of a producer stream.
pub const STREAM_KIND_PRODUCER: &str = "producer";
/// `MethodInfo::stream_kind` of an exchange stream.
pub const STREAM_KIND_EXCHANGE: &str = "exchange";

/// The parameters of [`DESCRIBE`]: `protocol: utf8`.
pub fn describe_params_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "protocol",
        DataType::Utf8,
        false,
    )]))
}

/// The result schema of both reflection methods: `result: binary`, the record's IPC stream.
pub fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "result",
        DataType::Binary,
        false,
    )]))
}

/// One hosted protocol, as listed by [`LIST_PROTOCOLS`].
#[derive(Debug, Clone, PartialEq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct ProtocolSummary {
    /// Wire name: the routing key.
    pub protocol: String,
    /// Declared version, or empty when the protocol has none.
    pub protocol_version: String,
    /// Digest of the protocol's canonical description (the same in every implementation).
    pub protocol_hash: String,
    /// Whether callers should migrate off this protocol.
    pub deprecated: bool,
    /// What to migrate to; empty unless `deprecated`.
    pub deprecation_message: String,
    /// Open set of capability tokens.
    pub features: Vec<String>,
}

impl ProtocolSummary {
    /// A summary of a protocol this server hosts (never deprecated, no features).
    pub(crate) fn hosted(name: &str, version: Option<&str>, hash: &str) -> Self {
        ProtocolSummary {
            protocol: name.to_owned(),
            protocol_version: version.unwrap_or_default().to_owned(),
            protocol_hash: hash.to_owned(),
            deprecated: false,
            deprecation_message: String::new(),
            features: Vec::new(),
        }
    }

    /// Whether this is a framework protocol (`vgi_rpc.*`, such as reflection itself)
    /// rather than an application protocol.
    pub fn is_framework(&self) -> bool {
        self.protocol.starts_with(FRAMEWORK_PREFIX)
    }
}

/// The answer of [`LIST_PROTOCOLS`]: the server and what it hosts.
#[derive(Debug, Clone, PartialEq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct ProtocolList {
    /// Server instance identifier.
    pub server_id: String,
    /// Server build version, possibly empty.
    pub server_version: String,
    /// The request (envelope) version the server speaks.
    pub request_version: String,
    /// Every hosted protocol, reflection included, in the server's order.
    pub protocols: Vec<ProtocolSummary>,
}

/// One method's wire surface, as reported by [`DESCRIBE`]. Schemas are IPC schema
/// messages, empty when absent.
#[derive(Debug, Clone, PartialEq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct MethodInfo {
    /// Method name.
    pub name: String,
    /// [`METHOD_TYPE_UNARY`] or `"stream"`.
    pub method_type: String,
    /// Whether a unary method returns a value.
    pub has_return: bool,
    /// Whether a stream declares a header.
    pub has_header: bool,
    /// For streams [`STREAM_KIND_PRODUCER`], [`STREAM_KIND_EXCHANGE`] or `"unknown"`;
    /// empty for unary methods.
    pub stream_kind: String,
    /// The request parameters' schema (with this implementation's annotations, see the
    /// module docs).
    pub params_schema_ipc: Bytes,
    /// The unary result schema; empty unless `has_return`.
    pub result_schema_ipc: Bytes,
    /// The stream header schema; empty unless `has_header`.
    pub header_schema_ipc: Bytes,
    /// How safe the method is to retry: `unknown`, `no_side_effects` or `idempotent`.
    pub idempotency: String,
    /// Whether callers should migrate off this method.
    pub deprecated: bool,
    /// What to migrate to; empty unless `deprecated`.
    pub deprecation_message: String,
}

/// The answer of [`DESCRIBE`]: one protocol and its methods.
#[derive(Debug, Clone, PartialEq, crate::ArrowRecord)]
#[non_exhaustive]
pub struct ServiceDescription {
    /// Wire name.
    pub protocol: String,
    /// Declared version, or empty.
    pub protocol_version: String,
    /// Digest of the canonical description.
    pub protocol_hash: String,
    /// Whether callers should migrate off this protocol.
    pub deprecated: bool,
    /// What to migrate to; empty unless `deprecated`.
    pub deprecation_message: String,
    /// Open set of capability tokens.
    pub features: Vec<String>,
    /// Every method, sorted by name.
    pub methods: Vec<MethodInfo>,
}

/// `params` as `describe` reports it: the declared fields, plus the doc and defaults
/// annotations as schema-level metadata (see the module docs). `defaults` holds one entry
/// per field: its default's JSON text, `None` when the parameter is required. Field-level
/// content is untouched, so requests built from the result validate.
pub(crate) fn annotate_params(params: &Schema, doc: &str, defaults: &[Option<String>]) -> Schema {
    let mut by_name = serde_json::Map::new();
    for (field, default) in params.fields().iter().zip(defaults) {
        if let Some(text) = default {
            by_name.insert(
                field.name().clone(),
                serde_json::Value::String(text.clone()),
            );
        }
    }
    let mut metadata = params.metadata().clone();
    metadata.insert(
        keys::DESCRIBE_PARAM_DEFAULTS.to_owned(),
        serde_json::Value::Object(by_name).to_string(),
    );
    if !doc.is_empty() {
        metadata.insert(keys::DESCRIBE_DOC.to_owned(), doc.to_owned());
    }
    Schema::new_with_metadata(params.fields().clone(), metadata)
}

/// The doc annotation of a reported parameter schema, when the server sent one.
pub(crate) fn annotated_doc(params: &Schema) -> Option<String> {
    params.metadata().get(keys::DESCRIBE_DOC).cloned()
}

/// The defaults annotation of a reported parameter schema: default JSON text by parameter
/// name. `None` when the server reports no defaults (every server but this
/// implementation's) or the annotation is not a JSON object of strings.
pub(crate) fn annotated_defaults(params: &Schema) -> Option<BTreeMap<String, String>> {
    params
        .metadata()
        .get(keys::DESCRIBE_PARAM_DEFAULTS)
        .and_then(|text| serde_json::from_str(text).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ArrowRecord;

    #[test]
    fn annotations_round_trip_and_keep_fields() {
        let params = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, false),
        ]);
        let annotated = annotate_params(&params, "Does m.", &[None, Some("\"x\"".to_owned())]);
        assert_eq!(annotated.fields(), params.fields());
        assert_eq!(annotated_doc(&annotated).as_deref(), Some("Does m."));
        let defaults = annotated_defaults(&annotated).unwrap();
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults["b"], "\"x\"");
        // No doc, no defaults: an empty object (which says every parameter is required).
        let bare = annotate_params(&params, "", &[None, None]);
        assert_eq!(annotated_doc(&bare), None);
        assert_eq!(annotated_defaults(&bare), Some(BTreeMap::new()));
        assert_eq!(annotated_defaults(&params), None);
    }

    #[test]
    fn records_round_trip_through_their_top_level_form() {
        let list = ProtocolList {
            server_id: "abc".to_owned(),
            server_version: String::new(),
            request_version: "1".to_owned(),
            protocols: vec![
                ProtocolSummary::hosted("Calc", Some("1.0.0"), "h"),
                ProtocolSummary::hosted(keys::REFLECTION_PROTOCOL, None, "r"),
            ],
        };
        assert!(!list.protocols[0].is_framework());
        assert!(list.protocols[1].is_framework());
        let batch = ProtocolList::to_batch(vec![list.clone()]).unwrap();
        assert_eq!(ProtocolList::from_batch(&batch, 0).unwrap(), list);
    }
}

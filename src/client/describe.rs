//! Describing a worker through `vgi_rpc.Reflection.v1`, the co-hosted protocol every
//! server answers (the records are in [`crate::schema::reflection`]).
//!
//! [`Client::list_protocols`] says what a server hosts (one cheap round trip);
//! [`Client::describe_protocol`] decodes one protocol into a [`ProtocolDescription`]:
//! each method's kind and parameter, result and header schemas. [`Client::describe`] does
//! both for everything hosted. Only the reflection protocol is used, so this works against
//! a worker written in any language.
//!
//! Defaults and docs are not part of the reference's reflection record; this
//! implementation's servers add them as schema metadata on the reported parameter schema,
//! and they are decoded when present.
//!
//! ```no_run
//! use vgi_rpc::client::{CallOptions, Client};
//! # fn main() -> vgi_rpc::Result<()> {
//! let mut client = Client::connect("exec:my-worker --pipe")?;
//! let server = client.describe(&CallOptions::default())?;
//! for protocol in server.protocols.iter().filter(|p| !p.is_framework()) {
//!     for method in &protocol.methods {
//!         println!("{}.{}: {:?} {}", protocol.name, method.name, method.kind, method.params);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{Schema, SchemaRef};

use super::{CallOptions, Client, Target};
use crate::schema::ArrowValue;
use crate::schema::reflection::{
    self, DESCRIBE, FRAMEWORK_PREFIX, LIST_PROTOCOLS, METHOD_TYPE_UNARY, MethodInfo, ProtocolList,
    STREAM_KIND_EXCHANGE, STREAM_KIND_PRODUCER, ServiceDescription,
};
use crate::wire::{decode_schema_message, keys};
use crate::{Error, Result};

/// A server and every protocol it hosts, as [`Client::describe`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerDescription {
    /// Server instance identifier.
    pub server_id: String,
    /// Server build version, possibly empty.
    pub server_version: String,
    /// The request (envelope) version the server speaks.
    pub request_version: String,
    /// Every hosted protocol, framework ones included, in the server's order.
    pub protocols: Vec<ProtocolDescription>,
}

/// One protocol and its methods, decoded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProtocolDescription {
    /// Wire name: the routing key (`Target::protocol`).
    pub name: String,
    /// Declared version, or empty when the protocol has none.
    pub version: String,
    /// Digest of the protocol's canonical description (the same in every implementation).
    pub hash: String,
    /// Whether callers should migrate off this protocol.
    pub deprecated: bool,
    /// What to migrate to; empty unless `deprecated`.
    pub deprecation_message: String,
    /// Open set of capability tokens.
    pub features: Vec<String>,
    /// Every method, sorted by name.
    pub methods: Vec<MethodDescription>,
}

impl ProtocolDescription {
    /// Whether this is a framework protocol (`vgi_rpc.*`, such as reflection itself).
    pub fn is_framework(&self) -> bool {
        self.name.starts_with(FRAMEWORK_PREFIX)
    }

    /// The call target: this protocol, with its version when it declares one.
    pub fn target(&self) -> Target {
        let version = (!self.version.is_empty()).then_some(self.version.as_str());
        Target::new(self.name.clone(), version)
    }
}

/// How a described method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// A stream that takes no input: the client ticks, the server pushes batches.
    Producer,
    /// A lockstep stream: one output batch per input batch.
    Exchange,
    /// A stream whose kind the server did not state (`stream_kind` `"unknown"`).
    Stream,
}

/// One method's surface, decoded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MethodDescription {
    /// Method name on the wire.
    pub name: String,
    /// Unary, or which kind of stream.
    pub kind: MethodKind,
    /// The request parameters: one field per parameter with its name, type and
    /// nullability, in order (empty for a method without parameters).
    pub params: SchemaRef,
    /// The unary result schema (`result: T`); `None` for void methods and streams.
    pub result: Option<SchemaRef>,
    /// The stream header schema, when the stream declares one.
    pub header: Option<SchemaRef>,
    /// The method's documentation, when the server reports it.
    pub doc: Option<String>,
    /// Client-side defaults as JSON text by parameter name, when the server reports
    /// defaults; then a parameter without an entry is required.
    pub defaults: Option<BTreeMap<String, String>>,
    /// How safe the method is to retry: `unknown`, `no_side_effects` or `idempotent`.
    pub idempotency: String,
    /// Whether callers should migrate off this method.
    pub deprecated: bool,
    /// What to migrate to; empty unless `deprecated`.
    pub deprecation_message: String,
}

impl TryFrom<&MethodInfo> for MethodDescription {
    type Error = Error;

    /// Decodes the schemas of a reflection record.
    fn try_from(info: &MethodInfo) -> Result<Self> {
        let kind = match (info.method_type.as_str(), info.stream_kind.as_str()) {
            (METHOD_TYPE_UNARY, _) => MethodKind::Unary,
            (_, STREAM_KIND_EXCHANGE) => MethodKind::Exchange,
            (_, STREAM_KIND_PRODUCER) => MethodKind::Producer,
            _ => MethodKind::Stream,
        };
        let schema = |what: &str, bytes: &[u8]| -> Result<Option<SchemaRef>> {
            if bytes.is_empty() {
                return Ok(None);
            }
            decode_schema_message(bytes)
                .map(Some)
                .map_err(|e| Error::protocol(format!("{}: bad `{what}`: {e}", info.name)))
        };
        let params = schema("params_schema_ipc", &info.params_schema_ipc.0)?
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let result = if info.has_return && kind == MethodKind::Unary {
            schema("result_schema_ipc", &info.result_schema_ipc.0)?
        } else {
            None
        };
        let header = if info.has_header {
            schema("header_schema_ipc", &info.header_schema_ipc.0)?
        } else {
            None
        };
        Ok(MethodDescription {
            name: info.name.clone(),
            kind,
            doc: reflection::annotated_doc(&params),
            defaults: reflection::annotated_defaults(&params),
            params,
            result,
            header,
            idempotency: info.idempotency.clone(),
            deprecated: info.deprecated,
            deprecation_message: info.deprecation_message.clone(),
        })
    }
}

impl TryFrom<ServiceDescription> for ProtocolDescription {
    type Error = Error;

    /// Decodes every method of a reflection record.
    fn try_from(record: ServiceDescription) -> Result<Self> {
        let methods = record
            .methods
            .iter()
            .map(MethodDescription::try_from)
            .collect::<Result<_>>()?;
        Ok(ProtocolDescription {
            name: record.protocol,
            version: record.protocol_version,
            hash: record.protocol_hash,
            deprecated: record.deprecated,
            deprecation_message: record.deprecation_message,
            features: record.features,
            methods,
        })
    }
}

impl Client {
    /// Asks the server what it hosts (`list_protocols`): its identity and every protocol
    /// with its version and hash, framework ones included.
    ///
    /// # Errors
    /// As [`Client::call`] (a worker without reflection answers `protocol_not_supported`);
    /// [`Error::Protocol`] for an answer that is not a `ProtocolList`.
    pub fn list_protocols(&mut self, options: &CallOptions) -> Result<ProtocolList> {
        let params = RecordBatch::new_empty(Arc::new(Schema::empty()));
        self.reflect(LIST_PROTOCOLS, &params, options)
    }

    /// Fetches the reflection record describing `protocol` (`describe`), schemas still as
    /// the server's IPC bytes; [`Client::describe_protocol`] decodes it.
    ///
    /// # Errors
    /// As [`Client::call`] (`protocol_not_supported` when the server does not host
    /// `protocol`); [`Error::Protocol`] for an answer that is not a `ServiceDescription`.
    pub fn describe_protocol_record(
        &mut self,
        protocol: &str,
        options: &CallOptions,
    ) -> Result<ServiceDescription> {
        let params = RecordBatch::try_new(
            reflection::describe_params_schema(),
            vec![Arc::new(StringArray::from(vec![protocol]))],
        )?;
        self.reflect(DESCRIBE, &params, options)
    }

    /// Describes one hosted protocol: its version, hash and methods with their schemas.
    ///
    /// # Errors
    /// As [`Client::describe_protocol_record`]; [`Error::Protocol`] when a reported schema
    /// cannot be decoded.
    pub fn describe_protocol(
        &mut self,
        protocol: &str,
        options: &CallOptions,
    ) -> Result<ProtocolDescription> {
        self.describe_protocol_record(protocol, options)?.try_into()
    }

    /// Describes the server and every protocol it hosts: [`Client::list_protocols`], then
    /// [`Client::describe_protocol`] for each protocol (one round trip each).
    ///
    /// # Errors
    /// As those two methods.
    pub fn describe(&mut self, options: &CallOptions) -> Result<ServerDescription> {
        let list = self.list_protocols(options)?;
        let protocols = list
            .protocols
            .iter()
            .map(|p| self.describe_protocol(&p.protocol, options))
            .collect::<Result<_>>()?;
        Ok(ServerDescription {
            server_id: list.server_id,
            server_version: list.server_version,
            request_version: list.request_version,
            protocols,
        })
    }

    /// Calls reflection method `method` and decodes the record in its `result` column.
    fn reflect<T: ArrowValue>(
        &mut self,
        method: &str,
        params: &RecordBatch,
        options: &CallOptions,
    ) -> Result<T> {
        let target = Target::new(keys::REFLECTION_PROTOCOL, None);
        let answer = self.call(&target, method, params, options)?;
        let malformed = |what: &dyn std::fmt::Display| {
            Error::protocol(format!("malformed reflection answer to {method}(): {what}"))
        };
        let batch = answer.batch.ok_or_else(|| malformed(&"no result"))?;
        let column = batch
            .column_by_name("result")
            .ok_or_else(|| malformed(&"no `result` column"))?;
        match T::from_top_level_array(column.as_ref(), 0) {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(malformed(&"the result is null")),
            Err(e) => Err(malformed(&e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use arrow_schema::{DataType, Field};

    use super::*;
    use crate::schema::Bytes;
    use crate::wire::encode_schema_message;

    fn info(method_type: &str, stream_kind: &str) -> MethodInfo {
        let params = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let params = reflection::annotate_params(&params, "Doc.", &[Some("3".to_owned())]);
        let result = Schema::new(vec![Field::new("result", DataType::Utf8, false)]);
        MethodInfo {
            name: "m".to_owned(),
            method_type: method_type.to_owned(),
            has_return: method_type == "unary",
            has_header: false,
            stream_kind: stream_kind.to_owned(),
            params_schema_ipc: Bytes(encode_schema_message(&params)),
            result_schema_ipc: Bytes(encode_schema_message(&result)),
            header_schema_ipc: Bytes::default(),
            idempotency: "unknown".to_owned(),
            deprecated: false,
            deprecation_message: String::new(),
        }
    }

    #[test]
    fn methods_decode_with_kind_schemas_doc_and_defaults() {
        let unary = MethodDescription::try_from(&info("unary", "")).unwrap();
        assert_eq!(unary.kind, MethodKind::Unary);
        assert_eq!(unary.params.field(0).name(), "n");
        assert!(unary.params.field(0).is_nullable());
        assert_eq!(unary.result.unwrap().field(0).data_type(), &DataType::Utf8);
        assert_eq!(unary.header, None);
        assert_eq!(unary.doc.as_deref(), Some("Doc."));
        assert_eq!(unary.defaults.unwrap()["n"], "3");
        let kind = |stream_kind| MethodDescription::try_from(&info("stream", stream_kind)).unwrap();
        assert_eq!(kind("producer").kind, MethodKind::Producer);
        assert_eq!(kind("exchange").kind, MethodKind::Exchange);
        assert_eq!(kind("unknown").kind, MethodKind::Stream);
        assert_eq!(
            kind("producer").result,
            None,
            "streams have no result schema"
        );
    }

    #[test]
    fn an_undecodable_schema_is_a_protocol_error() {
        let mut bad = info("unary", "");
        bad.params_schema_ipc = Bytes(vec![0xff; 12]);
        assert!(matches!(
            MethodDescription::try_from(&bad),
            Err(Error::Protocol(_))
        ));
    }
}

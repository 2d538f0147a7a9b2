//! Discovery through `vgi_rpc.Reflection.v1`: `list_protocols`, then `describe` for each
//! protocol of interest, decoded into a [`Description`] that both the `describe` output
//! and argument parsing for `call` work from.
//!
//! Only the reflection protocol is used, so this works against a worker written in any
//! language. Defaults and docs are not part of the reference's reflection record; this
//! implementation's servers add them as schema metadata on the reported parameter schema
//! (`vgi_rpc_rs.param_defaults`, `vgi_rpc_rs.doc`; vendor-prefixed since the reference does not define them), and they are shown when present.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BinaryArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgi_rpc::client::{CallOptions, Client, Target};
use vgi_rpc::wire::{decode_schema_message, keys};

use crate::failure::{Failure, Outcome};

/// What `list_protocols` reports about the server.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub server_id: String,
    pub server_version: String,
    pub request_version: String,
    /// Hosted protocols in the server's order (primary first, framework ones last).
    pub protocols: Vec<ProtocolSummary>,
}

/// One hosted protocol as listed.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolSummary {
    pub name: String,
}

impl ProtocolSummary {
    /// Framework protocols (`vgi_rpc.*`) are hidden unless asked for.
    pub(crate) fn is_framework(&self) -> bool {
        self.name.starts_with("vgi_rpc.")
    }
}

/// One protocol's methods.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolDescription {
    pub name: String,
    pub version: String,
    pub hash: String,
    pub methods: Vec<MethodDescription>,
}

/// How a method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    Unary,
    Producer,
    Exchange,
}

impl MethodKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MethodKind::Unary => "unary",
            MethodKind::Producer => "producer",
            MethodKind::Exchange => "exchange",
        }
    }
}

/// One method's surface.
#[derive(Debug, Clone)]
pub(crate) struct MethodDescription {
    pub name: String,
    pub kind: MethodKind,
    pub params: SchemaRef,
    /// `None` for void methods and streams.
    pub result: Option<SchemaRef>,
    pub header: Option<SchemaRef>,
    pub doc: Option<String>,
    /// Default JSON text by parameter, when the server reports defaults (see module docs).
    pub defaults: Option<BTreeMap<String, String>>,
}

fn reflection() -> Target {
    Target::new(keys::REFLECTION_PROTOCOL, None)
}

/// Calls `list_protocols`.
pub(crate) fn list_protocols(client: &mut Client, options: &CallOptions) -> Outcome<ServerInfo> {
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let answer = match client.call(&reflection(), "list_protocols", &empty, options) {
        Ok(answer) => answer,
        Err(vgi_rpc::Error::Rpc(mut e)) if e.kind.as_deref() == Some("protocol_not_supported") => {
            e.message.push_str(
                " (this worker does not host reflection; a Python worker needs --describe)",
            );
            return Err(Failure::Remote(e));
        }
        Err(e) => return Err(e.into()),
    };
    let record = nested_record(answer.batch)?;
    let protocols = list_of_structs(&record, "protocols")?;
    let mut list = Vec::with_capacity(protocols.len());
    for i in 0..protocols.len() {
        list.push(ProtocolSummary {
            name: struct_str(&protocols, "protocol", i)?,
        });
    }
    Ok(ServerInfo {
        server_id: top_str(&record, "server_id")?,
        server_version: top_str(&record, "server_version").unwrap_or_default(),
        request_version: top_str(&record, "request_version").unwrap_or_default(),
        protocols: list,
    })
}

/// Calls `describe(protocol)`.
pub(crate) fn describe_protocol(
    client: &mut Client,
    protocol: &str,
    options: &CallOptions,
) -> Outcome<ProtocolDescription> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "protocol",
        DataType::Utf8,
        false,
    )]));
    let params = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![protocol]))])
        .map_err(Failure::local)?;
    let answer = client.call(&reflection(), "describe", &params, options)?;
    let record = nested_record(answer.batch)?;
    let methods = list_of_structs(&record, "methods")?;
    let mut out = Vec::with_capacity(methods.len());
    for i in 0..methods.len() {
        out.push(method_at(&methods, i)?);
    }
    Ok(ProtocolDescription {
        name: top_str(&record, "protocol")?,
        version: top_str(&record, "protocol_version").unwrap_or_default(),
        hash: top_str(&record, "protocol_hash").unwrap_or_default(),
        methods: out,
    })
}

fn method_at(methods: &StructArray, i: usize) -> Outcome<MethodDescription> {
    let name = struct_str(methods, "name", i)?;
    let method_type = struct_str(methods, "method_type", i)?;
    let stream_kind = struct_str(methods, "stream_kind", i).unwrap_or_default();
    let kind = match (method_type.as_str(), stream_kind.as_str()) {
        ("unary", _) => MethodKind::Unary,
        (_, "exchange") => MethodKind::Exchange,
        _ => MethodKind::Producer,
    };
    let has_return = struct_bool(methods, "has_return", i);
    let has_header = struct_bool(methods, "has_header", i);
    let params =
        schema_at(methods, "params_schema_ipc", i)?.unwrap_or_else(|| Arc::new(Schema::empty()));
    let result = if has_return && kind == MethodKind::Unary {
        schema_at(methods, "result_schema_ipc", i)?
    } else {
        None
    };
    let header = if has_header {
        schema_at(methods, "header_schema_ipc", i)?
    } else {
        None
    };
    let doc = params.metadata().get(keys::DESCRIBE_DOC).cloned();
    let defaults = params
        .metadata()
        .get(keys::DESCRIBE_PARAM_DEFAULTS)
        .and_then(|text| serde_json::from_str::<BTreeMap<String, String>>(text).ok());
    Ok(MethodDescription {
        name,
        kind,
        params,
        result,
        header,
        doc,
        defaults,
    })
}

fn malformed(what: impl std::fmt::Display) -> Failure {
    Failure::Transport(format!("malformed reflection answer: {what}"))
}

/// The reflection answer: a `result: binary` column holding one nested IPC stream whose
/// single row is the record.
fn nested_record(batch: Option<RecordBatch>) -> Outcome<RecordBatch> {
    let batch = batch.ok_or_else(|| malformed("no result"))?;
    let bytes = batch
        .column_by_name("result")
        .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
        .filter(|c| !c.is_empty() && c.is_valid(0))
        .ok_or_else(|| malformed("no binary `result` column"))?
        .value(0);
    let mut reader =
        arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).map_err(malformed)?;
    match reader.next() {
        Some(Ok(record)) if record.num_rows() == 1 => Ok(record),
        Some(Err(e)) => Err(malformed(e)),
        _ => Err(malformed("the nested record is not one row")),
    }
}

fn top_str(record: &RecordBatch, name: &str) -> Outcome<String> {
    record
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c| c.is_valid(0))
        .map(|c| c.value(0).to_owned())
        .ok_or_else(|| malformed(format!("no utf8 `{name}`")))
}

fn list_of_structs(record: &RecordBatch, name: &str) -> Outcome<StructArray> {
    let list = record
        .column_by_name(name)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| malformed(format!("no list `{name}`")))?;
    list.value(0)
        .as_struct_opt()
        .cloned()
        .ok_or_else(|| malformed(format!("`{name}` is not a list of structs")))
}

fn struct_str(array: &StructArray, name: &str, i: usize) -> Outcome<String> {
    array
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c| c.is_valid(i))
        .map(|c| c.value(i).to_owned())
        .ok_or_else(|| malformed(format!("no utf8 `{name}`")))
}

fn struct_bool(array: &StructArray, name: &str, i: usize) -> bool {
    array
        .column_by_name(name)
        .and_then(|c| c.as_boolean_opt())
        .is_some_and(|c| c.is_valid(i) && c.value(i))
}

/// A schema carried as an IPC schema message; empty bytes mean "none".
fn schema_at(array: &StructArray, name: &str, i: usize) -> Outcome<Option<SchemaRef>> {
    let Some(bytes) = array
        .column_by_name(name)
        .and_then(|c| c.as_binary_opt::<i32>())
        .filter(|c| c.is_valid(i))
        .map(|c| c.value(i))
    else {
        return Ok(None);
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    decode_schema_message(bytes)
        .map(Some)
        .map_err(|e| malformed(format!("`{name}`: {e}")))
}

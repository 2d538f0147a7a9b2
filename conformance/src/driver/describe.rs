//! The `describe` op: two round trips on `vgi_rpc.Reflection.v1` made with the client
//! under test, decoded into the relay's JSON (CLIENT_DRIVER_PROTOCOL §4.3).
//!
//! This is the one place the driver decodes values, because the reflection reply is two
//! nested payloads. Schemas are relayed as the server's own IPC bytes, untouched.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BinaryArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Value, json};
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client, Target};
use vgi_rpc::wire::{self, Limits, StreamItem, keys};

use super::ipc::b64_encode;

/// The introspection format version the reference reports (`vgi_rpc.introspect.DESCRIBE_VERSION`).
/// Vestigial: introspection is versioned by its protocol name.
const DESCRIBE_VERSION: &str = "5";

/// Runs `list_protocols` then `describe` on the first application protocol.
pub(crate) fn describe(client: &mut Client) -> Result<Value, Error> {
    let reflection = Target::new(keys::REFLECTION_PROTOCOL, None);
    let options = CallOptions::default();

    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let listing = nested_record(
        client
            .call(&reflection, "list_protocols", &empty, &options)?
            .batch,
    )?;
    let server_id = string_field(&listing, "server_id")?;
    let request_version = string_field(&listing, "request_version")?;
    let protocols = list_of_structs(&listing, "protocols")?;
    let names = protocols
        .column_by_name("protocol")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| malformed("list_protocols: `protocols` has no utf8 `protocol` field"))?;
    let Some(name) = names
        .iter()
        .flatten()
        .find(|n| !n.starts_with("vgi_rpc."))
        .map(str::to_owned)
    else {
        return Err(vgi_rpc::RpcError::new(
            "ProtocolError",
            "the server hosts only framework protocols (vgi_rpc.*): nothing to describe",
        )
        .into());
    };

    let params_schema = Arc::new(Schema::new(vec![Field::new(
        "protocol",
        DataType::Utf8,
        false,
    )]));
    let params = RecordBatch::try_new(
        params_schema,
        vec![Arc::new(StringArray::from(vec![name.as_str()]))],
    )?;
    let description = nested_record(
        client
            .call(&reflection, "describe", &params, &options)?
            .batch,
    )?;
    let methods = list_of_structs(&description, "methods")?;
    Ok(json!({
        "protocol_name": string_field(&description, "protocol")?,
        "request_version": request_version,
        "describe_version": DESCRIBE_VERSION,
        "protocol_hash": string_field(&description, "protocol_hash")?,
        "server_id": server_id,
        "protocol_version": string_field(&description, "protocol_version")?,
        "methods": method_list(&methods)?,
    }))
}

fn malformed(what: &str) -> Error {
    Error::protocol(format!("reflection reply: {what}"))
}

/// The one-row record inside a reflection reply's `result` binary column.
fn nested_record(reply: Option<RecordBatch>) -> Result<RecordBatch, Error> {
    let reply = reply.ok_or_else(|| malformed("no result batch"))?;
    let column = reply
        .column_by_name("result")
        .and_then(|c| c.as_binary_opt::<i32>())
        .ok_or_else(|| malformed("no binary `result` column"))?;
    if column.len() != 1 || column.is_null(0) {
        return Err(malformed("`result` is not exactly one non-null value"));
    }
    let mut bytes = column.value(0);
    let limits = Limits::default();
    let mut decoder = wire::read_stream_start(&mut bytes, &limits)?;
    match wire::read_stream_item(&mut bytes, &mut decoder, &limits)? {
        StreamItem::Batch(batch, _) if batch.num_rows() == 1 => Ok(batch),
        _ => Err(malformed(
            "the nested stream does not hold one one-row batch",
        )),
    }
}

fn string_field(batch: &RecordBatch, name: &str) -> Result<String, Error> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c| c.is_valid(0))
        .map(|c| c.value(0).to_owned())
        .ok_or_else(|| malformed(&format!("no utf8 `{name}`")))
}

fn list_of_structs(batch: &RecordBatch, name: &str) -> Result<StructArray, Error> {
    let list = batch
        .column_by_name(name)
        .and_then(|c| c.as_list_opt::<i32>())
        .filter(|c| c.is_valid(0))
        .ok_or_else(|| malformed(&format!("no list `{name}`")))?;
    let values = list.value(0);
    values
        .as_struct_opt()
        .cloned()
        .ok_or_else(|| malformed(&format!("`{name}` is not a list of structs")))
}

fn method_list(methods: &StructArray) -> Result<Vec<Value>, Error> {
    let utf8 = |name: &str| -> Result<&StringArray, Error> {
        methods
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| malformed(&format!("method field `{name}` is not utf8")))
    };
    let boolean = |name: &str| {
        methods
            .column_by_name(name)
            .and_then(|c| c.as_boolean_opt().cloned())
            .ok_or_else(|| malformed(&format!("method field `{name}` is not bool")))
    };
    let binary = |name: &str| -> Result<&BinaryArray, Error> {
        methods
            .column_by_name(name)
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| malformed(&format!("method field `{name}` is not binary")))
    };
    let (names, types, kinds) = (utf8("name")?, utf8("method_type")?, utf8("stream_kind")?);
    let (has_return, has_header) = (boolean("has_return")?, boolean("has_header")?);
    let (params, results, headers) = (
        binary("params_schema_ipc")?,
        binary("result_schema_ipc")?,
        binary("header_schema_ipc")?,
    );
    let schema = |column: &BinaryArray, i: usize| -> Value {
        if column.is_null(i) || column.value(i).is_empty() {
            Value::Null
        } else {
            Value::String(b64_encode(column.value(i)))
        }
    };
    Ok((0..methods.len())
        .map(|i| {
            let is_exchange = match kinds.value(i) {
                "exchange" => Value::Bool(true),
                "producer" => Value::Bool(false),
                _ => Value::Null,
            };
            json!({
                "name": names.value(i),
                "method_type": types.value(i),
                "has_return": has_return.value(i),
                "has_header": has_header.value(i),
                "is_exchange": is_exchange,
                "params_schema_b64": schema(params, i),
                "result_schema_b64": schema(results, i),
                "header_schema_b64": schema(headers, i),
            })
        })
        .collect())
}

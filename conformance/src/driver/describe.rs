//! The `describe` op: two round trips on `vgi_rpc.Reflection.v1` made with the client
//! under test (`Client::list_protocols`, `Client::describe_protocol_record`), relayed as
//! JSON (CLIENT_DRIVER_PROTOCOL §4.3). Schemas are relayed as the server's own IPC bytes,
//! untouched.

use serde_json::{Value, json};
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client};
use vgi_rpc::schema::reflection::{MethodInfo, STREAM_KIND_EXCHANGE, STREAM_KIND_PRODUCER};

use super::ipc::b64_encode;

/// The introspection format version the reference reports (`vgi_rpc.introspect.DESCRIBE_VERSION`).
/// Vestigial: introspection is versioned by its protocol name.
const DESCRIBE_VERSION: &str = "5";

/// Runs `list_protocols` then `describe` on the first application protocol.
pub(crate) fn describe(client: &mut Client) -> Result<Value, Error> {
    let options = CallOptions::default();
    let listing = client.list_protocols(&options)?;
    let Some(first) = listing.protocols.iter().find(|p| !p.is_framework()) else {
        return Err(vgi_rpc::RpcError::new(
            "ProtocolError",
            "the server hosts only framework protocols (vgi_rpc.*): nothing to describe",
        )
        .into());
    };
    let description = client.describe_protocol_record(&first.protocol, &options)?;
    Ok(json!({
        "protocol_name": description.protocol,
        "request_version": listing.request_version,
        "describe_version": DESCRIBE_VERSION,
        "protocol_hash": description.protocol_hash,
        "server_id": listing.server_id,
        "protocol_version": description.protocol_version,
        "methods": description.methods.iter().map(method).collect::<Vec<_>>(),
    }))
}

fn method(info: &MethodInfo) -> Value {
    let schema = |ipc: &[u8]| match ipc {
        [] => Value::Null,
        bytes => Value::String(b64_encode(bytes)),
    };
    let is_exchange = match info.stream_kind.as_str() {
        STREAM_KIND_EXCHANGE => Value::Bool(true),
        STREAM_KIND_PRODUCER => Value::Bool(false),
        _ => Value::Null,
    };
    json!({
        "name": info.name,
        "method_type": info.method_type,
        "has_return": info.has_return,
        "has_header": info.has_header,
        "is_exchange": is_exchange,
        "params_schema_b64": schema(&info.params_schema_ipc.0),
        "result_schema_b64": schema(&info.result_schema_ipc.0),
        "header_schema_b64": schema(&info.header_schema_ipc.0),
    })
}

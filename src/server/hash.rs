//! The protocol hash: a fingerprint of a protocol's wire surface that is equal across
//! implementations.
//!
//! `lowerhex(sha256("vgi_rpc.protocol_hash.v1|" + JCS(description)))`, where the
//! description lists each method (sorted by name) with its kind, parameter, result and
//! header fields as `{name, nullable, type-token}`. Docs, defaults and stream kinds are not
//! part of it. JCS (RFC 8785) here reduces to sorted keys and no whitespace because the
//! description holds only strings, booleans, arrays and objects.

use std::collections::BTreeMap;

use arrow_schema::Schema;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::schema::type_token;
use crate::server::ProtocolSpec;

const DOMAIN: &[u8] = b"vgi_rpc.protocol_hash.v1|";

/// The canonical JSON text that is hashed (exposed for tests against the reference's
/// preimage). Fields whose type has no token are rendered with an `"<unsupported:...>"`
/// token so the hash is still deterministic.
pub fn protocol_hash_preimage(spec: &ProtocolSpec) -> String {
    let mut methods: Vec<&crate::server::MethodSpec> = spec.methods.iter().collect();
    methods.sort_by(|a, b| a.name.cmp(&b.name));
    let methods: Vec<Value> = methods
        .into_iter()
        .map(|m| {
            let mut obj: BTreeMap<&str, Value> = BTreeMap::new();
            obj.insert("name", Value::String(m.name.clone()));
            obj.insert("type", Value::String(m.kind.method_type().to_owned()));
            obj.insert("has_return", Value::Bool(m.result.is_some()));
            obj.insert("has_header", Value::Bool(m.header.is_some()));
            obj.insert("params", fields(&m.params));
            if let Some(result) = &m.result {
                obj.insert("result", fields(result));
            }
            if let Some(header) = &m.header {
                obj.insert("header", fields(header));
            }
            to_value(obj)
        })
        .collect();
    let mut root: BTreeMap<&str, Value> = BTreeMap::new();
    root.insert("methods", Value::Array(methods));
    root.insert("protocol", Value::String(spec.name.clone()));
    to_value(root).to_string()
}

/// The protocol hash of `spec` (64 lowercase hex digits).
pub fn protocol_hash(spec: &ProtocolSpec) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(protocol_hash_preimage(spec).as_bytes());
    crate::hex::encode(&hasher.finalize())
}

fn fields(schema: &Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                let token = type_token(f.data_type())
                    .unwrap_or_else(|_| format!("<unsupported:{}>", f.data_type()));
                let mut obj: BTreeMap<&str, Value> = BTreeMap::new();
                obj.insert("name", Value::String(f.name().clone()));
                obj.insert("nullable", Value::Bool(f.is_nullable()));
                obj.insert("type", Value::String(token));
                to_value(obj)
            })
            .collect(),
    )
}

/// Builds an object whose keys are in sorted order (the map preserves insertion order).
fn to_value(map: BTreeMap<&str, Value>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

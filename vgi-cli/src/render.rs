//! `vgi-rpc describe` output: a human listing, or JSON for scripts.

use std::fmt::Write as _;

use arrow_schema::Schema;
use serde_json::{Value, json};
use vgi_rpc::client::{MethodDescription, ProtocolDescription};
use vgi_rpc::schema::reflection::ProtocolList;

use crate::args::type_name;
use crate::describe::kind_name;

/// The human listing: server, then each protocol with its methods.
pub(crate) fn text(server: &ProtocolList, protocols: &[ProtocolDescription]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server {} (version {}, request version {})",
        server.server_id,
        or_dash(&server.server_version),
        server.request_version
    );
    for p in protocols {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "protocol {}  version {}  hash {}  ({} methods)",
            p.name,
            or_dash(&p.version),
            p.hash,
            p.methods.len()
        );
        for m in &p.methods {
            method_text(&mut out, m);
        }
    }
    out
}

fn method_text(out: &mut String, m: &MethodDescription) {
    let params: Vec<String> = m
        .params
        .fields()
        .iter()
        .map(|f| {
            let mut s = format!("{}: {}", f.name(), type_name(f.data_type()));
            if f.is_nullable() {
                s.push('?');
            }
            if let Some(d) = m.defaults.as_ref().and_then(|d| d.get(f.name())) {
                let _ = write!(s, " = {d}");
            }
            s
        })
        .collect();
    let returns = match &m.result {
        Some(r) => format!(" -> {}", schema_text(r)),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  {:<8}  {}({}){returns}",
        kind_name(m.kind),
        m.name,
        params.join(", ")
    );
    if let Some(h) = &m.header {
        let _ = writeln!(out, "            header: {}", schema_text(h));
    }
    if let Some(doc) = m.doc.as_deref().filter(|d| !d.is_empty()) {
        for line in doc.lines() {
            let _ = writeln!(out, "            {line}");
        }
    }
}

fn schema_text(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn schema_json(schema: &Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                json!({
                    "name": f.name(),
                    "type": type_name(f.data_type()),
                    "nullable": f.is_nullable(),
                })
            })
            .collect(),
    )
}

/// The JSON document: stable keys, one object per protocol and per method.
pub(crate) fn json(server: &ProtocolList, protocols: &[ProtocolDescription]) -> Value {
    let protocols: Vec<Value> = protocols
        .iter()
        .map(|p| {
            let methods: Vec<Value> = p
                .methods
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "kind": kind_name(m.kind),
                        "params": schema_json(&m.params),
                        "defaults": m.defaults,
                        "result": m.result.as_deref().map(schema_json),
                        "header": m.header.as_deref().map(schema_json),
                        "doc": m.doc,
                    })
                })
                .collect();
            json!({
                "protocol": p.name,
                "version": p.version,
                "hash": p.hash,
                "methods": methods,
            })
        })
        .collect();
    json!({
        "server_id": server.server_id,
        "server_version": server.server_version,
        "request_version": server.request_version,
        "protocols": protocols,
    })
}

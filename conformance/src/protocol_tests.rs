//! Unit tests: the macro-generated protocol descriptions must match the reference's exactly: method
//! names, kinds, parameter names and order, Arrow types and nullability, result and header
//! schemas. The workspace's `tests/fixtures/protocol/conformance_protocol_hash_preimage.json`
//! is the reference's canonical (RFC 8785) description of `ConformanceService`; the protocol
//! hash is the SHA-256 of it, so equal descriptions mean equal hashes.

use std::collections::BTreeSet;

use crate::{ConformanceServer, SecondaryServer};
use anyhow::{Context as _, Result, bail, ensure};
use arrow_schema::Schema;
use serde_json::{Value, json};
use vgi_rpc::schema::type_token;
use vgi_rpc::server::{MethodKind, MethodSpec, ProtocolSpec, protocol_hash};

const PREIMAGE: &str =
    include_str!("../../tests/fixtures/protocol/conformance_protocol_hash_preimage.json");

fn fields(schema: &Schema) -> Result<Value> {
    let mut out = Vec::new();
    for field in schema.fields() {
        out.push(json!({
            "name": field.name(),
            "nullable": field.is_nullable(),
            "type": type_token(field.data_type())?,
        }));
    }
    Ok(Value::Array(out))
}

/// One method as the protocol hash describes it.
fn describe(method: &MethodSpec) -> Result<Value> {
    let mut obj = json!({
        "name": method.name,
        "type": method.kind.method_type(),
        "has_return": method.result.is_some(),
        "has_header": method.header.is_some(),
        "params": fields(&method.params)?,
    });
    if let Some(result) = &method.result {
        obj["result"] = fields(result)?;
    }
    if let Some(header) = &method.header {
        obj["header"] = fields(header)?;
    }
    Ok(obj)
}

fn describe_all(spec: &ProtocolSpec) -> Result<Vec<Value>> {
    let mut methods: Vec<&MethodSpec> = spec.methods.iter().collect();
    methods.sort_by(|a, b| a.name.cmp(&b.name));
    methods.into_iter().map(describe).collect()
}

#[test]
fn conformance_service_has_the_reference_methods() -> Result<()> {
    let spec = ConformanceServer::spec();
    let reference: Value = serde_json::from_str(PREIMAGE)?;
    let expected: BTreeSet<&str> = reference["methods"]
        .as_array()
        .context("fixture has no methods")?
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    let actual: BTreeSet<&str> = spec.methods.iter().map(|m| m.name.as_str()).collect();
    ensure!(spec.methods.len() == 90, "{} methods", spec.methods.len());
    ensure!(actual.len() == 90, "duplicate method names");
    ensure!(
        actual == expected,
        "missing {:?}, extra {:?}",
        expected.difference(&actual).collect::<Vec<_>>(),
        actual.difference(&expected).collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn conformance_service_matches_the_reference_description() -> Result<()> {
    let spec = ConformanceServer::spec();
    ensure!(spec.name == "ConformanceService");
    ensure!(spec.version.as_deref() == Some("2.0.0"));
    let reference: Value = serde_json::from_str(PREIMAGE)?;
    let ours = describe_all(&spec)?;
    let theirs = reference["methods"]
        .as_array()
        .context("fixture has no methods")?;
    let mut mismatches = Vec::new();
    for (a, b) in ours.iter().zip(theirs) {
        if a != b {
            mismatches.push(format!("ours   {a}\ntheirs {b}"));
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "{} methods differ:\n{}",
            mismatches.len(),
            mismatches.join("\n\n")
        );
    }
    ensure!(json!({"methods": ours, "protocol": spec.name}) == reference);
    Ok(())
}

#[test]
fn stream_kinds_follow_the_reference() -> Result<()> {
    let spec = ConformanceServer::spec();
    for method in &spec.methods {
        let expected = if method.name.starts_with("produce_")
            || method.name == "cancellable_producer"
            || method.name == "stream_session_counter"
        {
            MethodKind::Producer
        } else if method.name.starts_with("exchange_") || method.name == "cancellable_exchange" {
            MethodKind::Exchange
        } else {
            MethodKind::Unary
        };
        ensure!(
            method.kind == expected,
            "{}: {:?}",
            method.name,
            method.kind
        );
    }
    Ok(())
}

#[test]
fn client_side_defaults_are_recorded() -> Result<()> {
    let spec = ConformanceServer::spec();
    let defaults = |name: &str| -> Result<Vec<Option<String>>> {
        let index = spec.method_index(name).context("no such method")?;
        Ok(spec.methods[index].defaults.clone())
    };
    ensure!(defaults("concatenate")? == [None, None, Some("\"-\"".to_owned())]);
    ensure!(
        defaults("with_defaults")? == [None, Some("\"default\"".to_owned()), Some("42".to_owned())]
    );
    Ok(())
}

#[test]
fn secondary_protocol_matches_the_reference() -> Result<()> {
    let spec = SecondaryServer::spec();
    ensure!(spec.name == "conformance.Secondary.v1");
    ensure!(spec.version.is_none());
    let expected = json!([
        {"name": "echo_string", "type": "unary", "has_return": true, "has_header": false,
         "params": [{"name": "value", "nullable": false, "type": "utf8"}],
         "result": [{"name": "result", "nullable": false, "type": "utf8"}]},
        {"name": "fail", "type": "unary", "has_return": false, "has_header": false,
         "params": [{"name": "code", "nullable": false, "type": "utf8"},
                    {"name": "kind", "nullable": false, "type": "utf8"},
                    {"name": "retry_delay_seconds", "nullable": false, "type": "float64"}]},
        {"name": "fail_oversized", "type": "unary", "has_return": false, "has_header": false,
         "params": []},
    ]);
    ensure!(Value::Array(describe_all(&spec)?) == expected);
    Ok(())
}

#[test]
fn protocol_hashes_match_the_pinned_reference_values() {
    assert_eq!(
        protocol_hash(&ConformanceServer::spec()),
        "05479410c96f34410a2b10a4f6a49d59dcfd9d6d1d45ce9a9807d060a3bd6014"
    );
    assert_eq!(
        protocol_hash(&SecondaryServer::spec()),
        "58557cf1611546ad22d1c379bc3ce1b04166082f78375e9fc959f0086347eab6"
    );
}

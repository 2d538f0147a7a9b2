//! Turning errors and logs into the metadata of in-band log / EXCEPTION batches.
//!
//! Field order and JSON spelling follow the reference so a Python client decodes ours
//! exactly like its own server's: `log_level`, `log_message`, `log_extra`, `error_kind`,
//! `error_code`, `error_details`, `server_id`, `request_id`.

use serde_json::{Map, Value, json};

use super::pyjson;
use crate::error::details;
use crate::log::LogRecord;
use crate::wire::{Metadata, keys};
use crate::{ErrorCode, RpcError};

/// Largest `error_details` JSON (UTF-8 bytes) sent; larger detail lists are dropped whole.
const MAX_DETAILS_BYTES: usize = 4096;
/// Longest traceback text sent.
const MAX_TRACEBACK_CHARS: usize = 16000;

/// Where an error happened, for the traceback and detail filtering.
pub(crate) struct ErrorSite<'a> {
    pub protocol: &'a str,
    pub method: &'a str,
    pub server_id: &'a str,
    pub request_id: &'a str,
    pub include_traceback: bool,
}

/// Metadata of the EXCEPTION batch reporting `error`.
pub(crate) fn exception_metadata(error: &RpcError, site: &ErrorSite<'_>) -> Metadata {
    let details = filter_details(&error.details, site.protocol);
    let details_json =
        (!details.is_empty()).then(|| pyjson::dumps(&Value::Array(details.clone()), true));
    let details_json = details_json.filter(|s| s.len() <= MAX_DETAILS_BYTES);

    let mut extra = Map::new();
    extra.insert("exception_type".into(), json!(error.error_type));
    extra.insert("exception_message".into(), json!(error.message));
    extra.insert("error_code".into(), json!(error.code.as_str()));
    if let Some(kind) = &error.kind {
        extra.insert("error_kind".into(), json!(kind));
    }
    if details_json.is_some() {
        extra.insert("error_details".into(), Value::Array(details));
    }
    if site.include_traceback {
        extra.insert("traceback".into(), json!(traceback(error, site)));
        extra.insert(
            "frames".into(),
            json!([{
                "file": format!("{}/{}", site.protocol, site.method),
                "line": 0,
                "function": site.method,
                "code": "",
            }]),
        );
    }

    let mut md = Metadata::new();
    md.insert(keys::LOG_LEVEL, "EXCEPTION");
    md.insert(
        keys::LOG_MESSAGE,
        format!("{}: {}", error.error_type, error.message),
    );
    md.insert(keys::LOG_EXTRA, pyjson::dumps(&Value::Object(extra), false));
    if let Some(kind) = &error.kind {
        md.insert(keys::ERROR_KIND, kind.clone());
    }
    md.insert(keys::ERROR_CODE, error.code.as_str());
    if let Some(details) = details_json {
        md.insert(keys::ERROR_DETAILS, details);
    }
    md.insert(keys::SERVER_ID, site.server_id);
    md.insert(keys::REQUEST_ID, site.request_id);
    md
}

/// Metadata of a plain log batch. `request_id` is `None` inside stream turns.
pub(crate) fn log_metadata(
    record: &LogRecord,
    server_id: &str,
    request_id: Option<&str>,
) -> Metadata {
    let mut md = Metadata::new();
    md.insert(keys::LOG_LEVEL, record.level.as_str());
    md.insert(keys::LOG_MESSAGE, record.message.clone());
    if !record.extra.is_empty() {
        md.insert(
            keys::LOG_EXTRA,
            pyjson::dumps(&Value::Object(record.extra.clone()), false),
        );
    }
    md.insert(keys::SERVER_ID, server_id);
    if let Some(id) = request_id {
        md.insert(keys::REQUEST_ID, id);
    }
    md
}

/// Keeps standard detail types and those namespaced by the raising protocol, once each.
fn filter_details(details: &[Value], protocol: &str) -> Vec<Value> {
    let mut seen: Vec<&str> = Vec::new();
    let mut kept = Vec::new();
    for detail in details {
        let Some(ty) = detail.get("@type").and_then(Value::as_str) else {
            continue;
        };
        let allowed = details::STANDARD_TYPES.contains(&ty)
            || ty
                .strip_prefix(protocol)
                .is_some_and(|rest| rest.starts_with('.'));
        if allowed && !seen.contains(&ty) {
            seen.push(ty);
            kept.push(detail.clone());
        }
    }
    kept
}

/// A Python-shaped traceback naming the protocol and method (Rust has no frames to show).
fn traceback(error: &RpcError, site: &ErrorSite<'_>) -> String {
    let mut text = format!(
        "Traceback (most recent call last):\n  File \"{}/{}\", line 0, in {}\n{}: {}\n",
        site.protocol, site.method, site.method, error.error_type, error.message
    );
    if text.chars().count() > MAX_TRACEBACK_CHARS {
        text = text.chars().take(MAX_TRACEBACK_CHARS).collect();
        text.push_str("\n… <traceback truncated>");
    }
    text
}

/// Framework errors raised before a handler runs.
pub(crate) mod framework {
    use super::*;

    pub(crate) fn protocol_error(message: impl Into<String>) -> RpcError {
        RpcError::new("ProtocolError", message)
    }

    pub(crate) fn version_error(got: Option<&str>) -> RpcError {
        let got = got.map_or_else(|| "None".to_owned(), |v| format!("b'{v}'"));
        RpcError::new(
            "VersionError",
            format!(
                "Unsupported request version {got}, expected b'1'. Set the 'vgi_rpc.request_version' custom_metadata value to b'1'."
            ),
        )
    }

    pub(crate) fn method_not_implemented(message: impl Into<String>) -> RpcError {
        RpcError::new("MethodNotImplementedError", message)
            .with_code(ErrorCode::Unimplemented)
            .with_kind("method_not_implemented")
    }

    pub(crate) fn describe_retired() -> RpcError {
        method_not_implemented(
            "'__describe__' was retired. Introspection is now the 'vgi_rpc.Reflection.v1' protocol: call 'list_protocols' for what this server hosts, then 'describe' for one protocol's methods.",
        )
    }

    pub(crate) fn protocol_not_specified(hosted: &[&str]) -> RpcError {
        RpcError::new(
            "ProtocolNotSpecifiedError",
            format!(
                "Request carries no 'vgi_rpc.protocol' routing key. Every request must name the protocol it addresses. This server hosts: {}.",
                py_list(hosted)
            ),
        )
        .with_code(ErrorCode::InvalidArgument)
        .with_kind("protocol_not_specified")
    }

    pub(crate) fn protocol_not_supported(name: &str, hosted: &[&str]) -> RpcError {
        let mut sorted = hosted.to_vec();
        sorted.sort_unstable();
        RpcError::new(
            "ProtocolNotSupportedError",
            format!(
                "This server does not host protocol '{name}'. Hosted: {}.",
                py_list(&sorted)
            ),
        )
        .with_code(ErrorCode::Unimplemented)
        .with_kind("protocol_not_supported")
    }

    pub(crate) fn no_such_method(protocol: &str, method: &str, available: &[&str]) -> RpcError {
        let mut sorted = available.to_vec();
        sorted.sort_unstable();
        method_not_implemented(format!(
            "Protocol '{protocol}' has no method '{method}'. Available: {}.",
            py_list(&sorted)
        ))
    }

    pub(crate) fn version_mismatch(protocol: &str, client: Option<&str>, server: &str) -> RpcError {
        let direction = match client {
            None => "the client did not send a vgi_rpc.protocol_version metadata key. This is either a vgi-rpc framework bug or a non-VGI client connecting to a VGI worker.".to_owned(),
            Some(c) if version_key(c) > version_key(server) => format!(
                "server is too old; upgrade the VGI worker to a version supporting protocol_version {c}."
            ),
            Some(_) => format!("client is too old; upgrade the VGI client to protocol_version {server}."),
        };
        let message = format!(
            "VGI client/worker protocol_version mismatch for protocol '{protocol}'.\n  Client: {}\n  Server: {server}\n  Direction: {direction}",
            client.unwrap_or("<not declared>")
        );
        RpcError::new("ProtocolVersionError", message)
            .with_code(ErrorCode::FailedPrecondition)
            .with_kind("protocol_version_mismatch")
            .with_detail(details::precondition_failure([(
                "protocol_version",
                protocol,
                format!(
                    "client declares {}, server requires {server}; major and minor must match",
                    client.unwrap_or("<none>")
                )
                .as_str(),
            )]))
    }

    fn version_key(v: &str) -> Vec<u64> {
        v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
    }

    /// Python's `repr` of a list of strings.
    pub(crate) fn py_list(items: &[&str]) -> String {
        let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", quoted.join(", "))
    }
}

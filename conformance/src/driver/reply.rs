//! Building control responses: the two error channels and the log relay
//! (CLIENT_DRIVER_PROTOCOL §2, §3).
//!
//! `ok` describes the driver, `error` describes the call. Everything in an error object
//! comes from the client library's own error value; nothing is defaulted here.

use serde_json::{Map, Value, json};
use vgi_rpc::{Error, LogRecord};

/// A response object under construction.
pub(crate) type Reply = Map<String, Value>;

/// `{"ok": true}`.
pub(crate) fn ok() -> Reply {
    let mut reply = Map::new();
    reply.insert("ok".into(), Value::Bool(true));
    reply
}

/// `{"ok": false, "error": "<text>"}`: the driver could not carry the op out.
pub(crate) fn refused(text: impl Into<String>) -> Reply {
    let mut reply = Map::new();
    reply.insert("ok".into(), Value::Bool(false));
    reply.insert("error".into(), Value::String(text.into()));
    reply
}

/// The structured error object for an error the client library reported.
///
/// A remote error is relayed field by field; a local one (transport, framing) is the
/// client's own wire form of it (`Error::to_rpc`), so it is still a *call* error.
pub(crate) fn call_error(error: &Error) -> Value {
    let rpc = error.to_rpc();
    json!({
        "error_type": rpc.error_type,
        "error_message": rpc.message,
        "traceback": rpc.traceback,
        "error_code": rpc.code.as_str(),
        "error_kind": rpc.kind.unwrap_or_default(),
        "error_details": rpc.details,
    })
}

/// One log record in the relay's shape: upper-case level, message, flat extras.
pub(crate) fn log_json(record: &LogRecord) -> Value {
    json!({
        "level": record.level.as_str(),
        "message": record.message,
        "extra": Value::Object(record.extra.clone()),
    })
}

/// Attaches `logs` (drained by the caller) to `reply`.
pub(crate) fn with_logs(mut reply: Reply, logs: Vec<LogRecord>) -> Reply {
    reply.insert(
        "logs".into(),
        Value::Array(logs.iter().map(log_json).collect()),
    );
    reply
}

//! Decoding an EXCEPTION batch's metadata back into an [`RpcError`].
//!
//! Code, kind and details come from the top-level keys, falling back to the same fields in
//! `log_extra`; unknown detail types are kept.

use serde_json::Value;

use crate::wire::{Metadata, keys};
use crate::{ErrorCode, RpcError};

/// The error an EXCEPTION batch reports.
pub fn rpc_error_from_metadata(md: &Metadata) -> RpcError {
    let extra: serde_json::Map<String, Value> = md
        .get(keys::LOG_EXTRA)
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    let extra_str = |k: &str| extra.get(k).and_then(Value::as_str).map(str::to_owned);
    let log_message = md.get(keys::LOG_MESSAGE).unwrap_or_default();
    let error_type = extra_str("exception_type")
        .or_else(|| log_message.split_once(": ").map(|(t, _)| t.to_owned()))
        .unwrap_or_else(|| "RpcError".to_owned());
    let message = extra_str("exception_message").unwrap_or_else(|| {
        log_message
            .strip_prefix(&format!("{error_type}: "))
            .unwrap_or(log_message)
            .to_owned()
    });
    let code = md
        .get(keys::ERROR_CODE)
        .map(str::to_owned)
        .or_else(|| extra_str("error_code"))
        .and_then(|c| ErrorCode::parse(&c))
        .unwrap_or(ErrorCode::Unknown);
    let kind = md
        .get(keys::ERROR_KIND)
        .map(str::to_owned)
        .or_else(|| extra_str("error_kind"))
        .filter(|k| !k.is_empty());
    let details = md
        .get(keys::ERROR_DETAILS)
        .and_then(|d| serde_json::from_str::<Vec<Value>>(d).ok())
        .or_else(|| {
            extra
                .get("error_details")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default();
    RpcError {
        error_type,
        message,
        code,
        kind,
        details,
        traceback: extra_str("traceback").unwrap_or_default(),
        request_id: md.get(keys::REQUEST_ID).map(str::to_owned),
    }
}

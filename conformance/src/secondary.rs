//! `conformance.Secondary.v1`, the second application protocol every conformance worker
//! hosts (reference: `vgi_rpc/conformance/secondary.py`).
//!
//! It makes observable what a single-protocol worker hides: routing by (protocol, method)
//! pair (`echo_string` collides with the primary's and answers differently), a
//! per-protocol version gate (it declares no version), and the error model (`fail` raises
//! any code and kind with a fixed detail list; `fail_oversized` raises details over the
//! 4 KiB cap, which the server must drop whole).

use serde_json::{Value, json};
use vgi_rpc::ErrorCode;
use vgi_rpc::prelude::*;

use crate::pytext::python_str_repr;

/// Routing key of the protocol.
pub const SECONDARY_PROTOCOL_NAME: &str = "conformance.Secondary.v1";

/// What `echo_string` prepends.
pub const SECONDARY_ECHO_PREFIX: &str = "secondary:";

/// Kind `fail` answers with when asked for a code outside the closed set.
pub const INVALID_CODE_KIND: &str = "invalid_code";

/// Kind `fail_oversized` raises.
pub const OVERSIZED_KIND: &str = "details_oversized";

/// Size of the `ErrorInfo` padding `fail_oversized` carries (over the cap on its own).
pub const OVERSIZED_PADDING_BYTES: usize = 5000;

/// The error type name the reference's `StatusError` travels under.
const STATUS_ERROR: &str = "StatusError";

/// The fixture protocol hosted beside `ConformanceService`; no protocol version on
/// purpose.
#[vgi_rpc::service(protocol = "conformance.Secondary.v1")]
pub trait Secondary: Send + Sync + 'static {
    /// Return `"secondary:" + value`; collides with the primary's method.
    fn echo_string(&self, value: String) -> Result<String>;
    /// Raise an error with `code`, `kind` (absent when empty) and the fixed details.
    fn fail(&self, code: String, kind: String, retry_delay_seconds: f64) -> Result<()>;
    /// Raise an error whose details exceed the 4 KiB cap.
    fn fail_oversized(&self) -> Result<()>;
}

/// A `vgi_rpc.RetryInfo` detail; whole numbers travel as JSON integers, as the reference
/// writes them (`1`, not `1.0`).
pub fn retry_info(retry_delay_seconds: f64) -> Value {
    let whole = retry_delay_seconds.fract() == 0.0 && retry_delay_seconds.abs() < 9.0e15;
    let delay = if whole {
        json!(retry_delay_seconds as i64)
    } else {
        json!(retry_delay_seconds)
    };
    json!({"@type": "vgi_rpc.RetryInfo", "retry_delay_seconds": delay})
}

/// The detail array `fail` sends, in wire order: `ErrorInfo`, `RetryInfo` when the delay
/// is positive, then a detail type no client knows.
pub fn expected_fail_details(retry_delay_seconds: f64) -> Vec<Value> {
    let mut details = vec![json!({
        "@type": "vgi_rpc.ErrorInfo",
        "metadata": {"fixture": SECONDARY_PROTOCOL_NAME},
    })];
    if retry_delay_seconds > 0.0 {
        details.push(retry_info(retry_delay_seconds));
    }
    details.push(json!({
        "@type": format!("{SECONDARY_PROTOCOL_NAME}.Probe"),
        "note": "clients ignore detail types they do not know",
    }));
    details
}

/// The reference implementation of [`Secondary`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SecondaryImpl;

impl Secondary for SecondaryImpl {
    fn echo_string(&self, value: String) -> Result<String> {
        Ok(format!("{SECONDARY_ECHO_PREFIX}{value}"))
    }

    fn fail(&self, code: String, kind: String, retry_delay_seconds: f64) -> Result<()> {
        let Some(parsed) = ErrorCode::parse(&code) else {
            let error = RpcError::new(
                STATUS_ERROR,
                format!("{} is not a canonical error code", python_str_repr(&code)),
            )
            .with_code(ErrorCode::InvalidArgument)
            .with_kind(INVALID_CODE_KIND)
            .with_detail(json!({
                "@type": "vgi_rpc.BadRequest",
                "field_violations": [
                    {"field": "code", "description": "must be a canonical code name"},
                ],
            }));
            return Err(error.into());
        };
        let message = format!("{SECONDARY_PROTOCOL_NAME} fail: {code} {kind}");
        let mut error = RpcError::new(STATUS_ERROR, message.trim_end()).with_code(parsed);
        if !kind.is_empty() {
            error = error.with_kind(kind);
        }
        // An infinite delay has no JSON form; the reference then drops the whole detail
        // array (it is never trimmed), so no detail is sent at all.
        if retry_delay_seconds != f64::INFINITY {
            for detail in expected_fail_details(retry_delay_seconds) {
                error = error.with_detail(detail);
            }
        }
        Err(error.into())
    }

    fn fail_oversized(&self) -> Result<()> {
        let error = RpcError::new(
            STATUS_ERROR,
            format!("{SECONDARY_PROTOCOL_NAME} fail_oversized: details exceed 4 KiB"),
        )
        .with_code(ErrorCode::ResourceExhausted)
        .with_kind(OVERSIZED_KIND)
        .with_detail(retry_info(1.0))
        .with_detail(json!({
            "@type": "vgi_rpc.ErrorInfo",
            "metadata": {"padding": "x".repeat(OVERSIZED_PADDING_BYTES)},
        }));
        Err(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(result: Result<()>) -> RpcError {
        match result {
            Err(Error::Rpc(e)) => *e,
            other => panic!("expected an RPC error, got {other:?}"),
        }
    }

    #[test]
    fn echo_is_prefixed() -> Result<()> {
        assert_eq!(SecondaryImpl.echo_string("x".into())?, "secondary:x");
        Ok(())
    }

    #[test]
    fn fail_carries_code_kind_and_details() {
        let e = rpc(SecondaryImpl.fail("UNAVAILABLE".into(), "backend_down".into(), 1.5));
        assert_eq!(e.error_type, "StatusError");
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert_eq!(e.kind.as_deref(), Some("backend_down"));
        assert_eq!(
            e.message,
            "conformance.Secondary.v1 fail: UNAVAILABLE backend_down"
        );
        assert_eq!(e.details, expected_fail_details(1.5));
        assert_eq!(e.details.len(), 3);
        assert_eq!(e.details[1]["retry_delay_seconds"], json!(1.5));
    }

    #[test]
    fn fail_without_kind_or_delay() {
        let e = rpc(SecondaryImpl.fail("NOT_FOUND".into(), String::new(), 0.0));
        assert_eq!(e.kind, None);
        assert_eq!(e.message, "conformance.Secondary.v1 fail: NOT_FOUND");
        assert_eq!(e.details.len(), 2);
        assert_eq!(retry_info(7.0)["retry_delay_seconds"], json!(7));
        let e = rpc(SecondaryImpl.fail("ABORTED".into(), String::new(), f64::INFINITY));
        assert!(e.details.is_empty());
    }

    #[test]
    fn fail_refuses_non_canonical_codes() {
        let e = rpc(SecondaryImpl.fail("OK".into(), "x".into(), 0.0));
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert_eq!(e.kind.as_deref(), Some(INVALID_CODE_KIND));
        assert_eq!(e.message, "'OK' is not a canonical error code");
        assert_eq!(e.details[0]["@type"], json!("vgi_rpc.BadRequest"));
    }

    #[test]
    fn fail_oversized_details_exceed_the_cap() -> serde_json::Result<()> {
        let e = rpc(SecondaryImpl.fail_oversized());
        assert_eq!(e.code, ErrorCode::ResourceExhausted);
        assert!(serde_json::to_string(&e.details)?.len() > 4096);
        Ok(())
    }
}

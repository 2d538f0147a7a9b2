//! Typed constructors for the structured error details of the protocol.
//!
//! An [`RpcError`](super::RpcError) carries details as JSON objects with an `@type` key so
//! that unknown types survive a round trip. Writing those objects by hand invites typos
//! in the type names and field names a reference client parses, so every standard detail
//! type has a constructor here producing exactly the reference's JSON form, and the type
//! names are constants used everywhere else in the crate.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// `@type` of [`error_info`].
pub const ERROR_INFO: &str = "vgi_rpc.ErrorInfo";
/// `@type` of [`retry_info`].
pub const RETRY_INFO: &str = "vgi_rpc.RetryInfo";
/// `@type` of [`bad_request`].
pub const BAD_REQUEST: &str = "vgi_rpc.BadRequest";
/// `@type` of [`precondition_failure`].
pub const PRECONDITION_FAILURE: &str = "vgi_rpc.PreconditionFailure";
/// `@type` of [`quota_failure`].
pub const QUOTA_FAILURE: &str = "vgi_rpc.QuotaFailure";
/// `@type` of [`resource_info`].
pub const RESOURCE_INFO: &str = "vgi_rpc.ResourceInfo";
/// `@type` of [`help`].
pub const HELP: &str = "vgi_rpc.Help";
/// `@type` of [`localized_message`].
pub const LOCALIZED_MESSAGE: &str = "vgi_rpc.LocalizedMessage";

/// The detail types any protocol may raise (servers forward these unfiltered).
pub const STANDARD_TYPES: [&str; 8] = [
    ERROR_INFO,
    RETRY_INFO,
    BAD_REQUEST,
    PRECONDITION_FAILURE,
    QUOTA_FAILURE,
    RESOURCE_INFO,
    HELP,
    LOCALIZED_MESSAGE,
];

/// `vgi_rpc.ErrorInfo`: string-to-string context for the error's kind (never credentials
/// or user data).
pub fn error_info<'a>(metadata: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let metadata: Map<String, Value> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    json!({"@type": ERROR_INFO, "metadata": metadata})
}

/// `vgi_rpc.RetryInfo`: retry after `delay` (whole seconds are sent as an integer, as the
/// reference does).
pub fn retry_info(delay: Duration) -> Value {
    let secs = delay.as_secs_f64();
    let value = if delay.subsec_nanos() == 0 {
        json!(delay.as_secs())
    } else {
        json!(secs)
    };
    json!({"@type": RETRY_INFO, "retry_delay_seconds": value})
}

/// The delay of a well-formed `vgi_rpc.RetryInfo` detail (a non-negative number);
/// `None` for any other detail, as the reference treats a malformed one as absent.
pub fn parse_retry_info(detail: &Value) -> Option<Duration> {
    if detail.get("@type").and_then(Value::as_str) != Some(RETRY_INFO) {
        return None;
    }
    let secs = detail.get("retry_delay_seconds").and_then(Value::as_f64)?;
    Duration::try_from_secs_f64(secs).ok()
}

/// `vgi_rpc.BadRequest`: one `(field, description)` per invalid field.
pub fn bad_request<'a>(violations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let violations: Vec<Value> = violations
        .into_iter()
        .map(|(field, description)| json!({"field": field, "description": description}))
        .collect();
    json!({"@type": BAD_REQUEST, "field_violations": violations})
}

/// `vgi_rpc.PreconditionFailure`: one `(type, subject, description)` per failed check.
pub fn precondition_failure<'a>(
    violations: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Value {
    let violations: Vec<Value> = violations
        .into_iter()
        .map(|(kind, subject, description)| {
            json!({"type": kind, "subject": subject, "description": description})
        })
        .collect();
    json!({"@type": PRECONDITION_FAILURE, "violations": violations})
}

/// `vgi_rpc.QuotaFailure`: one `(subject, description)` per exceeded quota.
pub fn quota_failure<'a>(violations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let violations: Vec<Value> = violations
        .into_iter()
        .map(|(subject, description)| json!({"subject": subject, "description": description}))
        .collect();
    json!({"@type": QUOTA_FAILURE, "violations": violations})
}

/// `vgi_rpc.ResourceInfo`: the resource an error is about.
pub fn resource_info(
    resource_type: &str,
    resource_name: &str,
    owner: &str,
    description: &str,
) -> Value {
    json!({
        "@type": RESOURCE_INFO,
        "resource_type": resource_type,
        "resource_name": resource_name,
        "owner": owner,
        "description": description,
    })
}

/// `vgi_rpc.Help`: one `(description, url)` per link.
pub fn help<'a>(links: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let links: Vec<Value> = links
        .into_iter()
        .map(|(description, url)| json!({"description": description, "url": url}))
        .collect();
    json!({"@type": HELP, "links": links})
}

/// `vgi_rpc.LocalizedMessage`: the message in `locale` (e.g. `en-US`).
pub fn localized_message(locale: &str, message: &str) -> Value {
    json!({"@type": LOCALIZED_MESSAGE, "locale": locale, "message": message})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_match_the_reference() {
        assert_eq!(
            retry_info(Duration::from_secs(1)).to_string(),
            r#"{"@type":"vgi_rpc.RetryInfo","retry_delay_seconds":1}"#
        );
        assert_eq!(
            retry_info(Duration::from_millis(1500))["retry_delay_seconds"],
            json!(1.5)
        );
        assert_eq!(
            precondition_failure([("protocol_version", "P", "d")]),
            json!({"@type": "vgi_rpc.PreconditionFailure",
                   "violations": [{"type": "protocol_version", "subject": "P", "description": "d"}]})
        );
        assert_eq!(
            bad_request([("x", "must be positive")])["field_violations"][0]["field"],
            "x"
        );
        assert_eq!(error_info([("k", "v")])["metadata"]["k"], "v");
        assert_eq!(
            help([("docs", "https://e")])["links"][0]["url"],
            "https://e"
        );
        assert_eq!(localized_message("en", "m")["locale"], "en");
        assert_eq!(quota_failure([("s", "d")])["violations"][0]["subject"], "s");
        assert_eq!(resource_info("t", "n", "o", "d")["owner"], "o");
    }

    #[test]
    fn retry_info_round_trips_and_rejects_malformed() {
        let d = retry_info(Duration::from_millis(250));
        assert_eq!(parse_retry_info(&d), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_info(&json!({"@type": RETRY_INFO})), None);
        assert_eq!(
            parse_retry_info(&json!({"@type": RETRY_INFO, "retry_delay_seconds": -1})),
            None
        );
    }
}

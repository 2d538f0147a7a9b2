//! W3C trace context (`traceparent` / `tracestate`) to and from OpenTelemetry span
//! contexts.
//!
//! Parsed here rather than through an SDK propagator so that the `otel` feature needs
//! only the API crate. The accepted syntax is the reference's (the Python SDK's
//! `TraceContextTextMapPropagator`): lowercase hex, version `ff` refused, a version-00
//! header with exactly four fields, all-zero ids refused.

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

use crate::server::ids::random_u64;

/// The remote span context a `traceparent` (and optional `tracestate`) names, or `None`
/// when the header is malformed. A malformed `tracestate` is dropped, not fatal.
pub fn parse_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let (version, trace_id, span_id, flags) = match fixed_fields(traceparent) {
        Some(fields) => fields,
        None => split_fields(traceparent)?,
    };
    if !lower_hex(version, 2) || version == "ff" {
        return None;
    }
    if !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) || !lower_hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_bytes(crate::hex::decode_array(trace_id)?);
    let span_id = SpanId::from_bytes(crate::hex::decode_array(span_id)?);
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let [flags] = crate::hex::decode_array(flags)?;
    let state = tracestate
        .filter(|s| valid_tracestate(s))
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    ))
}

/// The four fields of a `traceparent` as every version-00 sender writes it: exactly
/// [`TRACEPARENT_LEN`] bytes, dashes at their places (found by position: splitting and
/// trimming was a tenth of the server's recording work per call).
fn fixed_fields(traceparent: &str) -> Option<(&str, &str, &str, &str)> {
    let b = traceparent.as_bytes();
    let fixed =
        b.len() == TRACEPARENT_LEN && b.starts_with(b"00-") && b[35] == b'-' && b[52] == b'-';
    fixed.then(|| {
        (
            &traceparent[..2],
            &traceparent[3..35],
            &traceparent[36..52],
            &traceparent[53..],
        )
    })
}

/// The fields of any other `traceparent`: blanks around it allowed, and versions after
/// 00 may append fields (00 may not).
fn split_fields(traceparent: &str) -> Option<(&str, &str, &str, &str)> {
    let mut fields = traceparent.trim().split('-');
    let version = fields.next()?;
    let trace_id = fields.next()?;
    let span_id = fields.next()?;
    let flags = fields.next()?;
    if version == "00" && fields.next().is_some() {
        return None;
    }
    Some((version, trace_id, span_id, flags))
}

pub(crate) use crate::wire::keys::TRACEPARENT_LEN;

/// A new random, valid (non-zero) trace id.
pub(crate) fn new_trace_id() -> TraceId {
    let bits = u128::from(random_u64()) << 64 | u128::from(random_u64());
    TraceId::from(bits.max(1))
}

/// A new random, valid (non-zero) span id.
pub(crate) fn new_span_id() -> SpanId {
    SpanId::from(random_u64().max(1))
}

/// The `traceparent` and (when not empty) `tracestate` values naming `context`, or
/// `None` for an invalid context (nothing to propagate).
pub fn format_traceparent(context: &SpanContext) -> Option<(String, Option<String>)> {
    if !context.is_valid() {
        return None;
    }
    let mut buf = [0; TRACEPARENT_LEN];
    let traceparent = write_traceparent(context, &mut buf).to_owned();
    let state = context.trace_state().header();
    Some((traceparent, (!state.is_empty()).then_some(state)))
}

/// Writes `context`'s `traceparent` into `buf` (from a table of digit pairs: `format!`
/// costs a few hundred nanoseconds, and every observed call makes one) and returns it.
pub(crate) fn write_traceparent<'a>(
    context: &SpanContext,
    buf: &'a mut [u8; TRACEPARENT_LEN],
) -> &'a str {
    let flags = context.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8();
    buf[..3].copy_from_slice(b"00-");
    crate::hex::write(&context.trace_id().to_bytes(), &mut buf[3..35]);
    buf[35] = b'-';
    crate::hex::write(&context.span_id().to_bytes(), &mut buf[36..52]);
    buf[52] = b'-';
    crate::hex::write(&[flags], &mut buf[53..]);
    // Not `from_utf8`: checking what was just written cost as much as writing it.
    // SAFETY: every byte of `buf` was written above, each an ASCII hex digit or a dash
    // (`hex::write` writes digit pairs from its table into the whole field it is given).
    #[allow(unsafe_code)]
    unsafe {
        std::str::from_utf8_unchecked(buf)
    }
}

/// W3C `tracestate` syntax: up to 32 `key=value` members separated by commas (optional
/// blanks around them); anything else drops the whole header, as the reference's
/// propagator does.
fn valid_tracestate(header: &str) -> bool {
    let members: Vec<&str> = header
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .collect();
    members.len() <= 32
        && members.iter().all(|member| {
            let Some((key, value)) = member.split_once('=') else {
                return false;
            };
            let key_ok = (1..=256).contains(&key.len())
                && key.bytes().all(
                    |b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'),
                )
                && key.as_bytes()[0].is_ascii_alphanumeric();
            let value_ok = (1..=256).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
                && !value.ends_with(' ');
            key_ok && value_ok
        })
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn round_trips_a_sampled_context_with_state() {
        let context = parse_traceparent(TP, Some("congo=t61rcWkgMzE")).unwrap();
        assert!(context.is_remote());
        assert!(context.is_sampled());
        let (tp, ts) = format_traceparent(&context).unwrap();
        assert_eq!(tp, TP);
        assert_eq!(ts.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn the_fixed_form_and_a_padded_one_parse_alike() {
        let fixed = parse_traceparent(TP, None).unwrap();
        assert!(
            fixed_fields(TP).is_some(),
            "the usual header takes the fixed path"
        );
        let padded = format!(" {TP}\t");
        assert!(fixed_fields(&padded).is_none());
        assert_eq!(parse_traceparent(&padded, None), Some(fixed));
        // A later version may append fields; 00 may not.
        let later = format!("01{}-extra", &TP[2..]);
        assert!(parse_traceparent(&later, None).is_some());
        assert!(parse_traceparent(&format!("{TP}-extra"), None).is_none());
        // Upper-case hex and a non-hex flag are refused on the fixed path too.
        assert!(parse_traceparent(&TP.to_uppercase(), None).is_none());
        assert!(parse_traceparent(&format!("{}0g", &TP[..53]), None).is_none());
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad, None).is_none(), "{bad:?}");
        }
        // A future version may carry more fields.
        let future = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more";
        assert!(parse_traceparent(future, None).is_some());
    }

    #[test]
    fn an_unsampled_parent_stays_unsampled_and_bad_state_is_dropped() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let context = parse_traceparent(tp, Some("=,=")).unwrap();
        assert!(!context.is_sampled());
        assert_eq!(format_traceparent(&context).unwrap(), (tp.to_owned(), None));
    }
}

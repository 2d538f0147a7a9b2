//! Bodies on the wire: request compression, bounded reading and decoding of answers, and
//! the errors for answers that are not Arrow streams (the reference client's texts, so a
//! caller sees the same error from either implementation).

use std::io::{self, Read, Write};

use crate::wire::{self, Limits};
use crate::{Error, ErrorCode, Result, RpcError};

/// A content coding both ends know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Zstd,
    Gzip,
}

impl Codec {
    pub(super) fn token(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
        }
    }

    /// A coding token as sent in `Content-Encoding` (case and spaces ignored).
    pub(super) fn parse(token: &str) -> Option<Codec> {
        match token.trim().to_ascii_lowercase().as_str() {
            "zstd" => Some(Codec::Zstd),
            "gzip" => Some(Codec::Gzip),
            _ => None,
        }
    }

    /// The request codec for a server advertising `supported`: the first of ours
    /// (zstd, gzip) it lists, else zstd (the reference client's fallback, which every
    /// server decodes even when it compresses nothing itself).
    pub(super) fn for_server(supported: &[String]) -> Codec {
        [Codec::Zstd, Codec::Gzip]
            .into_iter()
            .find(|c| supported.iter().any(|s| s == c.token()))
            .unwrap_or(Codec::Zstd)
    }

    /// Compresses a request body; `level` is zstd's (gzip uses its default, 6).
    pub(super) fn compress(self, body: &[u8], level: i32) -> Result<Vec<u8>> {
        match self {
            Codec::Zstd => Ok(super::super::zstd_ctx::compress(body, level)?),
            Codec::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 2),
                    flate2::Compression::default(),
                );
                enc.write_all(body)?;
                Ok(enc.finish()?)
            }
        }
    }

    /// Decodes an answer body, stopping once it passes `limit` bytes (the caller's
    /// accepted maximum).
    pub(super) fn decompress(self, body: &[u8], limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let read = match self {
            Codec::Zstd => zstd::stream::read::Decoder::new(body)?
                .take(limit.saturating_add(1))
                .read_to_end(&mut out),
            Codec::Gzip => flate2::read::MultiGzDecoder::new(body)
                .take(limit.saturating_add(1))
                .read_to_end(&mut out),
        };
        read.map_err(|e| {
            Error::protocol(format!(
                "cannot decode the {} answer body: {e}",
                self.token()
            ))
        })?;
        check_size(out.len(), limit)?;
        Ok(out)
    }
}

/// The reference's error for a decoded answer larger than the accepted maximum.
pub(super) fn check_size(len: usize, limit: u64) -> Result<()> {
    if u64::try_from(len).unwrap_or(u64::MAX) > limit {
        return Err(RpcError::new(
            "ResponseTooLargeError",
            format!("Decoded HTTP response exceeds accepted_max_response_bytes ({len} > {limit})"),
        )
        .with_code(ErrorCode::ResourceExhausted)
        .into());
    }
    Ok(())
}

/// An answer body that is not an Arrow IPC stream: the reference client's `HttpError`.
pub(super) fn require_arrow(status: u16, body: &[u8]) -> Result<()> {
    if wire::read_stream_start(&mut &body[..], &Limits::default()).is_ok() {
        return Ok(());
    }
    let preview = String::from_utf8_lossy(&body[..body.len().min(200)]);
    Err(RpcError::new(
        "HttpError",
        format!(
            "HTTP {status}: response is not a valid Arrow IPC stream (first 200 bytes: {})",
            py_repr(&preview)
        ),
    )
    .into())
}

/// Stream starts (the schema message's bytes) of answers already read as Arrow by
/// [`require_arrow`]: an answer starting with the same bytes passes the same check, so
/// calls to one method do not parse their answer schema twice (the engine parses it
/// again anyway). A handful are kept; the check is a byte comparison.
#[derive(Debug, Default)]
pub(super) struct ArrowHeads {
    heads: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// Stream starts an [`ArrowHeads`] keeps, the oldest dropped first.
const KEPT_HEADS: usize = 16;

impl ArrowHeads {
    /// Whether `body` starts with a stream start already read.
    pub(super) fn known(&self, body: &[u8]) -> bool {
        self.heads
            .lock()
            .is_ok_and(|heads| heads.iter().any(|head| body.starts_with(head)))
    }

    /// Keeps the start of `body`, which [`require_arrow`] accepted: the bytes
    /// `read_stream_start` consumed, which is all it looks at.
    pub(super) fn learn(&self, body: &[u8]) {
        let mut rest = body;
        if wire::read_stream_start(&mut rest, &Limits::default()).is_err() {
            return;
        }
        let head = &body[..body.len() - rest.len()];
        if let Ok(mut heads) = self.heads.lock() {
            if heads.len() >= KEPT_HEADS {
                heads.remove(0);
            }
            heads.push(head.to_vec());
        }
    }
}

/// A 401 answer: the JSON envelope `{"error", "reason", "detail", "proxy_hint"}` as an
/// `AuthenticationError` (HTML pages and other bodies degrade as the reference's do; the
/// reason then comes from `VGI-Auth-Reason`, `header_reason`, when the server sent one).
pub(super) fn unauthorized(body: &[u8], header_reason: Option<&str>) -> Error {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(body).ok();
    let field = |map: &serde_json::Map<String, serde_json::Value>, k: &str| {
        map.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (reason, detail, hint) = match &parsed {
        Some(map) => (
            field(map, "reason"),
            field(map, "detail"),
            field(map, "proxy_hint"),
        ),
        None => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            let lower = text.to_ascii_lowercase();
            let detail = if lower.starts_with("<!doctype") || lower.starts_with("<html") {
                "server returned an HTML 401 page instead of the JSON error envelope".to_owned()
            } else if text.is_empty() {
                "unauthorized".to_owned()
            } else {
                text.chars().take(512).collect()
            };
            (String::new(), detail, String::new())
        }
    };
    let reason = match (reason.is_empty(), header_reason) {
        (false, _) => reason,
        (true, Some(from_header)) if !from_header.is_empty() => from_header.to_owned(),
        (true, _) => "unauthorized".to_owned(),
    };
    let mut message = if detail.is_empty() {
        reason.clone()
    } else {
        detail
    };
    if !hint.is_empty() {
        message = format!("{message}\n\n{hint}");
    }
    RpcError::new("AuthenticationError", message)
        .with_code(ErrorCode::Unauthenticated)
        .with_kind(reason)
        .into()
}

/// Python's `repr()` of a string, as the reference quotes body previews.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An I/O error of the given kind (for errors met while reading a body).
pub(super) fn io_error(kind: io::ErrorKind, msg: impl Into<String>) -> Error {
    Error::Io(io::Error::new(kind, msg.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codecs_round_trip_and_the_decoded_size_is_bounded() {
        let body = vec![7u8; 100_000];
        for codec in [Codec::Zstd, Codec::Gzip] {
            let packed = codec.compress(&body, 1).unwrap();
            assert!(packed.len() < body.len());
            assert_eq!(codec.decompress(&packed, 100_000).unwrap(), body);
            let err = codec.decompress(&packed, 65_536).unwrap_err();
            assert!(
                err.to_string()
                    .contains("exceeds accepted_max_response_bytes (65537 > 65536)"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_request_codec_follows_the_server() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(Codec::for_server(&list(&["gzip"])), Codec::Gzip);
        assert_eq!(Codec::for_server(&list(&["gzip", "zstd"])), Codec::Zstd);
        assert_eq!(Codec::for_server(&[]), Codec::Zstd);
    }

    #[test]
    fn non_arrow_bodies_and_401s_read_like_the_reference() {
        let err = require_arrow(413, b"{\"title\": \"x\"}").unwrap_err();
        let rpc = err.as_rpc().unwrap();
        assert_eq!(rpc.error_type, "HttpError");
        assert_eq!(
            rpc.message,
            "HTTP 413: response is not a valid Arrow IPC stream (first 200 bytes: '{\"title\": \"x\"}')"
        );
        let auth = unauthorized(
            br#"{"error":"unauthorized","reason":"expired_credential","detail":"authentication rejected"}"#,
            Some("invalid_credential"),
        );
        let rpc = auth.as_rpc().unwrap();
        assert_eq!(rpc.error_type, "AuthenticationError");
        assert_eq!(rpc.message, "authentication rejected");
        assert_eq!(rpc.code, ErrorCode::Unauthenticated);
        assert_eq!(
            rpc.kind.as_deref(),
            Some("expired_credential"),
            "the body wins"
        );
        let from_gateway = unauthorized(b"<html>sign in</html>", Some("missing_credential"));
        let rpc = from_gateway.as_rpc().unwrap();
        assert_eq!(
            rpc.kind.as_deref(),
            Some("missing_credential"),
            "then the header"
        );
        assert!(rpc.message.contains("HTML 401 page"));
        let bare = unauthorized(b"", None);
        assert_eq!(bare.as_rpc().unwrap().kind.as_deref(), Some("unauthorized"));
        assert_eq!(py_repr("it's"), "\"it's\"");
    }
}

//! Content codings: request bodies the client compressed, and answers compressed the way
//! the client asked.
//!
//! Requests may arrive zstd- or gzip-coded; the decoded size is capped as strictly as the
//! raw size (a small body must not inflate past the limit), checked while decoding so a
//! bomb never allocates more than the cap. Answers are coded with the first coding the
//! client lists that we produce (`X-VGI-Accept-Encoding` before `Accept-Encoding`;
//! q-values are ignored, as the reference does), and `identity` met first means none.

use std::io::Read;

/// A coding we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Zstd,
    Gzip,
}

impl Coding {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding `token` names, case aside.
    fn parse(token: &str) -> Option<Coding> {
        [Coding::Zstd, Coding::Gzip]
            .into_iter()
            .find(|c| token.eq_ignore_ascii_case(c.name()))
    }
}

/// Why a request body could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// 415: a coding we do not read.
    Unsupported(String),
    /// 413: decoded past the cap.
    TooLarge(Coding),
    /// 400: the bytes are not valid for the coding.
    Corrupt(Coding, String),
    /// 503: the decoded body does not fit the server's memory budget.
    OverBudget,
}

/// Decodes `body` coded as `content_encoding` (already trimmed), producing at most `cap`
/// bytes.
pub(crate) fn decode_body(
    content_encoding: &str,
    body: Vec<u8>,
    cap: usize,
) -> Result<Vec<u8>, DecodeError> {
    if content_encoding.is_empty() {
        return Ok(body);
    }
    if content_encoding.eq_ignore_ascii_case("identity") {
        return Err(DecodeError::Unsupported(format!(
            "Content-Encoding '{content_encoding}' is not enabled on this server; supported: zstd, gzip"
        )));
    }
    let coding = Coding::parse(content_encoding).ok_or_else(|| {
        DecodeError::Unsupported(format!(
            "Content-Encoding '{content_encoding}' is not supported by this server"
        ))
    })?;
    if coding == Coding::Zstd {
        // The common case (a frame declaring its size, as every zstd client writes it)
        // goes through this thread's reused context.
        match super::super::zstd_ctx::decompress_declared(&body, cap) {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => {}
            Err(e) => return Err(DecodeError::Corrupt(coding, e.to_string())),
        }
    }
    let mut out = Vec::new();
    let limit = cap as u64 + 1;
    let read = match coding {
        Coding::Zstd => zstd::stream::read::Decoder::new(&body[..])
            .and_then(|d| d.take(limit).read_to_end(&mut out)),
        Coding::Gzip => flate2::read::MultiGzDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut out),
    };
    match read {
        Ok(_) if out.len() > cap => Err(DecodeError::TooLarge(coding)),
        Ok(_) => Ok(out),
        Err(e) => Err(DecodeError::Corrupt(coding, e.to_string())),
    }
}

/// The coding to answer with, and whether it is announced in `X-VGI-Content-Encoding`
/// (the client asked for it only in `X-VGI-Accept-Encoding`) rather than
/// `Content-Encoding`.
pub(crate) fn negotiate(
    vgi_accept: Option<&str>,
    accept: Option<&str>,
    enabled: bool,
) -> Option<(Coding, bool)> {
    if !enabled {
        return None;
    }
    let custom = tokens(vgi_accept);
    let standard = tokens(accept);
    let order = custom
        .clone()
        .chain(standard.clone().filter(|t| !listed(custom.clone(), t)));
    for token in order {
        if token.eq_ignore_ascii_case("identity") {
            return None;
        }
        if let Some(coding) = Coding::parse(token) {
            let custom_only = listed(custom.clone(), token) && !listed(standard.clone(), token);
            return Some((coding, custom_only));
        }
    }
    None
}

/// A header's coding tokens, parameters (`;q=…`) dropped, read in place (every request
/// is negotiated: no copies per request); compared case-insensitively where used.
fn tokens(header: Option<&str>) -> impl Iterator<Item = &str> + Clone {
    header
        .unwrap_or_default()
        .split(',')
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.is_empty())
}

/// Whether `list` holds `token`, case aside.
fn listed<'a>(mut list: impl Iterator<Item = &'a str>, token: &str) -> bool {
    list.any(|t| t.eq_ignore_ascii_case(token))
}

/// Codes an answer body.
pub(crate) fn encode(coding: Coding, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match coding {
        Coding::Zstd => super::super::zstd_ctx::compress(body, 1),
        Coding::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 2),
                flate2::Compression::new(6),
            );
            enc.write_all(body)?;
            enc.finish()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_reference() {
        let n = |x: Option<&str>, a: Option<&str>| negotiate(x, a, true);
        assert_eq!(n(None, None), None);
        assert_eq!(n(None, Some("zstd")), Some((Coding::Zstd, false)));
        assert_eq!(
            n(None, Some("gzip;q=0.1, zstd")),
            Some((Coding::Gzip, false))
        );
        assert_eq!(n(None, Some("identity, zstd")), None);
        assert_eq!(n(None, Some("br, deflate")), None);
        assert_eq!(n(None, Some("*")), None);
        assert_eq!(n(Some("gzip"), None), Some((Coding::Gzip, true)));
        assert_eq!(n(Some("gzip"), Some("gzip")), Some((Coding::Gzip, false)));
        assert_eq!(n(Some("zstd"), Some("gzip")), Some((Coding::Zstd, true)));
        assert_eq!(n(Some("identity"), Some("gzip")), None);
        assert_eq!(
            n(Some("zstd, gzip"), Some("zstd, gzip")),
            Some((Coding::Zstd, false))
        );
        assert_eq!(negotiate(None, Some("zstd"), false), None);
        assert_eq!(
            n(Some(" ZSTD ;q=1"), Some("Identity")),
            Some((Coding::Zstd, true))
        );
        assert_eq!(n(None, Some("IDENTITY, gzip")), None);
        assert_eq!(n(Some("Gzip"), Some("gzip")), Some((Coding::Gzip, false)));
    }

    #[test]
    fn decoding_caps_bombs_and_refuses_garbage() {
        let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).unwrap();
        assert!(matches!(
            decode_body("zstd", bomb.clone(), 4096),
            Err(DecodeError::TooLarge(Coding::Zstd))
        ));
        assert_eq!(decode_body("ZSTD", bomb, 1 << 20).unwrap().len(), 1 << 20);
        let gz = encode(Coding::Gzip, &vec![1u8; 100_000]).unwrap();
        assert!(matches!(
            decode_body("gzip", gz, 4096),
            Err(DecodeError::TooLarge(Coding::Gzip))
        ));
        assert!(matches!(
            decode_body("zstd", b"garbage".to_vec(), 4096),
            Err(DecodeError::Corrupt(Coding::Zstd, _))
        ));
        assert!(matches!(
            decode_body("identity", vec![], 4096),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode_body("br", vec![], 4096),
            Err(DecodeError::Unsupported(_))
        ));
        assert_eq!(decode_body("", b"abc".to_vec(), 2).unwrap(), b"abc");
    }
}

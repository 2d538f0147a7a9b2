//! One POST and its answer: the request built from the headers every call carries, sent
//! through reqwest, and the answer read within the accepted budget and decoded.

use std::io;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::body::{self, Codec};
use super::failure::{Failure, header_value};
use super::{Shared, Target, retry, sticky};
use crate::Error;
use crate::RpcError;

static ACCEPT_MAX_SUPPORT: HeaderName =
    HeaderName::from_static("vgi-accept-max-response-bytes-support");
static X_VGI_CONTENT_ENCODING: HeaderName = HeaderName::from_static("x-vgi-content-encoding");
/// The most an answer buffer is sized for before its bytes arrive.
const PRESIZE_MAX: u64 = 16 << 20;

/// One answer, status screened and body decoded.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Shared {
    /// POSTs one request body and reads the answer with the budget's bound.
    pub(super) async fn post(
        &self,
        url: &Target,
        body: &[u8],
        codec: Option<(Codec, i32)>,
        retryable: bool,
        trace: &[(&'static str, String)],
    ) -> std::result::Result<Answer, Failure> {
        let (payload, coding) = match codec {
            Some((codec, level)) => (codec.compress(body, level)?, Some(codec.token())),
            None => (body.to_vec(), None),
        };
        // Shared, so a retry resends it without a copy.
        let payload = axum::body::Bytes::from(payload);
        let limit = self.options.accept_max_response_bytes;
        let policy = if retryable {
            &self.options.retry
        } else {
            &None
        };
        let mut response = retry::send(&self.http, policy, retryable, || {
            let mut request = match url {
                Target::Parsed(url) => reqwest::Request::new(reqwest::Method::POST, url.clone()),
                // Does not parse: reqwest says why.
                Target::Raw(url) => self
                    .http
                    .post(url.as_str())
                    .build()
                    .map_err(Failure::Request)?,
            };
            // The caller's headers and ours, merged once at connect (`post_headers`).
            let headers = request.headers_mut();
            *headers = self.post_headers.clone();
            if let Some(coding) = coding {
                headers.insert(
                    reqwest::header::CONTENT_ENCODING,
                    HeaderValue::from_static(coding),
                );
            }
            for (name, value) in trace {
                headers.append(*name, header_value(value)?);
            }
            if let Some(sessions) = self.options.sticky.as_ref() {
                sticky::decorate(headers, &self.headers, sessions)?;
            }
            *request.body_mut() = Some(payload.clone().into());
            Ok(request)
        })
        .await?;
        if let Some(sessions) = &self.options.sticky {
            sticky::capture(sessions, response.headers());
        }
        let mut support = response.headers().get_all(&ACCEPT_MAX_SUPPORT).iter();
        if !(support.next().is_some_and(|v| v.as_bytes() == b"true") && support.next().is_none()) {
            return Err(RpcError::new(
                "ProtocolError",
                "Every capped RPC response must contain exactly one VGI-Accept-Max-Response-Bytes-Support: true field",
            )
            .into());
        }
        let status = response.status();
        // Taken, not copied: the body's decoder was set up when the head arrived.
        let headers = std::mem::take(response.headers_mut());
        // Sized once from the declared length (within the budget, and only so far ahead
        // of the bytes that arrive), not grown by copies.
        let declared = response
            .content_length()
            .unwrap_or(0)
            .min(limit)
            .min(PRESIZE_MAX);
        let mut raw = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(Failure::Request)? {
            raw.extend_from_slice(&chunk);
            if u64::try_from(raw.len()).unwrap_or(u64::MAX) > limit
                && content_coding(&headers).is_none()
            {
                let read = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
                body::check_size(raw.len().min(read), limit)?;
            }
            if raw.len() as u64 > limit.saturating_mul(64) {
                return Err(body::io_error(
                    io::ErrorKind::InvalidData,
                    "the compressed answer body is implausibly large",
                )
                .into());
            }
        }
        let body = match content_coding(&headers) {
            Some(Ok(codec)) => codec.decompress(&raw, limit)?,
            Some(Err(token)) => {
                return Err(Error::protocol(format!(
                    "the server answered with an unknown content coding {token:?}"
                ))
                .into());
            }
            None => raw,
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Screens an answer's status: Arrow bodies go to the engine whatever the status.
    pub(super) fn finish(&self, answer: Answer) -> crate::Result<Vec<u8>> {
        let status = answer.status.as_u16();
        if answer.status == StatusCode::UNAUTHORIZED {
            let reason = answer
                .headers
                .get("vgi-auth-reason")
                .and_then(|v| v.to_str().ok());
            return Err(body::unauthorized(&answer.body, reason));
        }
        if answer.status == StatusCode::PAYLOAD_TOO_LARGE {
            return Err(RpcError::new(
                "RequestTooLarge",
                "Request exceeds max_request_bytes and the server does not advertise upload_url_support",
            )
            .with_code(crate::ErrorCode::ResourceExhausted)
            .into());
        }
        if !self.arrow_heads.known(&answer.body) {
            body::require_arrow(status, &answer.body)?;
            self.arrow_heads.learn(&answer.body);
        }
        Ok(answer.body)
    }
}

/// The answer's content coding: `Content-Encoding`, else `X-VGI-Content-Encoding`;
/// `identity` is none. `Err` carries a coding this client cannot decode.
fn content_coding(headers: &HeaderMap) -> Option<std::result::Result<Codec, String>> {
    let token = headers
        .get(reqwest::header::CONTENT_ENCODING)
        .or_else(|| headers.get(&X_VGI_CONTENT_ENCODING))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v != "identity")?;
    Some(Codec::parse(&token).ok_or(token))
}

//! Building responses: Arrow answers (compressed as negotiated), the JSON and HTML
//! bodies the reference sends for faults its web framework answers, and the headers
//! every response carries (capabilities and `X-Request-ID`).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::calls::ARROW_STREAM;
use super::encoding::{self, Coding, negotiate};
use crate::server::oneshot::BodyPart;

/// Header names the server reads or writes on every request, parsed once (a name given
/// as a string is parsed and hashed on every lookup).
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static X_VGI_ACCEPT_ENCODING: HeaderName =
    HeaderName::from_static("x-vgi-accept-encoding");
pub(crate) static X_VGI_CONTENT_ENCODING: HeaderName =
    HeaderName::from_static("x-vgi-content-encoding");
pub(crate) static X_VGI_RPC_ERROR: HeaderName = HeaderName::from_static("x-vgi-rpc-error");
pub(crate) static ACCEPT_MAX_RESPONSE_BYTES: HeaderName =
    HeaderName::from_static("vgi-accept-max-response-bytes");
/// The capability every response carries (`App::capabilities` always holds it).
static ACCEPT_MAX_RESPONSE_BYTES_SUPPORT: HeaderName =
    HeaderName::from_static("vgi-accept-max-response-bytes-support");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The coding an answer to `request` gets: `(coding, announced in
/// X-VGI-Content-Encoding)`, or `None` for none.
pub(crate) fn coding_for(app: &App, request: &HeaderMap) -> Option<(Coding, bool)> {
    let text = |name: &HeaderName| request.get(name).and_then(|v| v.to_str().ok());
    negotiate(
        text(&X_VGI_ACCEPT_ENCODING),
        text(&header::ACCEPT_ENCODING),
        app.options.compression,
    )
}

/// An Arrow body in parts, coded with `coding` (on the engine's thread: compressing a
/// large answer must not stall an async worker). A coded body is one part.
pub(crate) fn encode_body(
    coding: Option<(Coding, bool)>,
    parts: Vec<BodyPart>,
) -> (Vec<BodyPart>, Option<(Coding, bool)>) {
    let len: usize = parts.iter().map(BodyPart::len).sum();
    match coding {
        // Smaller bodies go as they are: coding them costs more than it saves (the
        // shared suite allows a floor up to 1 KiB).
        Some((c, custom)) if len >= COMPRESS_FROM => {
            let mut body = Vec::with_capacity(len);
            for part in &parts {
                body.extend_from_slice(part.as_slice());
            }
            match encoding::encode(c, &body) {
                Ok(packed) => (vec![BodyPart::Owned(packed)], Some((c, custom))),
                Err(_) => (vec![BodyPart::Owned(body)], None),
            }
        }
        _ => (parts, None),
    }
}

/// Answers shorter than this are sent uncompressed.
const COMPRESS_FROM: usize = 1024;

/// An Arrow answer whose body (in parts) is already coded as `coding` says; its headers
/// start as a copy of the app's [`arrow_headers`] (no per-answer hashing of them).
pub(crate) fn arrow(
    app: &App,
    status: u16,
    body: Vec<BodyPart>,
    failed: bool,
    coding: Option<(Coding, bool)>,
) -> Response {
    let body = match <[BodyPart; 1]>::try_from(body) {
        Ok([BodyPart::Owned(bytes)]) => Body::from(bytes),
        Ok([part]) => Body::new(Parts::new(vec![part])),
        Err(parts) => Body::new(Parts::new(parts)),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    *headers = app.arrow_headers.clone();
    if failed {
        headers.insert(X_VGI_RPC_ERROR.clone(), HeaderValue::from_static("true"));
    }
    if let Some((coding, custom)) = coding {
        let name = if custom {
            X_VGI_CONTENT_ENCODING.clone()
        } else {
            header::CONTENT_ENCODING
        };
        headers.insert(name, HeaderValue::from_static(coding.name()));
    }
    response
}

/// A body sent as its parts, one data frame each, with its exact length declared (so
/// it goes out with `Content-Length`, as a one-buffer body does).
struct Parts {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Parts {
    fn new(parts: Vec<BodyPart>) -> Self {
        let parts: std::collections::VecDeque<Bytes> = parts
            .into_iter()
            .filter(|part| part.len() > 0)
            .map(|part| match part {
                BodyPart::Owned(bytes) => Bytes::from(bytes),
                // Sent from the array's own memory, kept alive until written.
                BodyPart::Shared(buffer) => Bytes::from_owner(buffer),
            })
            .collect();
        let remaining = parts.iter().map(|part| part.len() as u64).sum();
        Parts { parts, remaining }
    }
}

impl hyper::body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(this.parts.pop_front().map(|part| {
            this.remaining -= part.len() as u64;
            Ok(hyper::body::Frame::data(part))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

/// A JSON fault body in the reference's shape: `{"title": …, "description": …}`.
pub(crate) fn json_error(status: StatusCode, title: &str, description: Option<&str>) -> Response {
    let mut value = serde_json::json!({ "title": title });
    if let Some(description) = description {
        value["description"] = description.into();
    }
    json(status, value.to_string())
}

/// A JSON body.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `405` with the methods the path allows.
pub(crate) fn not_allowed(allow: &'static str) -> Response {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "405 Method Not Allowed",
        None,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `404` for a path no route matches.
pub(crate) fn not_found_html() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))],
        "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>",
    )
        .into_response()
}

/// `200` to an `OPTIONS` request.
pub(crate) fn options(allow: &'static str, json_type: bool) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if json_type {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// What a request says about CORS: its `Origin`, and whether it is a preflight.
pub(crate) struct Cors {
    origin: Option<HeaderValue>,
    preflight: bool,
    request_headers: Option<HeaderValue>,
}

impl Cors {
    pub(crate) fn of(method: &axum::http::Method, headers: &HeaderMap) -> Cors {
        Cors {
            origin: headers.get(header::ORIGIN).cloned(),
            preflight: method == axum::http::Method::OPTIONS
                && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
            request_headers: headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
        }
    }

    /// Whether this is a preflight the server answers itself (CORS on, an origin given).
    pub(crate) fn answers_preflight(&self, app: &App) -> bool {
        !app.options.cors_origins.is_empty() && self.preflight && self.origin.is_some()
    }

    fn allowed(&self, app: &App) -> Option<&HeaderValue> {
        let origin = self.origin.as_ref()?;
        let text = origin.to_str().ok()?;
        app.options
            .cors_origins
            .iter()
            .any(|o| o == "*" || o == text)
            .then_some(origin)
    }
}

/// The answer to a CORS preflight.
pub(crate) fn preflight(app: &App, cors: &Cors) -> Response {
    let mut response = options("GET, POST", false);
    let headers = response.headers_mut();
    if cors.allowed(app).is_some() {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        let allow = cors
            .request_headers
            .clone()
            .unwrap_or(HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}

/// Adds the CORS headers of a response to an allowed origin (all of them only then;
/// `Cross-Origin-Resource-Policy` whenever CORS is on).
pub(crate) fn with_cors(app: &App, cors: &Cors, mut response: Response) -> Response {
    if app.options.cors_origins.is_empty() {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    if let Some(origin) = cors.allowed(app) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, app.expose.clone());
    }
    response
}

/// Adds what every response carries: the capability headers and `X-Request-ID`.
pub(crate) fn finish(app: &App, request_id: &HeaderValue, mut response: Response) -> Response {
    let headers = response.headers_mut();
    // An Arrow answer has them already (`arrow`), and it always has this one.
    if !headers.contains_key(&ACCEPT_MAX_RESPONSE_BYTES_SUPPORT) {
        headers.reserve(app.capabilities.len() + 1);
        for (name, value) in &app.capabilities {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    response
}

/// The headers every Arrow answer starts with: its content type and the capabilities
/// (built once per app, copied per answer).
pub(crate) fn arrow_headers(capabilities: &[(HeaderName, HeaderValue)]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(capabilities.len() + 4);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
    for (name, value) in capabilities {
        headers.insert(name.clone(), value.clone());
    }
    headers
}

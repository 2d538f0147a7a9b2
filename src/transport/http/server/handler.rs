//! The one request handler: path parsing, methods, body reading and the hand-off to
//! where the engine may block (`conn.rs`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;

use super::App;
use super::calls::{self, Kind, Post, reserved_error};
use super::encoding::{DecodeError, decode_body};
use super::reply::{self, json, json_error, not_allowed, not_found_html};
use super::unauthorized;
use crate::server::oneshot::{OneShot, TraceHeaders};
use crate::server::{AuthContext, Peer, TransportKind};
use crate::wire::{Reservation, keys};

/// Serves every request of the router.
pub(crate) async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let request_id = match request.headers().get(&reply::X_REQUEST_ID) {
        Some(id) if !id.is_empty() => id.clone(),
        _ => HeaderValue::from_str(&crate::server::ids::random_hex(16))
            .unwrap_or_else(|_| HeaderValue::from_static("0000000000000000")),
    };
    if app
        .server
        .inner
        .notify_serve_start(TransportKind::Http)
        .is_err()
    {
        // Not yet started (the hook logged why): this request fails, the next retries.
        let response = json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
            None,
        );
        return reply::finish(&app, &request_id, response);
    }
    if app.options.cors_origins.is_empty() {
        // No CORS: nothing of it to read or add.
        let response = dispatch(&app, request, &request_id).await;
        return reply::finish(&app, &request_id, response);
    }
    let cors = reply::Cors::of(request.method(), request.headers());
    let response = if cors.answers_preflight(&app) {
        reply::preflight(&app, &cors)
    } else {
        dispatch(&app, request, &request_id).await
    };
    let response = reply::with_cors(&app, &cors, response);
    reply::finish(&app, &request_id, response)
}

/// Requests served without authentication: CORS preflights and other `OPTIONS`, the
/// well-known discovery documents, and the health probe (orchestrators call it bare).
fn exempt(method: &Method, path: &str, prefix: &str) -> bool {
    let health = path
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("/health"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    *method == Method::OPTIONS || path.starts_with("/.well-known/") || health
}

/// What a path addresses.
enum Target {
    Health,
    Rpc {
        protocol: String,
        method: String,
        kind: Kind,
    },
    Reserved(String),
    /// `__upload_url__/init` (served when the server vends upload URLs).
    UploadUrls,
    NotFoundJson,
    NotFoundHtml,
}

fn target(path: &str, prefix: &str) -> Target {
    let Some(rest) = path.strip_prefix(prefix) else {
        return Target::NotFoundHtml;
    };
    let Some(rest) = rest.strip_prefix('/') else {
        return Target::NotFoundHtml;
    };
    // At most three segments mean anything; decoded without copies unless escaped.
    let mut segments: [Cow<'_, str>; 3] = Default::default();
    let mut count = 0;
    for segment in rest.split('/') {
        let Some(slot) = segments.get_mut(count) else {
            return Target::NotFoundHtml;
        };
        *slot = if segment.contains('%') {
            Cow::Owned(percent_decode(segment))
        } else {
            Cow::Borrowed(segment)
        };
        count += 1;
    }
    match &segments[..count] {
        [name] if name == "health" => Target::Health,
        [name] if name.len() > 4 && name.starts_with("__") && name.ends_with("__") => {
            Target::Reserved(name.clone().into_owned())
        }
        [_] => Target::NotFoundJson,
        [name, last] if name == keys::UPLOAD_URL_METHOD && last == "init" => Target::UploadUrls,
        [protocol, method] => rpc(protocol, method, Kind::Unary),
        [protocol, method, last] if last == "init" => rpc(protocol, method, Kind::Init),
        [protocol, method, last] if last == "exchange" => rpc(protocol, method, Kind::Exchange),
        _ => Target::NotFoundHtml,
    }
}

fn rpc(protocol: &str, method: &str, kind: Kind) -> Target {
    if protocol.is_empty() || method.is_empty() {
        return Target::NotFoundHtml;
    }
    Target::Rpc {
        protocol: protocol.to_owned(),
        method: method.to_owned(),
        kind,
    }
}

async fn dispatch(app: &Arc<App>, request: Request, request_id: &HeaderValue) -> Response {
    let (parts, body) = request.into_parts();
    let socket = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let remote = socket.map(|addr| ip_text(addr.ip()));
    let auth = if exempt(&parts.method, parts.uri.path(), &app.options.prefix) {
        AuthContext::anonymous()
    } else {
        match unauthorized::authenticate(app, &parts, socket).await {
            Ok(auth) => auth,
            Err(refusal) => return refusal,
        }
    };
    // Only hooks read it: without one, no copy per request.
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .filter(|_| !app.server.inner.hooks.is_empty())
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let peer = Peer::new(TransportKind::Http, remote)
        .with_auth(auth)
        .with_user_agent(user_agent);
    let target = match target(parts.uri.path(), &app.options.prefix) {
        // Without a provider the path is an ordinary (unknown) protocol/method pair.
        Target::UploadUrls if app.options.storage.upload_urls.is_none() => {
            rpc(keys::UPLOAD_URL_METHOD, "init", Kind::Unary)
        }
        target => target,
    };
    let mut bound = None;
    if let Some(sticky) = &app.sticky {
        match &target {
            Target::Health => {}
            Target::Reserved(name) if name == super::sticky::SESSION_ROUTE => {
                return sticky
                    .route(&parts.method, &parts.headers, &peer.auth)
                    .await;
            }
            _ => match sticky.resolve(&parts.headers, &peer.auth).await {
                Ok(scope) => bound = Some(scope),
                Err(lost) => {
                    return super::sticky::lost_answer(
                        app,
                        peer,
                        text(request_id),
                        &lost,
                        &parts.headers,
                    );
                }
            },
        }
    }
    match target {
        Target::Health => health(app, &parts.method),
        Target::NotFoundHtml => not_found_html(),
        Target::NotFoundJson => json_error(StatusCode::NOT_FOUND, "404 Not Found", None),
        Target::Reserved(name) => match parts.method {
            Method::POST => {
                let mut shot = OneShot::new(&app.server, peer, text(request_id));
                let _ = shot.reject(&reserved_error(&name), "", &name);
                let (body, coding) = reply::encode_body(
                    reply::coding_for(app, &parts.headers),
                    shot.body.take_parts(),
                );
                reply::arrow(app, 404, body, false, coding)
            }
            Method::OPTIONS => reply::options("POST", false),
            _ => not_allowed("POST, OPTIONS"),
        },
        Target::UploadUrls => match parts.method {
            Method::POST => {
                let upload = Post {
                    protocol: String::new(),
                    method: keys::UPLOAD_URL_METHOD.to_owned(),
                    kind: Kind::UploadUrls,
                    content_type: None,
                    budget: None,
                    body: Vec::new(),
                    peer,
                    request_id: text(request_id),
                    received: 0,
                    trace: None,
                };
                post(app, &parts.headers, body, upload, bound).await
            }
            Method::OPTIONS => reply::options("POST", false),
            _ => not_allowed("POST, OPTIONS"),
        },
        Target::Rpc {
            protocol,
            method,
            kind,
        } => match parts.method {
            Method::POST => {
                post(
                    app,
                    &parts.headers,
                    body,
                    Post {
                        protocol,
                        method,
                        kind,
                        content_type: None,
                        budget: None,
                        body: Vec::new(),
                        peer,
                        request_id: text(request_id),
                        received: 0,
                        trace: None,
                    },
                    bound,
                )
                .await
            }
            Method::OPTIONS => reply::options("GET, POST", false),
            Method::GET if kind == Kind::Unary => {
                if app.server.inner.binding(&protocol).is_none()
                    || !calls::is_protocol_name(&protocol)
                {
                    json_error(StatusCode::NOT_FOUND, "404 Not Found", None)
                } else {
                    not_allowed("POST")
                }
            }
            _ if kind == Kind::Unary => not_allowed("GET, POST, OPTIONS"),
            _ => not_allowed("POST, OPTIONS"),
        },
    }
}

fn health(app: &App, method: &Method) -> Response {
    let primary = app
        .server
        .inner
        .bindings
        .first()
        .map(|b| b.spec.name.clone())
        .unwrap_or_default();
    let body = serde_json::json!({
        "status": "ok",
        "server_id": app.server.server_id(),
        "protocol": primary,
    })
    .to_string();
    match *method {
        Method::GET => json(StatusCode::OK, body),
        Method::HEAD => {
            let mut response = json(StatusCode::OK, String::new());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            response
        }
        Method::OPTIONS => reply::options("GET, HEAD", true),
        _ => not_allowed("GET, HEAD, OPTIONS"),
    }
}

/// Reads the body (bounded in size and time), then answers where blocking is allowed
/// (`conn::offload`).
/// `bound` is the request's sticky-session scope, entered while the engine runs.
async fn post(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Body,
    mut post: Post,
    bound: Option<super::sticky::Bound>,
) -> Response {
    let cap = app.body_cap();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > cap
    {
        return too_large(length, cap);
    }
    // Large bodies count against the server's memory budget while they are read and
    // answered; the reservation drops with the answer.
    let mut held = app.server.memory_budget().map(Reservation::empty);
    let read = {
        let mut read = std::pin::pin!(read_body(body, cap, held.as_mut()));
        // A small body has usually arrived with its head: only one still arriving needs
        // the timer (whose set-up is a measurable part of a small call).
        match std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => tokio::time::timeout(app.options.body_timeout, read).await,
        }
    };
    let bytes = match read {
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "Request body timeout",
                Some("The request body did not arrive in time."),
            );
        }
        Ok(Err(BodyFault::TooLarge(read))) => return too_large(read, cap),
        Ok(Err(BodyFault::OverBudget)) => return over_budget(),
        Ok(Err(BodyFault::Broken(e))) => {
            return json_error(StatusCode::BAD_REQUEST, "Bad request body", Some(&e));
        }
        Ok(Ok(bytes)) => bytes,
    };
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    post.content_type = text(&header::CONTENT_TYPE);
    post.budget = text(&reply::ACCEPT_MAX_RESPONSE_BYTES);
    post.received = bytes.len() as u64;
    post.trace = text(&reply::TRACEPARENT)
        .map(|tp| TraceHeaders::new(&tp, text(&reply::TRACESTATE).as_deref()));
    let encoding = text(&header::CONTENT_ENCODING).unwrap_or_default();
    let coding = reply::coding_for(app, headers);
    let worker = Arc::clone(app);
    let answered = super::conn::offload(move || {
        let body = decode_body(encoding.trim(), bytes, cap as usize)?;
        if let Some(held) = &mut held
            && !held.grow_to(body.len() as u64)
        {
            return Err(DecodeError::OverBudget);
        }
        post.body = body;
        let entered = bound.as_ref().map(super::sticky::Bound::enter);
        let answer = match post.kind {
            Kind::UploadUrls => super::upload::answer(&worker, &post),
            _ => calls::answer(&worker, post),
        };
        drop(entered);
        let session_headers = bound.map(super::sticky::Bound::finish);
        let (body, coding) = reply::encode_body(coding, answer.body);
        Ok((answer.status, body, answer.failed, coding, session_headers))
    })
    .await;
    match answered {
        Ok(Ok((status, body, failed, coding, session_headers))) => {
            let mut response = reply::arrow(app, status, body, failed, coding);
            super::sticky::apply(&mut response, session_headers.unwrap_or_default());
            response
        }
        Ok(Err(DecodeError::OverBudget)) => over_budget(),
        Ok(Err(DecodeError::Unsupported(message))) => json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Encoding",
            Some(&message),
        ),
        Ok(Err(DecodeError::TooLarge(coding))) => json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body exceeds max_request_bytes after decompression",
            Some(&format!(
                "Decompressed {} request body exceeds the server's advertised max_request_bytes={cap}.",
                coding.name()
            )),
        ),
        Ok(Err(DecodeError::Corrupt(coding, e))) => json_error(
            StatusCode::BAD_REQUEST,
            "Decompression Error",
            Some(&format!(
                "Failed to decompress {} request body: {e}",
                coding.name()
            )),
        ),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
            None,
        ),
    }
}

/// The most a request buffer is sized for before its bytes arrive.
const PRESIZE_MAX: u64 = 1 << 20;

enum BodyFault {
    TooLarge(u64),
    OverBudget,
    Broken(String),
}

async fn read_body(
    mut body: Body,
    cap: u64,
    mut held: Option<&mut Reservation>,
) -> Result<Vec<u8>, BodyFault> {
    // Sized once for the declared length (hyper holds the body to it), but only so far
    // ahead of the bytes that arrive.
    let declared = hyper::body::Body::size_hint(&body)
        .exact()
        .unwrap_or(0)
        .min(cap)
        .min(PRESIZE_MAX);
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut total = 0u64;
    let mut over_budget = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyFault::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > cap {
                return Err(BodyFault::TooLarge(total));
            }
            if over_budget {
                continue;
            }
            if let Some(held) = held.as_deref_mut()
                && !held.grow_to(total)
            {
                // Read the rest and throw it away (the body cap and timeout still
                // bound it), so the client is not cut off mid-upload and reads the 503.
                over_budget = true;
                bytes = Vec::new();
                continue;
            }
            bytes.extend_from_slice(&data);
        }
    }
    if over_budget {
        return Err(BodyFault::OverBudget);
    }
    Ok(bytes)
}

/// `503` with a retry hint: the request body did not fit the server's memory budget.
fn over_budget() -> Response {
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Unavailable",
        Some(
            "The request body does not fit the server's memory budget now \
             (RESOURCE_EXHAUSTED); retry later.",
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(1));
    response
}

fn too_large(read: u64, cap: u64) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body exceeds max_request_bytes",
        Some(&format!(
            "Request body of at least {read} bytes exceeds the server's advertised max_request_bytes={cap}.  Use the upload-URL flow (__upload_url__/init) to externalize large inputs."
        )),
    )
}

/// The peer's address as text, formatted once per address on each connection thread
/// (a connection's requests all come from one).
fn ip_text(ip: IpAddr) -> String {
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, String)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((seen, text)) if *seen == ip => text.clone(),
        _ => last.insert((ip, ip.to_string())).1.clone(),
    })
}

fn text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
    }
}

/// Decodes `%XX` escapes (invalid ones stay literal), as the reference's WSGI server does.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_the_reference() {
        assert!(matches!(target("/health", ""), Target::Health));
        assert!(matches!(target("/vgi/health", "/vgi"), Target::Health));
        assert!(matches!(target("/health", "/vgi"), Target::NotFoundHtml));
        assert!(matches!(target("/__describe__", ""), Target::Reserved(_)));
        assert!(matches!(target("/other", ""), Target::NotFoundJson));
        assert!(matches!(target("/a/b/c/d", ""), Target::NotFoundHtml));
        assert!(matches!(target("/a/b/", ""), Target::NotFoundHtml));
        match target("/Conformance%53ervice/echo/init", "") {
            Target::Rpc {
                protocol,
                method,
                kind,
            } => {
                assert_eq!(
                    (protocol.as_str(), method.as_str(), kind),
                    ("ConformanceService", "echo", Kind::Init)
                );
            }
            _ => panic!("not an RPC path"),
        }
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}

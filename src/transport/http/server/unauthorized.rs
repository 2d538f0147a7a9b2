//! Running the authenticator for a request, and the answers when it refuses: the 401 of
//! `docs/unauthorized-spec.md` and the 503 of an unreachable authority.
//!
//! A 401 carries `VGI-Auth-Reason`, `Cache-Control: no-store` (the next attempt may be a
//! 200), the deployment's `WWW-Authenticate` challenge when it declares one, and the
//! proxy note only when the deployment's authentication depends on proxy-added headers
//! (a static property of the configuration, never of the request). The body is the JSON
//! envelope, or a small page for a browser that asks for HTML; its detail is fixed text,
//! because what an authenticator learned about a credential is for the operator's log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::reply::json_error;
use crate::server::AuthContext;
use crate::transport::http::auth::{
    AuthError, AuthReason, AuthRequest, Authenticate, PeerCertificates,
};

const DETAIL: &str = "authentication rejected";

/// What a deployment's authentication adds to every 401, fixed when the router is built.
pub(crate) struct Refusals {
    pub challenge: Option<HeaderValue>,
    /// The proxy note, when authentication depends on proxy-added headers.
    pub proxy_hint: Option<String>,
}

impl Refusals {
    pub(crate) fn new(auth: Option<&Arc<dyn Authenticate>>, challenge: Option<&str>) -> Self {
        let headers = auth.map(|a| a.proxy_headers()).unwrap_or_default();
        let proxy_hint = (!headers.is_empty()).then(|| {
            format!(
                "This service only accepts requests that arrive through its configured reverse \
                 proxy, which must set the {} header(s). A rejection here is at least as likely \
                 to mean the proxy is not forwarding them as a bad credential.",
                headers.join(", ")
            )
        });
        Refusals {
            challenge: challenge.and_then(|c| HeaderValue::from_str(c).ok()),
            proxy_hint,
        }
    }
}

/// Authenticates the request head, off the async workers (an authenticator may consult a
/// store). `Err` is the finished refusal.
pub(crate) async fn authenticate(
    app: &Arc<App>,
    parts: &Parts,
    remote: Option<SocketAddr>,
) -> Result<AuthContext, Response> {
    let Some(auth) = app.auth.clone() else {
        // An outer `authenticate_layer` may have decided already.
        let outer = parts.extensions.get::<AuthContext>().cloned();
        return Ok(outer.unwrap_or_else(AuthContext::anonymous));
    };
    let inner = &app.server.inner;
    let report = |error_type: &str, reason: AuthReason| {
        let remote = remote.map(|addr| addr.ip().to_string());
        inner.auth_failed(remote.as_deref(), error_type, reason.as_str());
    };
    run(auth, &app.refusals, parts, remote, &report).await
}

/// Runs `auth` for the request head `parts` where blocking is allowed
/// (`conn::offload`); `Err` is the refusal.
///
/// A refusal is reported to `report` with the reference's name for it
/// ([`reference_error_type`]) before it is answered.
async fn run(
    auth: Arc<dyn Authenticate>,
    refusals: &Refusals,
    parts: &Parts,
    remote: Option<SocketAddr>,
    report: &(dyn Fn(&str, AuthReason) + Sync),
) -> Result<AuthContext, Response> {
    let (method, uri, headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let chain = parts.extensions.get::<PeerCertificates>().cloned();
    let answer = super::conn::offload(move || {
        let request = AuthRequest::new(&method, &uri, &headers, remote)
            .with_peer_certificates(chain.as_ref().map(|c| &*c.0));
        auth.authenticate(&request)
    })
    .await;
    match answer {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(AuthError::Unavailable(e))) => {
            tracing::warn!(remote = ?remote, error = %e, "authentication unavailable");
            Err(unavailable(e.retry_after.as_secs().max(1)))
        }
        Ok(Err(AuthError::Rejected { reason, detail } | AuthError::Denied { reason, detail })) => {
            tracing::warn!(remote = ?remote, %reason, %detail, "authentication rejected");
            report(reference_error_type(reason), reason);
            let wants_html = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            Err(unauthorized(refusals, reason, wants_html))
        }
        Err(super::conn::Panicked) => {
            tracing::error!("the authenticator panicked");
            Err(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
                None,
            ))
        }
    }
}

/// What the reference calls a refusal for `reason` (the exception its authenticators
/// raise, which its `classify_auth_failure` maps the other way): `PermissionError` for
/// an identified caller without the scope, `ValueError` for everything else.
fn reference_error_type(reason: AuthReason) -> &'static str {
    match reason {
        AuthReason::InsufficientScope => "PermissionError",
        _ => "ValueError",
    }
}

/// An authenticator as axum middleware, for routes of your own (or a router that nests
/// ours): `router.layer(axum::middleware::from_fn_with_state(state, authenticate_layer))`
/// with `state` from [`AuthLayerState::new`]. A refused request gets the same 401/503 as
/// the RPC routes; an accepted one carries its [`AuthContext`] in the request's
/// extensions, where handlers (and our RPC routes, when their own
/// [`HttpOptions::authenticate`](super::HttpOptions::authenticate) is unset) read it.
/// `OPTIONS` and `/.well-known/` pass unauthenticated; scope the layer to leave health
/// probes open.
pub async fn authenticate_layer(
    axum::extract::State(state): axum::extract::State<AuthLayerState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if parts.method != axum::http::Method::OPTIONS && !parts.uri.path().starts_with("/.well-known/")
    {
        let remote = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        // Not our server's request: no hooks to tell.
        let report = |_: &str, _: AuthReason| {};
        match run(
            Arc::clone(&state.auth),
            &state.refusals,
            &parts,
            remote,
            &report,
        )
        .await
        {
            Ok(ctx) => {
                parts.extensions.insert(ctx);
            }
            Err(mut refusal) => {
                // Clients of the RPC routes read this on every answer, refusals included
                // (the reference's do too); our router adds it to its own.
                refusal.headers_mut().insert(
                    "vgi-accept-max-response-bytes-support",
                    HeaderValue::from_static("true"),
                );
                return refusal;
            }
        }
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// The state of [`authenticate_layer`]: the authenticator and what its 401s carry.
#[derive(Clone)]
pub struct AuthLayerState {
    auth: Arc<dyn Authenticate>,
    refusals: Arc<Refusals>,
}

impl AuthLayerState {
    /// `auth`, with `challenge` as every 401's `WWW-Authenticate` (if any).
    pub fn new(auth: impl Authenticate, challenge: Option<&str>) -> Self {
        let auth: Arc<dyn Authenticate> = Arc::new(auth);
        let refusals = Arc::new(Refusals::new(Some(&auth), challenge));
        AuthLayerState { auth, refusals }
    }
}

fn unavailable(retry_after: u64) -> Response {
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Unavailable",
        Some("authentication authority unavailable"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn unauthorized(refusals: &Refusals, reason: AuthReason, wants_html: bool) -> Response {
    let hint = refusals.proxy_hint.as_deref();
    let mut response = if wants_html {
        let note = hint.map_or(String::new(), |h| {
            format!("<p class=\"note\">{}</p>", escape(h))
        });
        let page = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>401 &mdash; \
             Unauthorized</title></head><body><h1>401 &mdash; Unauthorized</h1><div \
             class=\"reason\">{reason}</div><p>Authentication is required to access this \
             <code>vgi-rpc</code> service.</p><div class=\"detail\">{DETAIL}</div>{note}</body></html>"
        );
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            page,
        )
            .into_response()
    } else {
        let mut body = serde_json::json!({"error": "unauthorized", "reason": reason.as_str(), "detail": DETAIL});
        if let Some(hint) = hint {
            body["proxy_hint"] = hint.into();
        }
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert("vgi-auth-reason", HeaderValue::from_static(reason.as_str()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if hint.is_some() {
        headers.insert("vgi-auth-proxy-required", HeaderValue::from_static("true"));
    }
    if let Some(challenge) = &refusals.challenge {
        headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

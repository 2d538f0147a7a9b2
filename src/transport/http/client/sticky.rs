//! Sticky-session headers on the wire: what a request inside a session scope carries,
//! what an answer's session headers change, and the best-effort `DELETE
//! {prefix}/__session__` that ends a scope whose session is still live (the scopes
//! themselves are the client engine's [`StickySessions`]).

use reqwest::header::{HeaderMap, HeaderName};

use super::failure::Failure;

use super::HttpConnector;
use crate::Result;
use crate::client::{ConnectOptions, EndedSession, StickySessions};

/// Adds the innermost scope's session headers to a request's `headers`. An echo header
/// the caller already sends on every request (`defaults`) keeps the caller's value, as
/// the reference client lets explicit headers win.
pub(super) fn decorate(
    headers: &mut HeaderMap,
    defaults: &HeaderMap,
    sessions: &StickySessions,
) -> Result<(), Failure> {
    for (name, value) in sessions.request_headers() {
        if !defaults.contains_key(name.as_str()) {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Failure::from(crate::Error::protocol(format!(
                    "{name:?} cannot be sent as an HTTP header name"
                )))
            })?;
            headers.append(name, super::failure::header_value(&value)?);
        }
    }
    Ok(())
}

/// Takes in an answer's session headers.
pub(super) fn capture(sessions: &StickySessions, headers: &HeaderMap) {
    sessions.capture(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
}

/// Ends a session on the server at `url` (`DELETE {prefix}/__session__` with its token
/// and echo headers): what a scope that ends with its session still live sends. The
/// answer is 204 when a session was closed and 200 otherwise (which tells a caller
/// nothing, by design); both are success.
///
/// # Errors
/// The request could not be sent (as [`Connect::connect`](crate::client::Connect::connect)).
pub fn end_session(url: &str, options: &ConnectOptions, ended: &EndedSession) -> Result<()> {
    let connector = HttpConnector::new(url, options)?;
    let shared = &connector.shared;
    let control = super::HttpControl::new();
    let delete = async {
        let mut request = shared
            .http
            .delete(format!("{}/__session__", shared.base))
            .headers(shared.headers.clone())
            .header(crate::client::sticky::SESSION_ACCEPT_HEADER, "true")
            .header(crate::client::sticky::SESSION_HEADER, &ended.token);
        for (name, value) in &ended.echo_headers {
            if !shared.headers.contains_key(name.as_str()) {
                request = request.header(name, value);
            }
        }
        request
            .send()
            .await
            .map_err(super::failure::Failure::Request)
    };
    shared
        .run(&control, shared.probe_timeout, delete)
        .map_err(|e| e.into_error(&shared.base))?;
    Ok(())
}

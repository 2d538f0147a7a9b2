//! The sticky-session ops (§4.10): `session_begin`, `session_token`,
//! `session_echo_headers`, `session_detach`, `session_end`. Scopes are a stack (the
//! client's [`StickySessions`](vgi_rpc::client::StickySessions)); ending one whose
//! session is still live sends the best-effort `DELETE {prefix}/__session__`.

use serde_json::{Map, Value};

use super::Session;
use super::reply::{Reply, ok, refused};

/// Answers one `session_*` op on an HTTP connection.
pub(crate) fn op(session: &Session, op: &str, request: &Map<String, Value>) -> Reply {
    let sessions = &session.sessions;
    let mut reply = ok();
    match op {
        "session_begin" => {
            let token = match request.get("token") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(other) => {
                    return refused(format!(
                        "session_begin: `token` must be a string, got {other}"
                    ));
                }
            };
            sessions.begin(token);
        }
        "session_token" => {
            reply.insert(
                "token".into(),
                sessions.token().map_or(Value::Null, Value::String),
            );
        }
        "session_echo_headers" => {
            let headers: Map<String, Value> = sessions
                .echo_headers()
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect();
            reply.insert("headers".into(), Value::Object(headers));
        }
        "session_detach" => {
            reply.insert(
                "token".into(),
                sessions.detach().map_or(Value::Null, Value::String),
            );
        }
        "session_end" => end_one(session),
        other => return refused(format!("unknown op `{other}`")),
    }
    reply
}

/// Pops the innermost scope, deleting its session if still live (best effort: a server
/// that is gone has nothing left to delete).
fn end_one(session: &Session) {
    if let (Some(ended), Some((url, options))) = (session.sessions.end(), &session.http) {
        let _ = vgi_rpc::transport::http::client::end_session(url, options, &ended);
    }
}

/// Ends every open scope, innermost first (the connection is closing).
pub(crate) fn end_all(session: &Session) {
    while session.sessions.is_active() {
        end_one(session);
    }
}

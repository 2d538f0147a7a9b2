//! The `request_upload_urls` op (CLIENT_DRIVER_PROTOCOL §4.10): the URL pairs our HTTP
//! client obtains from the server's `__upload_url__/init`, `expires_at` as Unix seconds.

use serde_json::{Map, Value, json};

use super::Session;
use super::reply::{Reply, ok, refused};

/// `{"op": "request_upload_urls", "count": N}` → `{"ok": true, "urls": [...]}`.
pub(crate) fn request_upload_urls(session: &Session, request: &Map<String, Value>) -> Reply {
    let Some((url, options)) = &session.http else {
        return refused("op requires http transport");
    };
    let count = request.get("count").and_then(Value::as_i64).unwrap_or(1);
    match vgi_rpc::transport::http::client::request_upload_urls(url, options, count) {
        Ok(urls) => {
            let urls: Vec<Value> = urls
                .iter()
                .map(|u| {
                    let expires = u
                        .expires_at
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs());
                    json!({
                        "upload_url": u.upload_url,
                        "download_url": u.download_url,
                        "expires_at": expires,
                    })
                })
                .collect();
            let mut reply = ok();
            reply.insert("urls".into(), Value::Array(urls));
            reply
        }
        Err(e) => refused(format!("request_upload_urls: {e}")),
    }
}

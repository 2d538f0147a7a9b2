//! `POST {prefix}/__upload_url__/init`: the URL pairs a client PUTs an oversized request
//! to (see `storage.rs`), from the server's [`UploadUrlProvider`]
//! (`StorageOptions::upload_urls`). The body is an ordinary request stream
//! (`{count: int64}`, method `__upload_url__`, no protocol); the answer lists up to 100
//! pairs. Like an RPC route it honours the request and response caps, so an oversized
//! control request is refused before any storage is allocated.
//!
//! [`UploadUrlProvider`]: crate::wire::UploadUrlProvider

use super::App;
use super::calls::{
    ARROW_STREAM, Answer, Post, Refusal, cap, content_type_error, refusal, reserved_error,
    response_limit,
};
use crate::server::oneshot::{OneShot, read_body};
use crate::wire::{self, Metadata, StreamEncoder, keys};
use crate::{Result, RpcError};

/// Answers the route (see the module docs), with the reference's checks in its order:
/// response budget, content type, body, method key.
pub(crate) fn answer(app: &App, post: &Post) -> Answer {
    let method = keys::UPLOAD_URL_METHOD;
    let mut shot = OneShot::new(&app.server, post.peer.clone(), post.request_id.clone());
    let (status, failed) = match vend(app, post, &mut shot) {
        Ok(()) => (200, shot.meter.failed),
        Err(Refusal { status, error }) => {
            let schema = if status == 500 {
                wire::upload::urls_schema()
            } else {
                crate::server::answer::empty()
            };
            let _ = shot.answer_error(&schema, &error, "", method);
            // Server-side failures go out as 200 + X-VGI-RPC-Error (the reference's
            // translation of its 500s).
            if status == 500 {
                (200, true)
            } else {
                (status, false)
            }
        }
    };
    Answer {
        status,
        failed,
        body: shot.body.take_parts(),
    }
}

fn vend(app: &App, post: &Post, shot: &mut OneShot<'_>) -> std::result::Result<(), Refusal> {
    let limit = response_limit(app, post.budget.as_deref())?;
    if post.content_type.as_deref() != Some(ARROW_STREAM) {
        return Err(refusal(
            415,
            content_type_error(post.content_type.as_deref()),
        ));
    }
    let Some(provider) = &app.options.storage.upload_urls else {
        return Err(refusal(404, reserved_error(keys::UPLOAD_URL_METHOD)));
    };
    let (params, metadata) = read_body(&post.body, &shot.limits())
        .map_err(|e| refusal(400, RpcError::new("ArrowInvalid", e.to_string())))?;
    match metadata.get(keys::METHOD) {
        Some(keys::UPLOAD_URL_METHOD) => {}
        other => {
            return Err(refusal(
                400,
                RpcError::type_error(format!(
                    "Method mismatch: expected '{}', got '{}'",
                    keys::UPLOAD_URL_METHOD,
                    other.unwrap_or("None")
                )),
            ));
        }
    }
    let count = wire::upload::requested_count(&params);
    let urls = (0..count)
        .map(|_| provider.upload_url())
        .collect::<Result<Vec<_>>>()
        .map_err(|e| refusal(500, e.to_rpc()))?;
    let batch = wire::upload::urls_batch(&urls).map_err(|e| refusal(500, e.to_rpc()))?;
    let schema = batch.schema();
    let mut enc = StreamEncoder::new();
    let body = &mut shot.body.bytes;
    enc.schema(body, &schema);
    enc.batch(body, &batch, &Metadata::new())
        .map_err(|e| refusal(500, e.to_rpc()))?;
    enc.eos(body);
    // An answer over the budget becomes the error (and flags the answer failed).
    let _ = cap(shot, limit, &schema, keys::UPLOAD_URL_METHOD);
    Ok(())
}

//! The access log: one JSON line per completed call, per the vgi-rpc access-log spec.
//!
//! Records follow `access_log.schema.json` of the reference (vgi-rpc 0.52.2), so one
//! validator (`vgi-rpc-test --access-log`) checks every port. Like the reference on
//! byte-stream transports, a stream call yields one record for the whole stream.
//!
//! No record carries a payload value at any level: the framework cannot know which
//! parameters are secrets. The request is described by its field names, Arrow types, row
//! count and size. The debug level adds transport diagnostics, never values.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::hook::{CallHook, CallRecord};
use crate::Result;

/// How much an [`AccessLog`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessLogLevel {
    /// The spec's fields.
    #[default]
    Info,
    /// Adds vendor-prefixed transport diagnostics (`vgi_rs_transport`). Still never a
    /// payload value.
    Debug,
}

/// A [`CallHook`] appending JSON-lines records to a file.
///
/// Writes are serialized by a lock and each record goes out in one `write` on a file
/// opened for appending, so concurrent connections never interleave lines.
#[derive(Debug)]
pub struct AccessLog {
    file: Mutex<File>,
    path: PathBuf,
    level: AccessLogLevel,
}

impl AccessLog {
    /// Opens (appending, creating if needed) the log at `path`, after replacing `{pid}`
    /// with this process id and `{server_id}` with `server_id`, so several processes
    /// can share one configured path without sharing a file.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn create(path: impl AsRef<Path>, server_id: &str) -> Result<Self> {
        let path = expand_path(path.as_ref(), server_id);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(AccessLog {
            file: Mutex::new(file),
            path,
            level: AccessLogLevel::Info,
        })
    }

    /// Sets the level (default [`AccessLogLevel::Info`]).
    pub fn with_level(mut self, level: AccessLogLevel) -> Self {
        self.level = level;
        self
    }

    /// The file being written, placeholders expanded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renders `record` as one JSON object (no trailing newline).
    pub fn render(&self, record: &CallRecord<'_>) -> String {
        Value::Object(self.fields(record)).to_string()
    }

    fn fields(&self, r: &CallRecord<'_>) -> Map<String, Value> {
        let status = r.status();
        let mut m = Map::new();
        let at: DateTime<Utc> = r.finished_at.into();
        m.insert(
            "timestamp".into(),
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into(),
        );
        m.insert("level".into(), "INFO".into());
        m.insert("logger".into(), "vgi_rpc.access".into());
        m.insert(
            "message".into(),
            format!("{}.{} {status}", r.protocol, r.method).into(),
        );
        m.insert("server_id".into(), r.server_id.into());
        m.insert("protocol".into(), r.protocol.into());
        m.insert("protocol_hash".into(), r.protocol_hash.into());
        m.insert("method".into(), r.method.into());
        m.insert("method_type".into(), r.method_type.as_str().into());
        m.insert("principal".into(), "".into());
        m.insert("auth_domain".into(), "".into());
        m.insert("authenticated".into(), false.into());
        m.insert("remote_addr".into(), r.peer.remote_addr_or_empty().into());
        let ms = (r.duration.as_secs_f64() * 100_000.0).round() / 100.0;
        m.insert("duration_ms".into(), json!(ms));
        m.insert("status".into(), status.into());
        let error_type = r.error.map_or("", |e| e.error_type.as_str());
        m.insert("error_type".into(), error_type.into());
        if r.cancelled {
            m.insert("cancelled".into(), true.into());
        }
        if let Some(e) = r.error {
            let message = if e.message.is_empty() {
                e.code.as_str()
            } else {
                e.message.as_str()
            };
            m.insert("error_message".into(), message.into());
            m.insert("error_code".into(), e.code.as_str().into());
        }
        m.insert("request_id".into(), r.request_id.into());
        if let Some(shape) = r.request {
            let fields: Vec<Value> = shape
                .fields()
                .map(|(name, ty)| json!({"name": name, "type": ty}))
                .collect();
            m.insert("request_fields".into(), fields.into());
            m.insert("request_rows".into(), shape.rows.into());
        }
        if let Some(id) = r.stream_id {
            m.insert("stream_id".into(), id.into());
        }
        let s = &r.stats;
        m.insert("input_batches".into(), s.input_batches.into());
        m.insert("output_batches".into(), s.output_batches.into());
        m.insert("input_rows".into(), s.input_rows.into());
        m.insert("output_rows".into(), s.output_rows.into());
        m.insert("input_bytes".into(), s.input_bytes.into());
        m.insert("output_bytes".into(), s.output_bytes.into());
        m.insert("request_bytes".into(), s.request_bytes.into());
        m.insert("response_bytes".into(), s.response_bytes.into());
        if self.level == AccessLogLevel::Debug {
            m.insert("vgi_rs_transport".into(), r.peer.kind.as_str().into());
        }
        m
    }
}

impl CallHook for AccessLog {
    fn on_call(&self, record: &CallRecord<'_>) {
        let mut line = self.render(record);
        line.push('\n');
        // A poisoned lock only means another writer panicked mid-call; the file is fine.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // The call already completed; a full disk must not fail it, so the error is dropped.
        let _ = file.write_all(line.as_bytes());
    }
}

/// Replaces `{pid}` and `{server_id}` in `path`.
fn expand_path(path: &Path, server_id: &str) -> PathBuf {
    let text = path.to_string_lossy();
    if !text.contains('{') {
        return path.to_path_buf();
    }
    PathBuf::from(
        text.replace("{pid}", &std::process::id().to_string())
            .replace("{server_id}", server_id),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand() {
        let p = expand_path(Path::new("/tmp/a-{pid}-{server_id}.jsonl"), "abc123");
        assert_eq!(
            p,
            PathBuf::from(format!("/tmp/a-{}-abc123.jsonl", std::process::id()))
        );
        assert_eq!(expand_path(Path::new("/x/y"), "s"), PathBuf::from("/x/y"));
    }
}

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

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

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
        let mut line = Vec::with_capacity(768);
        self.write_record(&mut line, record);
        // Every piece written is UTF-8 (JSON-escaped strings, numbers, ASCII punctuation).
        String::from_utf8(line).unwrap_or_default()
    }

    /// Appends the record's JSON object to `out`. Written directly rather than through a
    /// `serde_json::Map`: this runs once per call on the connection's thread.
    fn write_record(&self, out: &mut Vec<u8>, r: &CallRecord<'_>) {
        let status = r.status();
        let at: DateTime<Utc> = r.finished_at.into();
        let mut w = JsonObject::open(out);
        w.str(
            "timestamp",
            &at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        w.str("level", "INFO");
        w.str("logger", "vgi_rpc.access");
        w.str("message", &format!("{}.{} {status}", r.protocol, r.method));
        w.str("server_id", r.server_id);
        w.str("protocol", r.protocol);
        w.str("protocol_hash", r.protocol_hash);
        w.str("method", r.method);
        w.str("method_type", r.method_type.as_str());
        let auth = &r.peer.auth;
        w.str("principal", auth.principal_or_empty());
        w.str("auth_domain", auth.domain_or_empty());
        w.raw(
            "authenticated",
            if auth.authenticated { "true" } else { "false" },
        );
        w.str("remote_addr", r.peer.remote_addr_or_empty());
        let ms = (r.duration.as_secs_f64() * 100_000.0).round() / 100.0;
        w.raw("duration_ms", &Value::from(ms).to_string());
        w.str("status", status);
        w.str("error_type", r.error.map_or("", |e| e.error_type.as_str()));
        if r.cancelled {
            w.raw("cancelled", "true");
        }
        if let Some(e) = r.error {
            let message = if e.message.is_empty() {
                e.code.as_str()
            } else {
                e.message.as_str()
            };
            w.str("error_message", message);
            w.str("error_code", e.code.as_str());
        }
        w.str("request_id", r.request_id);
        if let Some(status) = r.http_status {
            w.num("http_status", u64::from(status));
        }
        if let Some(shape) = r.request {
            w.key("request_fields");
            w.out.push(b'[');
            for (i, (name, ty)) in shape.fields().enumerate() {
                if i > 0 {
                    w.out.push(b',');
                }
                let mut field = JsonObject::open(w.out);
                field.str("name", name);
                field.str("type", &ty);
                field.close();
            }
            w.out.push(b']');
            w.num("request_rows", shape.rows as u64);
        }
        if let Some(id) = r.stream_id {
            w.str("stream_id", id);
        }
        // HTTP sticky sessions: recorded on the thread serving the request.
        if let Some((session_id, action)) = super::sticky::log_fields() {
            if let Some(id) = &session_id {
                w.str("session_id", id);
            }
            w.str("session_action", action);
        }
        let s = &r.stats;
        w.num("input_batches", s.input_batches);
        w.num("output_batches", s.output_batches);
        w.num("input_rows", s.input_rows);
        w.num("output_rows", s.output_rows);
        w.num("input_bytes", s.input_bytes);
        w.num("output_bytes", s.output_bytes);
        w.num("request_bytes", s.request_bytes);
        w.num("response_bytes", s.response_bytes);
        if self.level == AccessLogLevel::Debug {
            w.str("vgi_rs_transport", r.peer.kind.as_str());
        }
        w.close();
    }
}

/// A JSON object being appended to a byte buffer, one member at a time.
struct JsonObject<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> JsonObject<'o> {
    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        push_json_string(self.out, key);
        self.out.push(b':');
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(self.out, value);
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    /// A value that is already JSON text.
    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `s` as a JSON string literal (quoted, escaped by serde_json's rules).
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a &str always serializes.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl CallHook for AccessLog {
    fn on_call(&self, record: &CallRecord<'_>) {
        let mut line = Vec::with_capacity(768);
        self.write_record(&mut line, record);
        line.push(b'\n');
        // A poisoned lock only means another writer panicked mid-call; the file is fine.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // The call already completed; a full disk must not fail it, so the error is dropped.
        let _ = file.write_all(&line);
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

    use crate::server::hook::{MethodType, RequestShape};
    use crate::server::{CallStats, Peer};
    use crate::{ErrorCode, RpcError};
    use arrow_schema::{DataType, Field, Schema};
    use std::time::{Duration, SystemTime};

    #[test]
    fn renders_valid_json_with_escapes_and_error_fields() {
        let log = AccessLog {
            file: Mutex::new(tempfile_like()),
            path: PathBuf::new(),
            level: AccessLogLevel::Debug,
        };
        let schema = Schema::new(vec![
            Field::new("q\"uote", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]);
        let error = RpcError::value_error("line one\n\"two\"").with_code(ErrorCode::NotFound);
        let peer = Peer::tcp("[::1]:9");
        let record = CallRecord {
            server_id: "abc",
            protocol: "P",
            protocol_hash: "h",
            method: "m",
            method_type: MethodType::Stream,
            request_id: "r",
            stream_id: Some("s"),
            peer: &peer,
            request: Some(RequestShape {
                schema: &schema,
                rows: 1,
            }),
            stats: CallStats::default(),
            duration: Duration::from_micros(1234),
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            error: Some(&error),
            cancelled: true,
            http_status: None,
            trace: None,
        };
        let v: Value = serde_json::from_str(&log.render(&record)).unwrap();
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["duration_ms"], 1.23);
        assert_eq!(v["status"], "error");
        assert_eq!(v["error_message"], "line one\n\"two\"");
        assert_eq!(v["error_code"], "NOT_FOUND");
        assert_eq!(v["error_type"], "ValueError");
        assert_eq!(v["cancelled"], true);
        assert_eq!(v["remote_addr"], "[::1]:9");
        assert_eq!(v["request_fields"][0]["name"], "q\"uote");
        assert_eq!(v["request_fields"][1]["type"], "int64");
        assert_eq!(v["request_rows"], 1);
        assert_eq!(v["vgi_rs_transport"], "tcp");
        assert_eq!(v["message"], "P.m error");
    }

    fn tempfile_like() -> File {
        let path = std::env::temp_dir().join(format!("vgi-render-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }

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

//! The per-call context a handler may ask for by taking `ctx: &CallContext`.

use std::sync::Mutex;

use crate::log::{LogLevel, LogRecord};

/// Identity of the call being served, and the channel for in-band logs emitted before the
/// call's result (unary) or header/output stream (streams).
#[derive(Debug)]
pub struct CallContext {
    protocol: String,
    method: String,
    request_id: String,
    server_id: String,
    logs: Mutex<Vec<LogRecord>>,
}

impl CallContext {
    pub(crate) fn new(protocol: &str, method: &str, request_id: String, server_id: &str) -> Self {
        CallContext {
            protocol: protocol.to_owned(),
            method: method.to_owned(),
            request_id,
            server_id: server_id.to_owned(),
            logs: Mutex::new(Vec::new()),
        }
    }

    /// The protocol that owns the method.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The id the server minted for this call (16 hex digits).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The server's identity (12 hex digits).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Sends a log message to the caller, ahead of the result.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.push(LogRecord::new(level, message));
    }

    /// Sends a log message with extra JSON fields.
    pub fn log_with_extra(
        &self,
        level: LogLevel,
        message: impl Into<String>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) {
        let mut record = LogRecord::new(level, message);
        record.extra = extra;
        self.push(record);
    }

    fn push(&self, record: LogRecord) {
        // A poisoned lock only means another handler thread panicked mid-push; the
        // vector itself is still sound.
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.push(record);
    }

    pub(crate) fn take_logs(&self) -> Vec<LogRecord> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *logs)
    }
}

//! Log levels and records: what a handler sends to its caller in-band, next to results.

use std::fmt;

/// Severity of an in-band log message (the wire spellings are upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Only used for the EXCEPTION batch that ends a failed call.
    Exception,
    /// An error the handler reports without failing.
    Error,
    /// A warning.
    Warn,
    /// Informational.
    Info,
    /// Debugging detail.
    Debug,
    /// Finest detail.
    Trace,
}

impl LogLevel {
    /// The wire spelling (`INFO`, `WARN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Exception => "EXCEPTION",
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }

    /// Parses the wire spelling (also accepts `WARNING`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EXCEPTION" => LogLevel::Exception,
            "ERROR" => LogLevel::Error,
            "WARN" | "WARNING" => LogLevel::Warn,
            "INFO" => LogLevel::Info,
            "DEBUG" => LogLevel::Debug,
            "TRACE" => LogLevel::Trace,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log message: level, text and an optional JSON object of extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
    /// Extra fields (sent as `vgi_rpc.log_extra` when non-empty).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl LogRecord {
    /// A record with no extra fields.
    pub fn new(level: LogLevel, message: impl Into<String>) -> Self {
        LogRecord {
            level,
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }
}

/// Forwards a server's log message to `tracing` under the target `vgi_rpc::remote`, so an
/// application that already collects `tracing` events sees its workers' logs with no
/// handler of its own. Field values are only rendered when a subscriber wants the event.
pub(crate) fn forward_to_tracing(record: &LogRecord) {
    let message = record.message.as_str();
    let extra = ExtraJson(&record.extra);
    match record.level {
        LogLevel::Exception | LogLevel::Error => {
            tracing::error!(target: "vgi_rpc::remote", %extra, "{message}");
        }
        LogLevel::Warn => tracing::warn!(target: "vgi_rpc::remote", %extra, "{message}"),
        LogLevel::Info => tracing::info!(target: "vgi_rpc::remote", %extra, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "vgi_rpc::remote", %extra, "{message}"),
        LogLevel::Trace => tracing::trace!(target: "vgi_rpc::remote", %extra, "{message}"),
    }
}

/// Renders a log's extra fields as a JSON object, lazily.
struct ExtraJson<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl fmt::Display for ExtraJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}:{value}", serde_json::Value::from(key.as_str()))?;
        }
        f.write_str("}")
    }
}

//! The per-call context a handler may ask for by taking `ctx: &CallContext`.

use std::sync::{Arc, Mutex};

use super::AuthContext;
use super::interceptor::Extensions;
use super::peer::Peer;
use crate::log::{LogLevel, LogRecord};
use crate::wire::Metadata;

/// The call being served: its identity, request metadata, caller and the values
/// interceptors attached, plus the channel for in-band logs emitted before the call's
/// result (unary) or header/output stream (streams).
#[derive(Debug)]
pub struct CallContext {
    /// The protocol, method, request id and server id, one after the other: one
    /// allocation per call instead of four.
    names: String,
    /// Where the method, the request id and the server id start in `names`.
    starts: [usize; 3],
    metadata: Metadata,
    peer: Arc<Peer>,
    extensions: Extensions,
    logs: Mutex<Vec<LogRecord>>,
}

/// What the engine knows of a call when it builds its context.
pub(crate) struct CallOrigin<'a> {
    pub protocol: &'a str,
    pub method: &'a str,
    pub request_id: &'a str,
    pub server_id: &'a str,
    pub peer: &'a Arc<Peer>,
}

impl CallContext {
    pub(crate) fn new(origin: &CallOrigin<'_>, metadata: Metadata, extensions: Extensions) -> Self {
        let parts = [
            origin.protocol,
            origin.method,
            origin.request_id,
            origin.server_id,
        ];
        let mut names = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut starts = [0; 3];
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                starts[i - 1] = names.len();
            }
            names.push_str(part);
        }
        CallContext {
            names,
            starts,
            metadata,
            peer: Arc::clone(origin.peer),
            extensions,
            logs: Mutex::new(Vec::new()),
        }
    }

    /// The request batch's custom metadata, framework keys (`vgi_rpc.*`) included.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Who is calling.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Who the caller authenticated as ([`AuthContext::anonymous`] on transports that
    /// do not authenticate).
    pub fn auth(&self) -> &AuthContext {
        &self.peer.auth
    }

    /// The value of type `T` an [`Interceptor`](super::Interceptor) attached to this call.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get()
    }

    /// The protocol that owns the method.
    pub fn protocol(&self) -> &str {
        &self.names[..self.starts[0]]
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.names[self.starts[0]..self.starts[1]]
    }

    /// The id the server minted for this call (16 hex digits).
    pub fn request_id(&self) -> &str {
        &self.names[self.starts[1]..self.starts[2]]
    }

    /// The server's identity (12 hex digits).
    pub fn server_id(&self) -> &str {
        &self.names[self.starts[2]..]
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

    /// Opens a sticky session holding `value` (HTTP with sticky sessions on): see
    /// [`sticky::open_session`](super::sticky::open_session).
    ///
    /// # Errors
    /// As [`sticky::open_session`](super::sticky::open_session).
    pub fn open_session<T: std::any::Any + Send + Sync>(
        &self,
        value: T,
        ttl: Option<std::time::Duration>,
    ) -> crate::Result<()> {
        super::sticky::open_session(value, ttl)
    }

    /// The value of the sticky session this call is bound to, if it is a `T`.
    pub fn session<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        super::sticky::session::<T>()
    }

    /// The bound sticky session's id (24 hex digits), if any.
    pub fn session_id(&self) -> Option<String> {
        super::sticky::session_id()
    }

    /// Closes this call's sticky session (idempotent).
    ///
    /// # Errors
    /// A `RuntimeError` when the transport has no sticky sessions.
    pub fn close_session(&self) -> crate::Result<()> {
        super::sticky::close_session()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_read_back_as_given() {
        let peer = Arc::new(Peer::pipe());
        let origin = CallOrigin {
            protocol: "Proto",
            method: "",
            request_id: "0123456789abcdef",
            server_id: "srv",
            peer: &peer,
        };
        let ctx = CallContext::new(&origin, Metadata::new(), Extensions::default());
        assert_eq!(
            [
                ctx.protocol(),
                ctx.method(),
                ctx.request_id(),
                ctx.server_id()
            ],
            ["Proto", "", "0123456789abcdef", "srv"]
        );
    }
}

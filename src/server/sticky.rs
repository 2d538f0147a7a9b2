//! Sticky sessions as a handler sees them: open, read and close the session the current
//! request is bound to (`docs/sticky-sessions-spec.md` §4 of the reference).
//!
//! A sticky session keeps a live value (a cursor, a loaded model, an open file) in the
//! memory of the worker that opened it; the client echoes a sealed token on later
//! requests and the transport restores the value. Only a transport that can carry the
//! token (HTTP with sticky sessions enabled) installs the machinery, so the engine knows
//! nothing of tokens or registries: the transport enters a `StickyScope` on the thread
//! that serves the request, for exactly the time the engine runs, and the handler's
//! [`CallContext`](super::CallContext) methods and stream states ([`session`]) reach it
//! through a thread-local. That is the reference's context variable, and it works because
//! every handler, unary or a stream turn, runs synchronously on the serving thread.
//!
//! Cleanup is `Drop`: the registry holds the only long-lived reference to a session's
//! value, so the value is dropped when its session closes, expires or is shut down (once
//! a call still using it returns). A process crash runs nothing, as in the reference.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use crate::RpcError;

/// A session's value, shared between the registry and the calls that use it.
pub type SessionValue = Arc<dyn Any + Send + Sync>;

/// The message of every sticky operation on a transport without sticky sessions.
pub(crate) const NOT_AVAILABLE: &str = "sticky sessions not available on this transport";

/// What a transport provides for one request: the session the request resumed (if any)
/// and the means to open and close one. Implemented by the HTTP transport.
pub(crate) trait StickyScope: Send + Sync {
    /// The bound session's value and id (24 hex digits).
    fn current(&self) -> Option<(SessionValue, String)>;
    /// Registers `value` as a new session of this request's principal.
    fn open(&self, value: SessionValue, ttl: Option<Duration>) -> crate::Result<()>;
    /// Closes the bound session (idempotent); whether one was closed.
    fn close(&self) -> bool;
    /// The access log's `session_id` (the session touched, even once closed) and
    /// `session_action` (`none`, `resume`, `open`, `close`).
    fn log_fields(&self) -> (Option<String>, &'static str);
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn StickyScope>>> = const { RefCell::new(None) };
}

/// Restores the thread's previous scope when the request's engine run ends.
pub(crate) struct Entered {
    previous: Option<Arc<dyn StickyScope>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Installs `scope` on this thread until the returned guard drops.
pub(crate) fn enter(scope: Arc<dyn StickyScope>) -> Entered {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(scope));
    Entered { previous }
}

fn with_scope<R>(f: impl FnOnce(Option<&Arc<dyn StickyScope>>) -> R) -> R {
    // Clone out of the cell first: the scope's methods may run user code (a value's
    // Drop on close) that must not find the cell borrowed.
    let scope = CURRENT.with(|c| c.borrow().clone());
    f(scope.as_ref())
}

/// The access-log fields of the request being served, when it passed through sticky
/// machinery.
pub(crate) fn log_fields() -> Option<(Option<String>, &'static str)> {
    with_scope(|scope| scope.map(|s| s.log_fields()))
}

/// The value of the sticky session the request being served is bound to, if it has one
/// of type `T`. For stream states, whose turns have no [`CallContext`](super::CallContext):
/// each turn of an HTTP stream is its own request and resolves the session afresh.
pub fn session<T: Any + Send + Sync>() -> Option<Arc<T>> {
    session_value().and_then(|value| value.downcast::<T>().ok())
}

/// The bound session's value, untyped.
pub fn session_value() -> Option<SessionValue> {
    with_scope(|scope| scope.and_then(|s| s.current()).map(|(value, _)| value))
}

/// The bound session's id (24 hex digits, for logs), if any.
pub fn session_id() -> Option<String> {
    with_scope(|scope| scope.and_then(|s| s.current()).map(|(_, id)| id))
}

/// Opens a sticky session holding `value` for this request's caller; the answer carries
/// its token. `ttl` overrides the server's default lifetime.
///
/// # Errors
/// A `RuntimeError` when the transport has no sticky sessions, when the client did not
/// opt in (`VGI-Session-Accept: true`), or when the request already has a session; a
/// `ServerDrainingError` while the worker drains.
pub fn open_session<T: Any + Send + Sync>(value: T, ttl: Option<Duration>) -> crate::Result<()> {
    with_scope(|scope| match scope {
        None => Err(RpcError::runtime_error(NOT_AVAILABLE).into()),
        Some(scope) => scope.open(Arc::new(value), ttl),
    })
}

/// Closes the request's sticky session: the value is released, the answer tells the
/// client to forget the token. Idempotent.
///
/// # Errors
/// A `RuntimeError` when the transport has no sticky sessions.
pub fn close_session() -> crate::Result<()> {
    with_scope(|scope| match scope {
        None => Err(RpcError::runtime_error(NOT_AVAILABLE).into()),
        Some(scope) => {
            scope.close();
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        bound: Mutex<Option<SessionValue>>,
    }

    impl StickyScope for Fake {
        fn current(&self) -> Option<(SessionValue, String)> {
            let bound = self.bound.lock().ok()?;
            bound.clone().map(|v| (v, "00".repeat(12)))
        }
        fn open(&self, value: SessionValue, _ttl: Option<Duration>) -> crate::Result<()> {
            if let Ok(mut bound) = self.bound.lock() {
                *bound = Some(value);
            }
            Ok(())
        }
        fn log_fields(&self) -> (Option<String>, &'static str) {
            (None, "none")
        }
        fn close(&self) -> bool {
            self.bound
                .lock()
                .map(|mut b| b.take().is_some())
                .unwrap_or(false)
        }
    }

    #[test]
    fn outside_a_scope_nothing_is_available() {
        assert!(session::<i64>().is_none());
        let err = open_session(1_i64, None).unwrap_err();
        let err = err.as_rpc().expect("a remote error");
        assert_eq!(
            (err.error_type.as_str(), err.message.as_str()),
            ("RuntimeError", NOT_AVAILABLE)
        );
        assert!(close_session().is_err());
    }

    #[test]
    fn a_scope_serves_its_thread_until_the_guard_drops() {
        let guard = enter(Arc::new(Fake::default()));
        open_session(41_i64, None).unwrap();
        assert_eq!(session::<i64>().as_deref(), Some(&41));
        assert!(session::<String>().is_none(), "wrong type");
        assert_eq!(session_id().as_deref(), Some("000000000000000000000000"));
        std::thread::spawn(|| assert!(session::<i64>().is_none()))
            .join()
            .unwrap();
        close_session().unwrap();
        assert!(session::<i64>().is_none());
        drop(guard);
        assert!(open_session(1_i64, None).is_err());
    }
}

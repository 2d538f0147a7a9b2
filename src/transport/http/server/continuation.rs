//! Continuation tokens: what a stream's answer carries so that its next request can be
//! served by any worker, and the table of states that cannot travel.
//!
//! Two tokens, split by lifetime. The *call token* is minted once at `/init` and echoed
//! by the client on every continuation: it names the call (id, protocol, method, stream
//! id for the access log) and the response limit sealed at init. The *cursor* is
//! re-minted every turn and carries the state after that turn — saved bytes for a
//! [`Resumable`](crate::stream::Resumable) state, or a "held" mark for a state kept in
//! this worker's memory. A continuation opens the cursor first, then the call token, and
//! requires both to name the same call. Both are sealed with the protocol name as
//! associated data, so a token never opens under another protocol.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::super::token::{CALL_TOKEN, CURSOR, Sealer};
use crate::Result;
use crate::server::streams::{State, Suspend};
use crate::wire::{Metadata, keys};

/// What a call token says about its call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CallNote {
    /// The call's id (32 hex digits), shared with every cursor of the call.
    pub id: String,
    /// The stream's access-log correlation id.
    pub stream_id: String,
    /// The method, as routed at init.
    pub method: String,
    /// When the call started (Unix seconds).
    pub created: u64,
    /// The response limit in force at init (0: none); continuations stay under it.
    pub limit: u64,
}

impl CallNote {
    /// A new call (a fresh id, started now) of `method`, logged under `stream_id`.
    pub(crate) fn new(stream_id: &str, method: &str, limit: u64) -> Self {
        CallNote {
            id: crate::server::ids::random_hex(32),
            stream_id: stream_id.to_owned(),
            method: method.to_owned(),
            created: now(),
            limit,
        }
    }
}

/// What a cursor says about the state after a turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CursorNote {
    id: String,
    issued: u64,
    /// The turn this cursor continues (1 after init): a held state answers only the
    /// cursor of its latest turn, so a spent cursor cannot run it again.
    turn: u64,
    /// The state is held in the memory of the worker that minted this cursor.
    held: bool,
}

/// An opened cursor.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub id: String,
    pub turn: u64,
    pub held: bool,
    /// The saved state (empty when held).
    pub state: Vec<u8>,
}

/// Why a continuation's tokens were refused (the message the client sees, with a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError(pub String);

fn refuse(message: &str) -> TokenError {
    TokenError(message.to_owned())
}

/// Mints and opens a deployment's tokens, and holds the states that cannot be saved.
pub(crate) struct Continuations {
    sealer: Sealer,
    ttl: Duration,
    /// States held here: call id -> (state, the turn its next cursor names, since).
    held: Mutex<HashMap<String, (State, u64, Instant)>>,
    max_held: usize,
}

impl std::fmt::Debug for Continuations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Continuations")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Continuations {
    pub(crate) fn new(key: &[u8; 32], ttl: Duration, max_held: usize) -> Self {
        Continuations {
            sealer: Sealer::new(key),
            ttl,
            held: Mutex::new(HashMap::new()),
            max_held,
        }
    }

    pub(crate) fn call_token(&self, protocol: &str, note: &CallNote) -> String {
        let payload = serde_json::to_vec(note).unwrap_or_default();
        self.sealer.seal(CALL_TOKEN, protocol.as_bytes(), &payload)
    }

    fn cursor(&self, protocol: &str, id: &str, turn: u64, saved: Option<&[u8]>) -> (String, usize) {
        let note = CursorNote {
            id: id.to_owned(),
            issued: now(),
            turn,
            held: saved.is_none(),
        };
        let header = serde_json::to_vec(&note).unwrap_or_default();
        let state = saved.unwrap_or_default();
        let mut payload = Vec::with_capacity(4 + header.len() + state.len());
        payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
        payload.extend_from_slice(&header);
        payload.extend_from_slice(state);
        let size = payload.len();
        (
            self.sealer.seal(CURSOR, protocol.as_bytes(), &payload),
            size,
        )
    }

    /// Opens the cursor of a continuation (first) and its call token (second).
    pub(crate) fn open(
        &self,
        protocol: &str,
        metadata: &Metadata,
    ) -> std::result::Result<(Cursor, CallNote), TokenError> {
        let aad = protocol.as_bytes();
        let token = metadata
            .get(keys::STREAM_STATE)
            .ok_or_else(|| refuse("Missing state token in exchange request"))?;
        let payload = self
            .sealer
            .open(CURSOR, aad, token)
            .ok_or_else(|| refuse("State token signature verification failed"))?;
        let cursor = parse_cursor(&payload).ok_or_else(|| refuse("Malformed state token"))?;
        if self.expired(cursor.1) {
            return Err(refuse("State token expired"));
        }
        let cursor = cursor.0;
        let token = metadata
            .get(keys::CALL_STATE)
            .ok_or_else(|| refuse("Missing call token in exchange request"))?;
        let payload = self
            .sealer
            .open(CALL_TOKEN, aad, token)
            .ok_or_else(|| refuse("Call token signature verification failed"))?;
        let call: CallNote =
            serde_json::from_slice(&payload).map_err(|_| refuse("Malformed call token"))?;
        if self.expired(call.created) {
            return Err(refuse("Call token expired"));
        }
        if call.id != cursor.id {
            return Err(refuse(
                "State token does not belong to the supplied call token",
            ));
        }
        Ok((cursor, call))
    }

    fn expired(&self, at: u64) -> bool {
        now().saturating_sub(at) > self.ttl.as_secs()
    }

    /// Keeps a state that cannot be saved until its next turn (or its TTL).
    pub(crate) fn hold(
        &self,
        id: &str,
        turn: u64,
        state: State,
    ) -> std::result::Result<(), TokenError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        held.retain(|_, (_, _, at)| now.duration_since(*at) <= self.ttl);
        if held.len() >= self.max_held {
            return Err(refuse("too many streams are held on this worker"));
        }
        held.insert(id.to_owned(), (state, turn, now));
        Ok(())
    }

    /// Takes back a held state, for the cursor of its latest turn only.
    pub(crate) fn take(&self, id: &str, turn: u64) -> std::result::Result<State, TokenError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.get(id) {
            Some((_, expected, _)) if *expected == turn => {}
            _ => {
                return Err(refuse(
                    "Stream state is not held on this worker (it expired, was already continued, or lives on another worker)",
                ));
            }
        }
        held.remove(id)
            .map(|(state, _, _)| state)
            .ok_or_else(|| refuse("Stream state vanished"))
    }
}

fn parse_cursor(payload: &[u8]) -> Option<(Cursor, u64)> {
    let len = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let header = payload.get(4..4usize.checked_add(len)?)?;
    let note: CursorNote = serde_json::from_slice(header).ok()?;
    let state = payload.get(4 + len..)?.to_vec();
    Some((
        Cursor {
            id: note.id,
            turn: note.turn,
            held: note.held,
            state,
        },
        note.issued,
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Ends a turn that did not finish its stream with a fresh cursor (and, at init, the
/// call token).
pub(crate) struct Suspender<'c> {
    pub continuations: &'c Continuations,
    pub protocol: &'c str,
    pub call_id: &'c str,
    /// Sent at init only; continuations echo the client's.
    pub call_token: Option<&'c str>,
    /// The turn the minted cursor continues.
    pub turn: u64,
    /// Set when the state could not be saved and must be held here.
    pub held: bool,
    /// Plaintext bytes of the tokens minted, for the access log.
    pub state_bytes: usize,
}

impl Suspend for Suspender<'_> {
    fn continuation(&mut self, state: &State) -> Result<Metadata> {
        let saved = state.save().transpose()?;
        self.held = saved.is_none();
        let (cursor, size) =
            self.continuations
                .cursor(self.protocol, self.call_id, self.turn, saved.as_deref());
        self.state_bytes = size;
        let mut md = Metadata::new().with(keys::STREAM_STATE, cursor);
        if let Some(call) = self.call_token {
            md.insert(keys::CALL_STATE, call);
        }
        Ok(md)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn note() -> CallNote {
        CallNote {
            id: "a".repeat(32),
            stream_id: "b".repeat(32),
            method: "m".into(),
            created: now(),
            limit: 0,
        }
    }

    #[test]
    fn a_cursor_opens_with_its_own_call_token_only() {
        let c = Continuations::new(&[1; 32], Duration::from_secs(60), 4);
        let call = c.call_token("P", &note());
        let (cursor, _) = c.cursor("P", &note().id, 1, Some(b"saved"));
        let md = Metadata::new()
            .with(keys::STREAM_STATE, cursor.clone())
            .with(keys::CALL_STATE, call.clone());
        let (opened, _) = c.open("P", &md).unwrap();
        assert_eq!(opened.state, b"saved");
        assert!(!opened.held);
        // Another call's token: refused.
        let mut other = note();
        other.id = "c".repeat(32);
        let md = Metadata::new()
            .with(keys::STREAM_STATE, cursor.clone())
            .with(keys::CALL_STATE, c.call_token("P", &other));
        assert_eq!(
            c.open("P", &md).unwrap_err().0,
            "State token does not belong to the supplied call token"
        );
        // Swapped tokens: the call token does not open as a cursor.
        let md = Metadata::new()
            .with(keys::STREAM_STATE, call)
            .with(keys::CALL_STATE, cursor);
        assert_eq!(
            c.open("P", &md).unwrap_err().0,
            "State token signature verification failed"
        );
    }

    #[test]
    fn expired_and_missing_tokens_are_refused() {
        let c = Continuations::new(&[1; 32], Duration::from_secs(0), 4);
        let mut old = note();
        old.created = 0;
        let md = Metadata::new();
        assert_eq!(
            c.open("P", &md).unwrap_err().0,
            "Missing state token in exchange request"
        );
        let (cursor, _) = c.cursor("P", &old.id, 1, None);
        let md = Metadata::new().with(keys::STREAM_STATE, cursor);
        assert_eq!(
            c.open("P", &md).unwrap_err().0,
            "Missing call token in exchange request"
        );
        let md = md.with(keys::CALL_STATE, c.call_token("P", &old));
        assert_eq!(c.open("P", &md).unwrap_err().0, "Call token expired");
    }
}

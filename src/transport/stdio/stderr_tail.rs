//! The tail of a worker's standard error, kept to explain a worker that died mid-call.

use std::io::Read;
use std::process::ChildStderr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The last `cap` bytes a worker wrote to stderr, collected by a small reader thread (off
/// the call path; it ends when the worker's stderr closes).
pub(crate) struct StderrTail {
    state: Mutex<(Vec<u8>, bool)>,
    done: Condvar,
    cap: usize,
}

impl StderrTail {
    pub(crate) fn start(mut pipe: ChildStderr, cap: usize) -> Arc<StderrTail> {
        let tail = Arc::new(StderrTail {
            state: Mutex::new((Vec::new(), false)),
            done: Condvar::new(),
            cap,
        });
        let writer = Arc::clone(&tail);
        let spawned = std::thread::Builder::new()
            .name("vgi-rpc-worker-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    writer.push(&buf[..n]);
                }
                if let Ok(mut state) = writer.state.lock() {
                    state.1 = true;
                }
                writer.done.notify_all();
            });
        if spawned.is_err() {
            // No thread: the pipe is dropped and the worker sees EPIPE on stderr writes.
            if let Ok(mut state) = tail.state.lock() {
                state.1 = true;
            }
        }
        tail
    }

    fn push(&self, bytes: &[u8]) {
        if let Ok(mut state) = self.state.lock() {
            let buf = &mut state.0;
            buf.extend_from_slice(bytes);
            if buf.len() > self.cap {
                let excess = buf.len() - self.cap;
                buf.drain(..excess);
            }
        }
    }

    /// The captured text, after waiting up to `wait` for the stream to reach EOF.
    pub(crate) fn snapshot(&self, wait: Duration) -> String {
        let Ok(mut state) = self.state.lock() else {
            return String::new();
        };
        let deadline = Instant::now() + wait;
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.done.wait_timeout(state, left) {
                Ok((s, _)) => state = s,
                Err(_) => return String::new(),
            }
        }
        String::from_utf8_lossy(&state.0).into_owned()
    }
}

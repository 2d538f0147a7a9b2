//! Spawning a worker process and talking to it over its stdin/stdout.

use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::Connection;
use crate::{Error, Result};

/// A worker child process and the connection over its pipes. Dropping it closes the
/// worker's stdin (the worker exits at EOF) and reaps the child, killing it if it does
/// not exit promptly.
pub struct Subprocess {
    connection: Option<Connection<ChildStdout, ChildStdin>>,
    child: Child,
}

impl Subprocess {
    /// Spawns `command` with piped stdin/stdout (stderr inherited).
    ///
    /// # Errors
    /// Fails when the process cannot be started.
    pub fn spawn(mut command: Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::protocol("worker stdin unavailable"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::protocol("worker stdout unavailable"))?;
        Ok(Subprocess {
            connection: Some(Connection::new(stdout, stdin)),
            child,
        })
    }

    /// The connection to the worker.
    ///
    /// # Panics
    /// Never: the connection is only taken in `drop`.
    pub fn connection(&mut self) -> &mut Connection<ChildStdout, ChildStdin> {
        match &mut self.connection {
            Some(c) => c,
            None => unreachable!("connection is present until drop"),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        // Closing stdin tells the worker to exit.
        drop(self.connection.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The reference's fake object storage (`python -m vgi_rpc.conformance.fake_storage`), run
//! as a child process for tests that externalize batches.
//!
//! External storage has no in-process stand-in on purpose: the reference service is the
//! contract both implementations are tested against (`POST /alloc`, `PUT /upload/{id}`,
//! `GET|HEAD /download/{id}`, the redirect aliases, `GET /_stats`), so our writer and
//! reader meet exactly what the shared suite's fixtures serve. [`StorageHandle::object_count`]
//! is how a test proves a batch really went through storage.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running fake-storage service; killed and reaped on drop. Tests hand scenarios a
/// [`StorageHandle`] and keep this on the test's own thread, so that the service ends
/// even when a scenario hangs.
#[derive(Debug)]
pub struct FakeStorage {
    child: Child,
    handle: StorageHandle,
}

/// Where a [`FakeStorage`] listens: its URL and statistics.
#[derive(Debug, Clone, Copy)]
pub struct StorageHandle {
    port: u16,
}

impl FakeStorage {
    /// Starts the service with the venv at `venv` on a free loopback port.
    ///
    /// # Errors
    /// The interpreter could not start, or it did not announce `PORT:<n>`.
    pub fn start(venv: &Path) -> io::Result<Self> {
        let (child, port) = crate::announce::spawn_announcing(
            Command::new(venv.join("bin/python"))
                .args(["-m", "vgi_rpc.conformance.fake_storage", "--port", "0"])
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        Ok(FakeStorage {
            child,
            handle: StorageHandle { port },
        })
    }

    /// Where the service listens.
    pub fn handle(&self) -> StorageHandle {
        self.handle
    }

    /// The base URL (`http://127.0.0.1:<port>`) workers are given with `--fake-storage`.
    pub fn url(&self) -> String {
        self.handle.url()
    }
}

impl StorageHandle {
    /// The base URL (`http://127.0.0.1:<port>`) workers are given with `--fake-storage`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many objects the service holds (its `GET /_stats` `object_count`).
    ///
    /// # Errors
    /// The service did not answer with its statistics.
    pub fn object_count(&self) -> io::Result<u64> {
        let stats = self.stats()?;
        stats
            .get("object_count")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| io::Error::other(format!("no object_count in {stats}")))
    }

    /// The service's `GET /_stats` answer (object count and per-route counters).
    ///
    /// # Errors
    /// The service did not answer with a JSON object.
    pub fn stats(&self) -> io::Result<serde_json::Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET /_stats HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        serde_json::from_str(body).map_err(|e| io::Error::other(format!("{e}: {answer:?}")))
    }
}

impl Drop for FakeStorage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

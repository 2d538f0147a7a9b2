//! [`Endpoint`]: a worker started on one row of the transport table, and where its
//! clients find it.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use vgi_rpc::client::{Client, ConnectOptions};
use vgi_rpc::transport::Address;

use super::{Transport, WorkerProgram};

/// A worker serving one transport: for sockets a running process, for pipes the command
/// each client spawns. A socket worker is killed and reaped on drop, and the private
/// directory removed. What the processes it starts write to stderr is kept
/// ([`Endpoint::stderr`]).
#[derive(Debug)]
pub struct Endpoint {
    address: String,
    transport: Transport,
    child: Option<(Child, ChildStdout)>,
    dir: PathBuf,
}

impl Endpoint {
    /// Starts (or, for `exec:`, prepares) `program` serving `transport`.
    ///
    /// # Errors
    /// The private directory could not be made, the worker failed to start, or its
    /// first line was not an announcement.
    pub fn start(program: &WorkerProgram, transport: &Transport) -> io::Result<Self> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vgi-matrix-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let argv = program.command_line(transport, &dir);
        let mut endpoint = Endpoint {
            address: String::new(),
            transport: *transport,
            child: None,
            dir,
        };
        if !transport.announced {
            endpoint.address = Address::Exec(argv).to_string();
            return Ok(endpoint);
        }
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(endpoint.stderr_file()?)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", argv.join(" "))))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // Kept open, so that a worker writing to stdout later does not die of SIGPIPE.
        endpoint.child = Some((child, stdout.into_inner()));
        match announced_address(line.trim()) {
            Some(address) => {
                endpoint.address = address.to_string();
                Ok(endpoint)
            }
            None => Err(io::Error::other(format!(
                "{} on {} announced {line:?}; stderr: {}",
                program.label,
                transport.name,
                endpoint.stderr()
            ))),
        }
    }

    /// The client address (`exec:...`, `unix:...`, `tcp://...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The transport this endpoint serves.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// A new client the way this transport's clients connect (with its shared-memory
    /// segment, if it has one); for `exec:`, a new worker process.
    ///
    /// # Errors
    /// As [`Client::connect_with`].
    pub fn connect(&self) -> vgi_rpc::Result<Client> {
        self.connect_with(ConnectOptions::default())
    }

    /// As [`Endpoint::connect`], with `options` (the transport's segment is added).
    ///
    /// # Errors
    /// As [`Client::connect_with`].
    pub fn connect_with(&self, options: ConnectOptions) -> vgi_rpc::Result<Client> {
        let address = Address::parse(&self.address)?;
        Client::connect_with(&address, self.transport.with_options(options))
    }

    /// The socket worker's pid (`None` for `exec:`, where each client spawns its own).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|(child, _)| child.id())
    }

    /// Waits for the socket worker to exit and reaps it (all its threads gone, all its
    /// sockets closed); `None` for `exec:`.
    ///
    /// # Errors
    /// Waiting failed.
    pub fn wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child
            .as_mut()
            .map(|(child, _)| child.wait())
            .transpose()
    }

    /// The socket worker's exit status if it has exited (reaping it); `None` while it
    /// runs, and for `exec:`.
    ///
    /// # Errors
    /// Checking failed.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some((child, _)) => child.try_wait(),
            None => Ok(None),
        }
    }

    pub(super) fn stderr_file(&self) -> io::Result<File> {
        File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr"))
    }

    /// What the socket worker and the raw connections' workers wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read(self.dir.join("stderr"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client address a worker announced: `UNIX:<path>` is `unix:<path>`,
/// `TCP:<host>:<port>` is `tcp://<host>:<port>`.
pub fn announced_address(line: &str) -> Option<Address> {
    if let Some(path) = line.strip_prefix("UNIX:") {
        return Some(Address::Unix(PathBuf::from(path)));
    }
    let (host, port) = line.strip_prefix("TCP:")?.rsplit_once(':')?;
    Some(Address::Tcp(host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_become_addresses() {
        let unix = announced_address("UNIX:/tmp/w.sock").map(|a| a.to_string());
        assert_eq!(unix.as_deref(), Some("unix:/tmp/w.sock"));
        let tcp = announced_address("TCP:127.0.0.1:9000").map(|a| a.to_string());
        assert_eq!(tcp.as_deref(), Some("tcp://127.0.0.1:9000"));
        assert!(announced_address("TCP:127.0.0.1:x").is_none());
        assert!(announced_address("hello").is_none());
    }
}

//! The transport table shared by the test matrix (`conformance/tests/matrix`) and the
//! benchmarks (`vgi-rpc-bench`), and the starting of worker processes on its rows.
//!
//! A transport is a set of worker flags plus how a client finds the worker: through
//! `exec:` (the client spawns the worker with the flags and talks over its stdin/stdout),
//! or through an announcement (the worker binds, prints `UNIX:<path>` or
//! `TCP:<host>:<port>` on stdout, and clients dial `unix:<path>` / `tcp://<host>:<port>`).
//! Our conformance worker, the bench's workers and the Python reference all take the same
//! flags (`--pipe`, `--unix PATH`, `--tcp HOST:PORT`, `--threaded`), so adding a transport
//! is one entry in [`TRANSPORTS`]. A worker with other spellings of those flags says so
//! in its [`WorkerProgram::spelling`].
//!
//! ```no_run
//! use vgi_rpc_conformance::matrix::{Endpoint, TRANSPORTS, WorkerProgram};
//! # fn main() -> std::io::Result<()> {
//! let ours = WorkerProgram::new("ours", vec!["vgi-rpc-conformance-worker".into()]);
//! for transport in TRANSPORTS {
//!     let endpoint = Endpoint::start(&ours, transport)?;
//!     let client = vgi_rpc::client::Client::connect(endpoint.address());
//!     assert!(client.is_ok(), "{}", transport.name);
//! }
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use vgi_rpc::transport::Address;

/// One transport: its name and the worker flags selecting it.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// Name in reports and test names (`pipe`, `unix`, `tcp`, ...).
    pub name: &'static str,
    /// Worker flags, given a private temporary directory (for socket paths).
    pub flags: fn(&Path) -> Vec<String>,
    /// Whether the worker announces an address (sockets) rather than serving stdio.
    pub announced: bool,
}

/// Every transport, in the order reports list them. A new transport adds its row here.
pub const TRANSPORTS: &[Transport] = &[
    Transport {
        name: "pipe",
        flags: |_| strings(&["--pipe"]),
        announced: false,
    },
    Transport {
        name: "unix",
        flags: unix_flags,
        announced: true,
    },
    Transport {
        name: "tcp",
        flags: |_| strings(&["--tcp", "127.0.0.1:0", "--threaded"]),
        announced: true,
    },
];

/// The row of [`TRANSPORTS`] called `name`.
pub fn transport(name: &str) -> Option<&'static Transport> {
    TRANSPORTS.iter().find(|t| t.name == name)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn unix_flags(dir: &Path) -> Vec<String> {
    let path = dir.join("w.sock").display().to_string();
    vec!["--unix".into(), path, "--threaded".into()]
}

/// A worker program: what is started, with a transport's flags appended.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    /// Label in reports and test names (`ours`, `python`, ...).
    pub label: &'static str,
    /// Program and leading arguments (e.g. `vgi-rpc-bench worker`).
    pub argv: Vec<String>,
    /// Rewrites the table's flags into this program's own spelling of them.
    pub spelling: fn(Vec<String>) -> Vec<String>,
}

impl WorkerProgram {
    /// A program that takes the table's flags as they are.
    pub fn new(label: &'static str, argv: Vec<String>) -> Self {
        WorkerProgram {
            label,
            argv,
            spelling: |flags| flags,
        }
    }

    /// The reference `vgi-rpc-conformance` worker (`ConformanceService` and
    /// `conformance.Secondary.v1`) of the venv at `venv`.
    pub fn python_reference(venv: &Path) -> Self {
        let bin = venv.join("bin/vgi-rpc-conformance");
        WorkerProgram::new("python", vec![bin.display().to_string()])
    }

    /// The reference's native-client worker (`ClientConformanceService`, run as
    /// `python -m vgi_rpc.conformance.client_worker`) of the venv at `venv`. It spells
    /// `--pipe` as `--stdio` and always serves sockets concurrently.
    pub fn python_client_worker(venv: &Path) -> Self {
        let python = venv.join("bin/python").display().to_string();
        WorkerProgram {
            label: "python_client_worker",
            argv: vec![
                python,
                "-m".into(),
                "vgi_rpc.conformance.client_worker".into(),
            ],
            spelling: |flags| {
                flags
                    .into_iter()
                    .filter(|f| f != "--threaded")
                    .map(|f| if f == "--pipe" { "--stdio".into() } else { f })
                    .collect()
            },
        }
    }

    /// The same program started under `prefix` (e.g. `taskset -c 1`).
    pub fn prefixed(&self, prefix: &[String]) -> Self {
        let mut argv = prefix.to_vec();
        argv.extend(self.argv.iter().cloned());
        WorkerProgram {
            argv,
            ..self.clone()
        }
    }

    /// The full command line serving `transport`, given its private directory.
    pub fn command_line(&self, transport: &Transport, dir: &Path) -> Vec<String> {
        let mut argv = self.argv.clone();
        argv.extend((self.spelling)((transport.flags)(dir)));
        argv
    }
}

/// The reference venv's location: `$VGI_VENV`, or `target/py-venv` of this workspace
/// (where `scripts/python-venv.sh` creates it). It may not exist.
pub fn python_venv_path() -> PathBuf {
    std::env::var_os("VGI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py-venv"))
}

/// The reference venv, when it exists.
pub fn python_venv() -> Option<PathBuf> {
    let venv = python_venv_path();
    venv.join("bin/vgi-rpc-conformance")
        .exists()
        .then_some(venv)
}

/// The reference venv, created by `scripts/python-venv.sh` first when it is missing or
/// stale (the script checks; it needs Python >= 3.13, chosen with `VGI_PYTHON`).
///
/// # Errors
/// The script failed (its standard error is quoted).
pub fn ensure_python_venv() -> io::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-venv.sh");
    let output = Command::new("bash").arg(script).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "cannot create the reference Python venv (vgi-rpc 0.52.2 needs Python >= 3.13; \
             set VGI_PYTHON): {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let venv = stdout.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(venv))
}

/// A worker serving one transport: for sockets a running process, for pipes the command
/// each client spawns. A socket worker is killed and reaped on drop, and the private
/// directory removed. What the processes it starts write to stderr is kept
/// ([`Endpoint::stderr`]).
#[derive(Debug)]
pub struct Endpoint {
    address: String,
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

    fn stderr_file(&self) -> io::Result<File> {
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

    /// Opens a raw byte stream to the endpoint, below the protocol: a spawned worker's
    /// stdin/stdout for `exec:`, a socket otherwise.
    ///
    /// # Errors
    /// Spawning or connecting failed.
    pub fn open_raw(&self) -> io::Result<RawConnection> {
        let address = Address::parse(&self.address).map_err(io::Error::other)?;
        let (reader, writer, socket, child): (Box<dyn Read + Send>, Box<dyn Write + Send>, _, _) =
            match address {
                Address::Exec(argv) => {
                    let mut child = Command::new(&argv[0])
                        .args(&argv[1..])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(self.stderr_file()?)
                        .spawn()?;
                    let stdin = child.stdin.take().ok_or(io::ErrorKind::BrokenPipe)?;
                    let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
                    (Box::new(stdout), Box::new(stdin), None, Some(child))
                }
                Address::Unix(path) => {
                    let s = UnixStream::connect(path)?;
                    let socket = RawSocket::Unix(s.try_clone()?);
                    (Box::new(s.try_clone()?), Box::new(s), Some(socket), None)
                }
                Address::Tcp(host, port) => {
                    let s = TcpStream::connect((host.as_str(), port))?;
                    s.set_nodelay(true)?;
                    let socket = RawSocket::Tcp(s.try_clone()?);
                    (Box::new(s.try_clone()?), Box::new(s), Some(socket), None)
                }
                other => return Err(io::Error::other(format!("no raw stream for {other}"))),
            };
        Ok(RawConnection {
            reader,
            writer,
            socket,
            child,
        })
    }

    /// The client address (`exec:...`, `unix:...`, `tcp://...`).
    pub fn address(&self) -> &str {
        &self.address
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

/// A raw byte stream to an [`Endpoint`]. A spawned worker is killed and reaped on drop.
pub struct RawConnection {
    /// Bytes from the worker.
    pub reader: Box<dyn Read + Send>,
    /// Bytes to the worker.
    pub writer: Box<dyn Write + Send>,
    socket: Option<RawSocket>,
    child: Option<Child>,
}

enum RawSocket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl RawConnection {
    /// Ends the direction towards the worker (it reads EOF); reading goes on.
    ///
    /// # Errors
    /// Flushing or shutting the socket down failed.
    pub fn close_write(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        self.writer = Box::new(io::sink());
        match &self.socket {
            Some(RawSocket::Unix(s)) => s.shutdown(Shutdown::Write),
            Some(RawSocket::Tcp(s)) => s.shutdown(Shutdown::Write),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for RawConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConnection")
            .field("child", &self.child)
            .finish_non_exhaustive()
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
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

    #[test]
    fn a_program_spells_the_table_flags_its_own_way() {
        let venv = Path::new("/venv");
        let pipe = transport("pipe")
            .map(|t| (t.flags)(venv))
            .unwrap_or_default();
        let client_worker = WorkerProgram::python_client_worker(venv);
        assert_eq!((client_worker.spelling)(pipe.clone()), ["--stdio"]);
        let ours = WorkerProgram::new("ours", vec!["w".into()]).prefixed(&["nice".into()]);
        let tcp = transport("tcp").map(|t| ours.command_line(t, venv));
        assert_eq!(
            tcp.unwrap_or_default(),
            ["nice", "w", "--tcp", "127.0.0.1:0", "--threaded"]
        );
        assert_eq!((ours.spelling)(pipe), ["--pipe"]);
    }
}

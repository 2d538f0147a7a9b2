//! The transport table and worker processes.
//!
//! A transport is a worker command line plus how the client finds the worker: `exec:`
//! (the client spawns the worker and talks over its stdin/stdout) or an announced
//! address (the worker binds, prints `UNIX:<path>` / `TCP:<host>:<port>` on stdout, and
//! clients connect). Our worker, the raw baseline server and the Python reference all
//! take the same flags, so adding a transport is one entry in [`TRANSPORTS`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use vgi_rpc::client::{Client, ConnectOptions};

use crate::placement::Placement;

/// One transport: its label, the worker flags selecting it, and how clients connect.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// Label in reports (`pipe`, `unix`, `tcp`, `shm`, ...).
    pub name: &'static str,
    /// Worker flags, given a private temporary directory.
    pub flags: fn(&Path) -> Vec<String>,
    /// Whether the worker announces an address (sockets) rather than serving stdio.
    pub announced: bool,
    /// Shared-memory segment size clients create per connection (`None`: no shared
    /// memory). The byte stream beside it is the one `flags` select; raw baselines of
    /// such a transport measure that byte stream.
    pub shm: Option<usize>,
}

/// Every benchmarked transport. HTTP adds its line here.
pub const TRANSPORTS: &[Transport] = &[
    Transport {
        name: "pipe",
        flags: |_| strings(&["--pipe"]),
        announced: false,
        shm: None,
    },
    Transport {
        name: "unix",
        flags: |d| unix_flags(d),
        announced: true,
        shm: None,
    },
    Transport {
        name: "tcp",
        flags: |_| strings(&["--tcp", "127.0.0.1:0", "--threaded"]),
        announced: true,
        shm: None,
    },
    Transport {
        name: "shm",
        flags: |_| strings(&["--pipe"]),
        announced: false,
        shm: Some(64 << 20),
    },
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn unix_flags(dir: &Path) -> Vec<String> {
    let path = dir.join("w.sock").display().to_string();
    vec!["--unix".into(), path, "--threaded".into()]
}

/// Which worker program serves.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    /// Label in reports (`rust`, `python`, `raw`).
    pub label: &'static str,
    /// Program and leading arguments (e.g. `vgi-rpc-bench worker`).
    pub argv: Vec<String>,
}

impl WorkerProgram {
    /// This harness's worker (conformance services + `VgiBench`), from the binary at `exe`.
    pub fn rust(exe: &Path) -> Self {
        WorkerProgram {
            label: "rust",
            argv: vec![exe.display().to_string(), "worker".into()],
        }
    }

    /// The raw baseline server (ping-pong and bulk bytes), from the binary at `exe`.
    pub fn raw(exe: &Path) -> Self {
        WorkerProgram {
            label: "raw",
            argv: vec![exe.display().to_string(), "raw-server".into()],
        }
    }

    /// The Python reference worker, when the venv exists (`VGI_VENV`, default
    /// `target/py-venv` of this workspace, where `scripts/python-venv.sh` creates it).
    pub fn python() -> Option<Self> {
        let venv = std::env::var_os("VGI_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py-venv"));
        let bin = venv.join("bin/vgi-rpc-conformance");
        bin.exists().then(|| WorkerProgram {
            label: "python",
            argv: vec![bin.display().to_string()],
        })
    }
}

/// A worker serving one transport: for sockets a running process, for pipes a command
/// that each client spawns. Killed and reaped on drop.
#[derive(Debug)]
pub struct Endpoint {
    /// The client address (`exec:...`, `unix:...`, `tcp://...`).
    pub address: String,
    /// The shared-memory segment size clients use, if any.
    pub shm: Option<usize>,
    /// The socket worker process.
    child: Option<Child>,
    dir: PathBuf,
}

impl Endpoint {
    /// Starts (or, for `exec:`, prepares) `program` serving `transport`, on the worker
    /// core of `placement`.
    ///
    /// # Errors
    /// The worker failed to start or announced something unexpected.
    pub fn start(
        program: &WorkerProgram,
        transport: &Transport,
        placement: &Placement,
    ) -> anyhow::Result<Self> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vgi-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut argv = placement.worker_prefix();
        argv.extend(program.argv.iter().cloned());
        argv.extend((transport.flags)(&dir));
        if !transport.announced {
            return Ok(Endpoint {
                address: format!("exec:{}", argv.join(" ")),
                shm: transport.shm,
                child: None,
                dir,
            });
        }
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", argv.join(" ")))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let address = match announced_address(line.trim()) {
            Some(a) => a,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} announced {line:?}", program.label);
            }
        };
        Ok(Endpoint {
            address,
            shm: transport.shm,
            child: Some(child),
            dir,
        })
    }

    /// Opens a client connection the way this transport's clients do (with its
    /// shared-memory segment, if any).
    ///
    /// # Errors
    /// The address is invalid or the worker cannot be reached.
    pub fn connect(&self) -> vgi_rpc::Result<Client> {
        let mut options = ConnectOptions::default();
        if let Some(size) = self.shm {
            options = options.with_shm(size);
        }
        Client::connect_with(&self.address.parse()?, options)
    }

    /// The socket worker's pid (`None` for `exec:`, where each client spawns its own).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Opens a raw byte stream to the endpoint (for the baseline server): the spawned
    /// child's stdio for `exec:`, a socket otherwise. The child, if any, comes back too.
    ///
    /// # Errors
    /// Spawning or connecting failed.
    pub fn connect_raw(&self) -> anyhow::Result<RawStream> {
        if let Some(cmd) = self.address.strip_prefix("exec:") {
            let argv: Vec<&str> = cmd.split_whitespace().collect();
            let mut child = Command::new(argv[0])
                .args(&argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let w = child.stdin.take().context("child stdin")?;
            let r = child.stdout.take().context("child stdout")?;
            return Ok(RawStream {
                reader: Box::new(r),
                writer: Box::new(w),
                child: Some(child),
            });
        }
        if let Some(path) = self.address.strip_prefix("unix:") {
            let s = UnixStream::connect(path)?;
            return Ok(RawStream {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s),
                child: None,
            });
        }
        if let Some(hp) = self.address.strip_prefix("tcp://") {
            let s = TcpStream::connect(hp)?;
            s.set_nodelay(true)?;
            return Ok(RawStream {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s),
                child: None,
            });
        }
        bail!("no raw stream for {}", self.address)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `UNIX:<path>` -> `unix:<path>`, `TCP:<host>:<port>` -> `tcp://<host>:<port>`.
pub fn announced_address(line: &str) -> Option<String> {
    if let Some(path) = line.strip_prefix("UNIX:") {
        return Some(format!("unix:{path}"));
    }
    line.strip_prefix("TCP:").map(|hp| format!("tcp://{hp}"))
}

/// A raw byte stream to a baseline server.
pub struct RawStream {
    /// Bytes from the server.
    pub reader: Box<dyn Read + Send>,
    /// Bytes to the server.
    pub writer: Box<dyn Write + Send>,
    /// The spawned server for pipes.
    pub child: Option<Child>,
}

impl Drop for RawStream {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

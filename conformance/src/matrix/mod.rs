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
//! Shared memory is a client option beside a byte stream, not a worker flag: the `shm`
//! row is the pipe's flags plus a segment size ([`Transport::shm`]), and its clients
//! connect through [`Endpoint::connect`] (or with [`Transport::connect_options`]), which
//! create the segment and offer it to the worker.
//!
//! ```no_run
//! use vgi_rpc_conformance::matrix::{Endpoint, TRANSPORTS, WorkerProgram};
//! # fn main() -> std::io::Result<()> {
//! let ours = WorkerProgram::new("ours", vec!["vgi-rpc-conformance-worker".into()]);
//! for transport in TRANSPORTS {
//!     let endpoint = Endpoint::start(&ours, transport)?;
//!     let client = endpoint.connect();
//!     assert!(client.is_ok(), "{}", transport.name);
//! }
//! # Ok(()) }
//! ```

mod endpoint;
mod raw;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use vgi_rpc::client::ConnectOptions;

pub use endpoint::{Endpoint, announced_address};
pub use raw::{Answer, RawConnection, read_answers};

/// One transport: its name and the worker flags selecting it.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// Name in reports and test names (`pipe`, `unix`, `tcp`, ...).
    pub name: &'static str,
    /// Worker flags, given a private temporary directory (for socket paths).
    pub flags: fn(&Path) -> Vec<String>,
    /// Whether the worker announces an address (sockets) rather than serving stdio.
    pub announced: bool,
    /// Size of the shared-memory segment each client creates beside the byte stream
    /// (`None`: no shared memory). The byte stream is the one `flags` select.
    pub shm: Option<usize>,
}

impl Transport {
    /// How this transport's clients connect: default options, plus the segment of
    /// [`Transport::shm`] if it has one.
    pub fn connect_options(&self) -> ConnectOptions {
        self.with_options(ConnectOptions::default())
    }

    /// `options` with this transport's shared-memory segment added (if it has one).
    pub fn with_options(&self, options: ConnectOptions) -> ConnectOptions {
        match self.shm {
            Some(size) => options.with_shm(size),
            None => options,
        }
    }
}

/// Segment size of the `shm` row: 64 MiB, room for many ~3 MB batches in flight.
pub const SHM_SEGMENT_SIZE: usize = 64 << 20;

/// Every transport, in the order reports list them. A new transport adds its row here.
pub const TRANSPORTS: &[Transport] = &[
    Transport {
        name: "pipe",
        flags: |_| strings(&["--pipe"]),
        announced: false,
        shm: None,
    },
    Transport {
        name: "unix",
        flags: unix_flags,
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
        shm: Some(SHM_SEGMENT_SIZE),
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_shm_row_is_the_pipe_plus_a_segment() {
        let dir = Path::new("/tmp");
        let (Some(pipe), Some(shm)) = (transport("pipe"), transport("shm")) else {
            panic!("the pipe and shm rows");
        };
        assert_eq!((shm.flags)(dir), (pipe.flags)(dir));
        assert_eq!(shm.announced, pipe.announced);
        assert_eq!(shm.connect_options().shm, Some(SHM_SEGMENT_SIZE));
        assert_eq!(pipe.connect_options().shm, None);
    }
}

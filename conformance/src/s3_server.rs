//! A real S3-API server for tests and benchmarks: moto's, run from the venv
//! (`scripts/python-venv.sh` installs `moto[server]`) by `conformance/python/s3_server.py`
//! as a child process on a free loopback port, with its buckets created before it
//! announces `PORT:<n>`.
//!
//! Why moto: it installs from PyPI in seconds beside the reference (which needs boto3
//! for its own `S3Storage` anyway), speaks SigV4 uploads, presigned GETs, `HEAD` and
//! byte ranges, and logs every request with its status; [`S3Server::range_requests`]
//! counts the `206` answers in that log, which is how a test proves a reader really took
//! the parallel range path. It is a mock, not a fast store: it copies the whole object
//! for every range it serves, so its throughput figures describe moto.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The access key the server accepts (moto takes any; the tests pass this one).
pub const ACCESS_KEY: &str = "testing";
/// The secret key that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";
/// The region the buckets are in.
pub const REGION: &str = "us-east-1";

/// A running S3-API server; killed and reaped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl S3Server {
    /// Starts moto's server with the venv at `venv` and creates `buckets`.
    ///
    /// # Errors
    /// moto is not installed in the venv (run `scripts/python-venv.sh`), or the server
    /// did not announce its port.
    pub fn start(venv: &Path, buckets: &[&str]) -> io::Result<Self> {
        Self::start_with(venv, buckets, &[])
    }

    /// As [`S3Server::start`], the interpreter run under `prefix` (e.g. `taskset -c 1`
    /// to pin the server to a core).
    ///
    /// # Errors
    /// As [`S3Server::start`].
    pub fn start_with(venv: &Path, buckets: &[&str], prefix: &[String]) -> io::Result<Self> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/s3_server.py");
        let log = std::env::temp_dir().join(format!(
            "vgi-s3-{}-{}.log",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let python = venv.join("bin/python").display().to_string();
        let argv: Vec<&str> = prefix
            .iter()
            .map(String::as_str)
            .chain([python.as_str()])
            .collect();
        let started = crate::announce::spawn_announcing(
            Command::new(argv[0])
                .args(&argv[1..])
                .arg(&script)
                .args(buckets)
                .stdin(Stdio::piped())
                .stderr(File::create(&log)?),
        );
        match started {
            Ok((child, port)) => Ok(S3Server { child, port, log }),
            Err(e) => {
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                Err(io::Error::other(format!(
                    "the S3-API server (moto, from {}) did not start: {e}\n{stderr}\n\
                     is moto[server] installed in the venv? scripts/python-venv.sh installs it",
                    venv.display()
                )))
            }
        }
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a client of this server needs (credentials and region), for
    /// boto3 and `object_store` alike.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ]
    }

    /// The server's request log so far (one line per request, with its status).
    ///
    /// # Errors
    /// The log cannot be read.
    pub fn log(&self) -> io::Result<String> {
        std::fs::read_to_string(&self.log)
    }

    /// How many requests the server answered `206 Partial Content` so far.
    ///
    /// # Errors
    /// The log cannot be read.
    pub fn range_requests(&self) -> io::Result<usize> {
        Ok(self
            .log()?
            .lines()
            .filter(|l| l.contains("\" 206 "))
            .count())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

//! Opening the byte stream an [`Address`] names, and owning what it needs: for `exec:` the
//! worker process and the tail of its standard error.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::io::{DeadlineCell, DeadlineReader, Interrupter};
use super::{Address, BoxRead, BoxWrite, ConnectOptions, Connection, StderrMode};
use crate::{Error, Result};

/// An open connection plus what keeps it alive. Field order matters: the connection
/// (the worker's stdin) is dropped before the worker is reaped.
pub(crate) struct Transport {
    pub(crate) conn: Connection<BoxRead, BoxWrite>,
    pub(crate) deadline: Arc<DeadlineCell>,
    pub(crate) interrupter: Interrupter,
    pub(crate) worker: Option<Worker>,
}

impl Transport {
    pub(crate) fn open(address: &Address, options: &ConnectOptions) -> Result<Transport> {
        let deadline = DeadlineCell::new();
        match address {
            Address::Exec(argv) => spawn(argv, options, deadline),
            Address::Unix(path) => {
                let stream = UnixStream::connect(path).map_err(|e| {
                    Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot connect to unix:{}: {e}", path.display()),
                    ))
                })?;
                let writer = stream.try_clone()?;
                let interrupter = Interrupter::Unix(stream.try_clone()?);
                Ok(Transport {
                    conn: Connection::new(
                        Box::new(DeadlineReader::new(stream, Arc::clone(&deadline))),
                        Box::new(writer),
                    ),
                    deadline,
                    interrupter,
                    worker: None,
                })
            }
            Address::Tcp(host, port) => {
                let stream = connect_tcp(host, *port, options.connect_timeout)?;
                stream.set_nodelay(true)?;
                let writer = stream.try_clone()?;
                let interrupter = Interrupter::Tcp(stream.try_clone()?);
                Ok(Transport {
                    conn: Connection::new(
                        Box::new(DeadlineReader::new(stream, Arc::clone(&deadline))),
                        Box::new(writer),
                    ),
                    deadline,
                    interrupter,
                    worker: None,
                })
            }
        }
    }

    /// Tears the transport down now: an `exec:` worker is killed, not given a grace period.
    pub(crate) fn kill(mut self) {
        if let Some(worker) = &mut self.worker {
            worker.grace = Duration::ZERO;
        }
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream> {
    let fail = |e: std::io::Error| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot connect to tcp://{host}:{port}: {e}"),
        ))
    };
    let Some(timeout) = timeout else {
        return TcpStream::connect((host, port)).map_err(fail);
    };
    let mut last = None;
    for addr in (host, port).to_socket_addrs().map_err(fail)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(fail(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address resolved")
    })))
}

fn spawn(
    argv: &[String],
    options: &ConnectOptions,
    deadline: Arc<DeadlineCell>,
) -> Result<Transport> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::protocol("exec: address with an empty command"))?;
    let stderr = match options.stderr {
        StderrMode::Capture(_) => Stdio::piped(),
        StderrMode::Inherit => Stdio::inherit(),
        StderrMode::Null => Stdio::null(),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot start worker {program:?}: {e}"),
            ))
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::protocol("worker pipes unavailable"));
    };
    let stderr_tail = match (options.stderr, child.stderr.take()) {
        (StderrMode::Capture(cap), Some(pipe)) => Some(StderrTail::start(pipe, cap)),
        _ => None,
    };
    let child = Arc::new(Mutex::new(child));
    Ok(Transport {
        conn: Connection::new(
            Box::new(DeadlineReader::new(stdout, Arc::clone(&deadline))),
            Box::new(stdin),
        ),
        deadline,
        interrupter: Interrupter::Kill(Arc::clone(&child)),
        worker: Some(Worker {
            child,
            stderr: stderr_tail,
            grace: options.exit_grace,
        }),
    })
}

/// A spawned worker: reaped (and killed if need be) on drop, so none is left behind.
pub(crate) struct Worker {
    child: Arc<Mutex<Child>>,
    stderr: Option<Arc<StderrTail>>,
    grace: Duration,
}

impl Worker {
    /// The worker's process id.
    pub(crate) fn id(&self) -> Option<u32> {
        self.child.lock().ok().map(|c| c.id())
    }

    /// Describes a worker that failed mid-call: its exit status (waiting up to `wait` for
    /// it to exit) and the tail of its standard error.
    pub(crate) fn failure_report(&self, wait: Duration) -> String {
        let status = self.wait_exit(wait);
        let mut report = match status {
            Some(status) => format!("worker exited ({status})"),
            None => "worker is still running".to_owned(),
        };
        if let Some(tail) = &self.stderr {
            let text = tail.snapshot(if status.is_some() {
                wait
            } else {
                Duration::ZERO
            });
            let text = text.trim_end();
            if !text.is_empty() {
                report.push_str("; its stderr ends with:\n");
                report.push_str(text);
            }
        }
        report
    }

    /// Kills and reaps the worker now (a no-op if it was already reaped).
    pub(crate) fn kill_and_reap(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_exit(&self, wait: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        let mut nap = Duration::from_micros(50);
        loop {
            if let Ok(mut child) = self.child.lock()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Some(status);
            }
            if start.elapsed() >= wait {
                return None;
            }
            std::thread::sleep(nap.min(wait.saturating_sub(start.elapsed())));
            nap = (nap * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The connection (the worker's stdin) is already closed: a well-behaved worker
        // exits at EOF. Give it `grace`, then kill; always reap.
        if self.wait_exit(self.grace).is_none() {
            self.kill_and_reap();
        }
    }
}

/// The last `cap` bytes a worker wrote to stderr, collected by a small reader thread (off
/// the call path; it ends when the worker's stderr closes).
pub(crate) struct StderrTail {
    state: Mutex<(Vec<u8>, bool)>,
    done: Condvar,
    cap: usize,
}

impl StderrTail {
    fn start(mut pipe: ChildStderr, cap: usize) -> Arc<StderrTail> {
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
    fn snapshot(&self, wait: Duration) -> String {
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

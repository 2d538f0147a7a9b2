//! The client end of a pipe: start a worker process and speak over its stdin/stdout.
//!
//! The worker is owned by the link's control: dropping the client closes the worker's
//! stdin (a well-behaved worker exits at EOF), gives it a grace period, then kills it;
//! it is always reaped, so no zombie or orphan is left behind. A cancel or a failed call
//! kills it at once.

use std::os::fd::AsFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::stderr_tail::StderrTail;
use crate::client::{ConnectOptions, Deadline, Link, LinkControl, StderrMode};
use crate::transport::direct::Direct;
use crate::transport::fd::DeadlineReader;
use crate::transport::lend;
use crate::{Error, Result};

/// Starts the worker `argv` (program first) and returns a link over its pipes.
pub(crate) fn spawn(
    argv: &[String],
    options: &ConnectOptions,
    deadline: &Arc<Deadline>,
) -> Result<Link> {
    let endpoint = || format!("exec:{}", argv.join(" "));
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::InvalidAddress {
            address: "exec:".to_owned(),
            reason: "an empty command".to_owned(),
        });
    };
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
        .map_err(|source| Error::Connect {
            endpoint: endpoint(),
            source,
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Connect {
            endpoint: endpoint(),
            source: std::io::Error::other("worker pipes unavailable"),
        });
    };
    let stderr_tail = match (options.stderr, child.stderr.take()) {
        (StderrMode::Capture(cap), Some(pipe)) => Some(StderrTail::start(pipe, cap)),
        _ => None,
    };
    let control = Arc::new(Worker {
        child: Mutex::new(child),
        stderr: stderr_tail,
        grace: options.exit_grace,
    });
    let reader = DeadlineReader::new(stdout, deadline);
    // Large request bodies are lent to the worker's stdin (`wire::Splice`).
    let lender = lend::lender(stdin.as_fd());
    Ok(
        Link::from_parts(Box::new(reader), Box::new(Direct::file(stdin)), control)
            .trusted()
            .lending(lender),
    )
}

/// A spawned worker: reaped (and killed if need be) on drop, so none is left behind.
struct Worker {
    child: Mutex<Child>,
    stderr: Option<Arc<StderrTail>>,
    grace: Duration,
}

impl Worker {
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

    fn kill_and_reap(&self) {
        if let Ok(mut child) = self.child.lock() {
            // `Child::kill` never signals a pid that was already reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl LinkControl for Worker {
    fn interrupt(&self) {
        // Its pipes then read as closed and fail on write.
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
        }
    }

    fn abort(&self) {
        self.kill_and_reap();
    }

    fn failure_report(&self, wait: Duration) -> Option<String> {
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
        Some(report)
    }

    fn process_id(&self) -> Option<u32> {
        self.child.lock().ok().map(|c| c.id())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The link (the worker's stdin) is already closed: a well-behaved worker exits at
        // EOF. Give it the grace period, then kill; always reap.
        if self.wait_exit(self.grace).is_none() {
            self.kill_and_reap();
        }
    }
}

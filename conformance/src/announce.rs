//! Child processes that announce where they listen: the first line of their standard
//! output is `PORT:<n>` (our worker with `--http 0`, the reference's HTTP worker, the
//! fake storage and S3 servers, the OTLP receiver). One place starts them and reads it.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Spawns `command` with its standard output piped and returns it with the port of its
/// `PORT:<n>` line. A child that prints anything else is killed and reported.
///
/// # Errors
/// The spawn failed, or the first line was not `PORT:<n>`.
pub fn spawn_announcing(command: &mut Command) -> io::Result<(Child, u16)> {
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    match line
        .trim()
        .strip_prefix("PORT:")
        .and_then(|p| p.parse().ok())
    {
        Some(port) => Ok((child, port)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other(format!(
                "{command:?} announced {line:?}, not PORT:<n>"
            )))
        }
    }
}

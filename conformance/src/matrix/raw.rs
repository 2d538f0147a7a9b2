//! Below the client engine: raw byte streams to an [`Endpoint`], and reading what a
//! worker answered to bytes no client would send.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use arrow_array::RecordBatch;
use vgi_rpc::RpcError;
use vgi_rpc::client::rpc_error_from_metadata;
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{self, BatchKind, Limits, StreamItem};

use super::Endpoint;

impl Endpoint {
    /// Opens a raw byte stream to the endpoint, below the protocol: a spawned worker's
    /// stdin/stdout for `exec:`, a socket otherwise.
    ///
    /// # Errors
    /// Spawning or connecting failed.
    pub fn open_raw(&self) -> io::Result<RawConnection> {
        let address = Address::parse(self.address()).map_err(io::Error::other)?;
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

/// One answer stream as a client would read it: its data batches, or the error its
/// EXCEPTION batch carries. Log batches are skipped.
pub type Answer = Result<Vec<RecordBatch>, RpcError>;

/// Reads answer streams from `r` until it ends (for a raw connection, until the worker
/// closes it), below the client engine: for checking what a worker answers to bytes no
/// client would send.
///
/// # Errors
/// The answer bytes themselves are malformed or end inside a stream (a worker that died
/// mid-answer).
pub fn read_answers(r: &mut dyn Read) -> vgi_rpc::Result<Vec<Answer>> {
    let limits = Limits::default();
    let mut answers = Vec::new();
    loop {
        let mut decoder = match wire::read_stream_start(r, &limits) {
            Ok(decoder) => decoder,
            Err(vgi_rpc::Error::Closed) => return Ok(answers),
            Err(e) => return Err(e),
        };
        let mut answer = Ok(Vec::new());
        while let StreamItem::Batch(batch, metadata) =
            wire::read_stream_item(r, &mut decoder, &limits)?
        {
            match (BatchKind::of(&batch, &metadata), &mut answer) {
                (BatchKind::Exception, _) => answer = Err(rpc_error_from_metadata(&metadata)),
                (BatchKind::Log, _) | (_, Err(_)) => {}
                (_, Ok(batches)) => batches.push(batch),
            }
        }
        answers.push(answer);
    }
}

//! The worker side of the harness: `vgi-rpc-bench worker` (the conformance services plus
//! `VgiBench`, i.e. the same methods the Python reference serves) and
//! `vgi-rpc-bench raw-server` (the physical baselines). Both take the conformance
//! worker's flags: `--pipe` (default) | `--unix PATH` | `--tcp HOST:PORT`, and announce
//! `UNIX:<path>` / `TCP:<host>:<port>` on stdout for sockets. The worker also takes
//! `--validation full|standard|none`: how much of what its client sends it checks (below
//! `full` only on its stdio, i.e. for the client that started it).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::pipe::{IoSliceRaw, SpliceFlags, splice, vmsplice};
use std::os::unix::net::UnixListener;
use std::thread;

use anyhow::{Context as _, bail};
use vgi_rpc::transport::{
    Listener, ServeOptions, Shutdown, TcpSocketListener, UnixSocketListener, serve_listener,
};

use vgi_rpc::wire::Validation;

use crate::service::{BenchServer, BenchService};

/// Pipe buffer size asked for with `F_SETPIPE_SZ`: the same as `serve_stdio`, so the
/// raw baseline and the worker get equal pipes.
pub const PIPE_BUFFER: usize = vgi_rpc::transport::STDIO_PIPE_BUFFER;

/// Where a worker serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// stdin/stdout.
    Pipe,
    /// A Unix socket path.
    Unix(String),
    /// A TCP `host:port`.
    Tcp(String),
    /// HTTP on 127.0.0.1 and this port (0: any free one); announces `PORT:<n>`.
    Http(u16),
}

/// Parses the worker flags (`--threaded` is accepted; sockets are always threaded).
///
/// # Errors
/// An unknown flag or a missing value.
pub fn parse_listen(args: &[String]) -> anyhow::Result<Listen> {
    Ok(parse_worker(args)?.0)
}

/// Parses the worker flags and `--validation LEVEL` (default `full`).
///
/// # Errors
/// An unknown flag, a missing value or an unknown level.
pub fn parse_worker(args: &[String]) -> anyhow::Result<(Listen, Validation)> {
    let mut listen = Listen::Pipe;
    let mut validation = Validation::Full;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pipe" => listen = Listen::Pipe,
            "--unix" => listen = Listen::Unix(it.next().context("--unix PATH")?.clone()),
            "--tcp" => listen = Listen::Tcp(it.next().context("--tcp HOST:PORT")?.clone()),
            "--http" => listen = Listen::Http(it.next().context("--http PORT")?.parse()?),
            "--validation" => validation = it.next().context("--validation LEVEL")?.parse()?,
            "--threaded" => {}
            other => bail!("unknown worker flag {other:?}"),
        }
    }
    Ok((listen, validation))
}

/// Grows both stdio pipes (best effort: not a pipe, or over the limit, is fine).
pub fn grow_stdio_pipes() {
    let _ = rustix::pipe::fcntl_setpipe_size(io::stdin().as_fd(), PIPE_BUFFER);
    let _ = rustix::pipe::fcntl_setpipe_size(io::stdout().as_fd(), PIPE_BUFFER);
}

/// Serves the conformance services and `VgiBench` until stdin closes (pipe) or forever,
/// checking what clients send at `validation`, with `hook` (the `otel` rows' telemetry)
/// if given.
///
/// # Errors
/// Binding or serving failed.
pub fn run_worker(
    listen: &Listen,
    validation: Validation,
    hook: Option<std::sync::Arc<dyn vgi_rpc::server::CallHook>>,
) -> anyhow::Result<()> {
    let mut builder = vgi_rpc_conformance::server_builder();
    if let Some(hook) = hook {
        builder = builder.hook(hook);
    }
    #[allow(unsafe_code)]
    // SAFETY: a level below full is asked for on the command line by whoever starts this
    // benchmark worker (the harness, for its own client); the library applies it only to
    // the worker's stdio, i.e. to the client that started it.
    let builder = unsafe { builder.validation(validation) };
    let server = builder
        .service(BenchServer::new(BenchService::default()))
        .build()?;
    let options = ServeOptions::default().threaded(true);
    let shutdown = Shutdown::new()?;
    match listen {
        Listen::Pipe => {
            // serve_stdio grows the pipes itself.
            vgi_rpc::serve_stdio(server)?;
        }
        Listen::Unix(path) => {
            let listener = UnixSocketListener::bind(path)?;
            announce(&listener.discovery_line())?;
            serve_listener(&server, &listener, &options, &shutdown)?;
        }
        Listen::Tcp(addr) => {
            let listener = TcpSocketListener::bind(addr.as_str())?;
            announce(&listener.discovery_line())?;
            serve_listener(&server, &listener, &options, &shutdown)?;
        }
        Listen::Http(port) => {
            let listener = TcpListener::bind(("127.0.0.1", *port))?;
            announce(&format!("PORT:{}", listener.local_addr()?.port()))?;
            let options = vgi_rpc::transport::http::HttpOptions::default();
            vgi_rpc::transport::http::serve(&server, &options, listener, &shutdown)?;
        }
    }
    Ok(())
}

fn announce(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Raw-server command: 1-byte ping.
pub const CMD_PING: u8 = b'p';
/// Raw-server command: followed by a little-endian u64 `n`, asks for `n` bytes.
pub const CMD_BULK: u8 = b'b';
/// Raw-server command: as [`CMD_BULK`], the bytes lent to the kernel when the connection
/// is a pipe (`vmsplice`) or a Unix stream socket (`vmsplice` into a private pipe, then
/// `splice`), as our worker lends its large answers (written otherwise).
pub const CMD_BULK_LENT: u8 = b'l';
/// Chunk size of raw bulk writes.
pub const RAW_CHUNK: usize = 4 << 20;

/// Serves the raw baseline protocol on one byte stream until EOF.
///
/// # Errors
/// I/O errors other than the peer closing.
pub fn raw_session(mut reader: impl Read, mut writer: impl Write + AsFd) -> io::Result<()> {
    let chunk = crate::raw::PageAligned::filled(RAW_CHUNK, 0x5a);
    let lender = RawLender::for_fd(writer.as_fd())?;
    let mut cmd = [0u8; 1];
    loop {
        match reader.read_exact(&mut cmd) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        match cmd[0] {
            CMD_PING => writer.write_all(&cmd)?,
            CMD_BULK | CMD_BULK_LENT => {
                let mut n = [0u8; 8];
                reader.read_exact(&mut n)?;
                let mut left = u64::from_le_bytes(n) as usize;
                while left > 0 {
                    let take = left.min(RAW_CHUNK);
                    match (&lender, cmd[0]) {
                        (Some(lender), CMD_BULK_LENT) => {
                            lender.lend(writer.as_fd(), &chunk[..take])?;
                        }
                        _ => writer.write_all(&chunk[..take])?,
                    }
                    left -= take;
                }
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raw command {other}"),
                ));
            }
        }
        writer.flush()?;
    }
}

/// How the raw server lends bytes, as our worker does (the library's own lender is not
/// used: the raw baseline runs no library code).
enum RawLender {
    /// `vmsplice` into the pipe the session writes.
    Pipe,
    /// `vmsplice` into this private pipe (read end, write end, capacity), then `splice`
    /// into the Unix stream socket the session writes.
    Socket(OwnedFd, OwnedFd, usize),
}

impl RawLender {
    /// How to lend to `fd`, if it is a pipe or a Unix stream socket.
    fn for_fd(fd: BorrowedFd<'_>) -> io::Result<Option<Self>> {
        use rustix::fs::{FileType, fstat};
        use rustix::net::{AddressFamily, SocketType, sockopt};
        if FileType::from_raw_mode(fstat(fd)?.st_mode) == FileType::Fifo {
            return Ok(Some(RawLender::Pipe));
        }
        let unix_stream = sockopt::socket_domain(fd).is_ok_and(|d| d == AddressFamily::UNIX)
            && sockopt::socket_type(fd).is_ok_and(|t| t == SocketType::STREAM);
        if !unix_stream {
            return Ok(None);
        }
        let (r, w) = rustix::pipe::pipe()?;
        let capacity = rustix::pipe::fcntl_setpipe_size(&w, 1 << 20)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(&w))?;
        Ok(Some(RawLender::Socket(r, w, capacity)))
    }

    /// Lends `bytes` whole to `fd`.
    fn lend(&self, fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let (into, most) = match self {
                RawLender::Pipe => (fd, bytes.len()),
                RawLender::Socket(_, w, capacity) => (w.as_fd(), *capacity),
            };
            let piece = &bytes[..bytes.len().min(most)];
            let slice = [IoSliceRaw::from_slice(piece)];
            #[allow(unsafe_code)]
            // SAFETY: `into` is a pipe's write end (the session's stdout, or our own
            // pipe); the lent chunk is filled once per session and never written again,
            // so the reader sees its bytes.
            let sent = unsafe { vmsplice(into, &slice, SpliceFlags::empty()) }?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            if let RawLender::Socket(r, _, _) = self {
                let mut left = sent;
                while left > 0 {
                    left -= splice(r, None, fd, None, left, SpliceFlags::MOVE)?;
                }
            }
            bytes = &bytes[sent..];
        }
        Ok(())
    }
}

/// Serves the raw baseline protocol on `listen` (sockets: one thread per connection).
///
/// # Errors
/// Binding failed.
pub fn run_raw_server(listen: &Listen) -> anyhow::Result<()> {
    match listen {
        Listen::Pipe => {
            grow_stdio_pipes();
            let stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
            let stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);
            raw_session(stdin, stdout)?;
        }
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path)?;
            announce(&format!("UNIX:{path}"))?;
            for stream in listener.incoming() {
                let stream = stream?;
                // The send buffer our worker's lending sockets ask for, so that both
                // sides of the comparison queue as much at once.
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(
                    &stream,
                    vgi_rpc::transport::LENDING_SOCKET_BUFFER,
                );
                let reader = stream.try_clone()?;
                thread::spawn(move || raw_session(reader, stream));
            }
        }
        Listen::Tcp(addr) => {
            let listener = TcpListener::bind(addr.as_str())?;
            announce(&format!("TCP:{}", listener.local_addr()?))?;
            for stream in listener.incoming() {
                let stream = stream?;
                stream.set_nodelay(true)?;
                let reader = stream.try_clone()?;
                thread::spawn(move || raw_session(reader, stream));
            }
        }
        Listen::Http(_) => bail!("the raw baseline speaks bytes, not HTTP: use http-bare-server"),
    }
    Ok(())
}

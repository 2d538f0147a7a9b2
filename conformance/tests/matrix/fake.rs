//! Fake peers: a shell script in place of a worker, served the way the transport serves
//! a worker. For `exec:` the client spawns `sh -c <script>`; for sockets a listener bound
//! with the transport's own flags (`--unix PATH`, `--tcp HOST:PORT`) runs the script once
//! per accepted connection with the socket as its stdin and stdout, as inetd would. So
//! one script is one misbehaviour on every transport. Clients connect as the transport's
//! clients do ([`FakePeer::connect`]): over `shm` with a segment, whose offer
//! (`__transport_options__`, before the first call) is then what meets the misbehaviour.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vgi_rpc::client::{Client, ConnectOptions};
use vgi_rpc::transport::Address;
use vgi_rpc_conformance::matrix::Transport;

// The scripts never `exec` a command with stdout redirected: that would close the
// connection's write side at once (for `exec:`, stdout is the connection).

/// Reads the request and never answers.
pub(crate) const SILENT: &str = "cat >/dev/null";
/// Reads a little of the request and hangs up.
pub(crate) const HANGS_UP: &str = "head -c 8 >/dev/null";
/// Answers with bytes that are not an Arrow IPC stream, and stays connected.
pub(crate) const NOT_ARROW: &str =
    "head -c 8 >/dev/null; printf 'hello, not arrow'; cat >/dev/null";
/// Answers with an IPC message whose metadata is not a flatbuffer, and stays connected.
pub(crate) const BAD_FLATBUFFER: &str = r"head -c 8 >/dev/null; printf '\377\377\377\377\020\0\0\0\253\253\253\253\253\253\253\253\253\253\253\253\253\253\253\253'; cat >/dev/null";
/// Starts a well-framed IPC message (a 256-byte metadata block), reads the rest of the
/// request for a moment (so that a socket closes cleanly rather than with a reset), and
/// hangs up inside the message.
pub(crate) const HANGS_UP_MID_MESSAGE: &str =
    r"head -c 8 >/dev/null; printf '\377\377\377\377\0\1\0\0\20\0\0\0'; timeout 0.5 cat >/dev/null";

/// A fake peer serving `script` over one transport; stops (and kills what it started)
/// on drop.
pub(crate) struct FakePeer {
    address: String,
    options: ConnectOptions,
    dir: PathBuf,
    listener: Option<Listening>,
}

struct Listening {
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
    thread: JoinHandle<()>,
}

impl FakePeer {
    /// Serves `script` over `transport`.
    pub(crate) fn start(transport: &Transport, script: &str) -> FakePeer {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vgi-fake-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if !transport.announced {
            let argv = vec!["sh".into(), "-c".into(), script.to_owned()];
            return FakePeer {
                address: Address::Exec(argv).to_string(),
                options: transport.connect_options(),
                dir,
                listener: None,
            };
        }
        let socket = Socket::bind(&(transport.flags)(&dir));
        let address = socket.address();
        let stop = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, children, script) = (stop.clone(), children.clone(), script.to_owned());
            std::thread::spawn(move || {
                while let Ok(conn) = socket.accept() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let child = Command::new("sh")
                        .args(["-c", &script])
                        .stdin(Stdio::from(conn.try_clone().unwrap()))
                        .stdout(Stdio::from(conn))
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    children.lock().unwrap().push(child);
                }
            })
        };
        FakePeer {
            address: address.to_string(),
            options: transport.connect_options(),
            dir,
            listener: Some(Listening {
                stop,
                children,
                thread,
            }),
        }
    }

    /// A client of the peer, connected as the transport's clients connect.
    pub(crate) fn connect(&self) -> vgi_rpc::Result<Client> {
        connect(&self.address, &self.options)
    }
}

/// Connects to `address` with `options` (an unparsable address is the client's
/// `InvalidAddress`, as with [`Client::connect`]).
pub(crate) fn connect(address: &str, options: &ConnectOptions) -> vgi_rpc::Result<Client> {
    Client::connect_with(&address.parse()?, options.clone())
}

/// An address of `transport`'s kind where nothing serves: a program that does not
/// exist, a socket path nobody listens on, a closed port.
pub(crate) fn unreachable(transport: &Transport) -> String {
    let peer = FakePeer::start(transport, "exit 0");
    if !transport.announced {
        let program = peer.dir.join("no-such-worker").display().to_string();
        return Address::Exec(vec![program, "--pipe".into()]).to_string();
    }
    peer.address.clone()
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        if let Some(listening) = self.listener.take() {
            listening.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so it sees the flag and drops the listener.
            match self.address.parse() {
                Ok(Address::Unix(path)) => drop(UnixStream::connect(path)),
                Ok(Address::Tcp(host, port)) => drop(TcpStream::connect((host.as_str(), port))),
                _ => {}
            }
            let _ = listening.thread.join();
            for child in listening.children.lock().unwrap().iter_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A listening socket bound as a worker would bind it, given the transport's flags.
enum Socket {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Socket {
    /// Binds what `--unix PATH` or `--tcp HOST:PORT` in `flags` asks for.
    ///
    /// # Panics
    /// On flags a fake peer does not understand: a new transport needs a fake here too.
    fn bind(flags: &[String]) -> Socket {
        let mut it = flags.iter();
        let mut socket = None;
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--unix" => {
                    let path = Path::new(it.next().unwrap()).to_path_buf();
                    socket = Some(Socket::Unix(UnixListener::bind(&path).unwrap(), path));
                }
                "--tcp" => {
                    let listener = TcpListener::bind(it.next().unwrap().as_str()).unwrap();
                    socket = Some(Socket::Tcp(listener));
                }
                "--threaded" => {}
                other => panic!("a fake peer cannot serve the worker flag {other:?}"),
            }
        }
        socket.unwrap_or_else(|| panic!("no socket among the worker flags {flags:?}"))
    }

    fn accept(&self) -> io::Result<OwnedFd> {
        Ok(match self {
            Socket::Unix(l, _) => l.accept()?.0.into(),
            Socket::Tcp(l) => l.accept()?.0.into(),
        })
    }

    fn address(&self) -> Address {
        match self {
            Socket::Unix(_, path) => Address::Unix(path.clone()),
            Socket::Tcp(l) => {
                let addr = l.local_addr().unwrap();
                Address::Tcp(addr.ip().to_string(), addr.port())
            }
        }
    }
}

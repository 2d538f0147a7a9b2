//! Server timeouts by default: a connection idle between calls is closed after the idle
//! timeout and its slot serves the next client; a peer that stalls inside a message is cut
//! off after the read timeout; a stream may think between inputs as long as between calls.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use vgi_rpc::Server;
use vgi_rpc::prelude::*;
use vgi_rpc::transport::{ServeOptions, Shutdown, TcpSocketListener, serve_listener};

#[vgi_rpc::service(protocol = "Echo", version = "1.0.0")]
pub trait Echo: Send + Sync + 'static {
    /// Returns its argument.
    fn echo(&self, value: i64) -> Result<i64>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    fn echo(&self, value: i64) -> Result<i64> {
        Ok(value)
    }
}

/// A threaded one-slot TCP server with the given timeouts; returns its port.
fn serve(idle: Duration, read: Duration) -> (u16, Shutdown) {
    let listener = TcpSocketListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().port();
    let server = Server::builder()
        .service(EchoServer::new(EchoImpl))
        .build()
        .unwrap();
    let shutdown = Shutdown::new().unwrap();
    let stop = shutdown.clone();
    let options = ServeOptions::default()
        .threaded(true)
        .max_connections(1)
        .connection_idle_timeout(idle)
        .read_timeout(read);
    thread::spawn(move || serve_listener(&server, &listener, &options, &stop).unwrap());
    (port, shutdown)
}

/// Whether the server closed `stream` within `within` (a read sees EOF or a reset).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn an_idle_connection_is_closed_and_its_slot_reused() {
    let (port, shutdown) = serve(Duration::from_millis(400), Duration::from_secs(5));
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "the idle connection stayed open"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The slot is free again: a real client is served (not refused).
    let mut client = EchoClient::connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    assert_eq!(client.echo(7).unwrap(), 7);
    shutdown.trigger();
}

#[test]
fn a_peer_stalling_inside_a_message_is_cut_off() {
    let (port, shutdown) = serve(Duration::from_secs(30), Duration::from_millis(400));
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The start of an IPC message: the continuation marker and a length, then nothing.
    stalled
        .write_all(&[0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0])
        .unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(5)),
        "the stalled connection stayed open"
    );
    shutdown.trigger();
}

/// With the idle timeout longer than the read timeout (the default's shape), the socket
/// keeps the read timeout and an idle wait repeats it: a client may still think longer
/// than the read timeout between calls, and a silent one is closed at the idle timeout,
/// not at a multiple of the read timeout past it.
#[test]
fn an_idle_wait_longer_than_the_read_timeout_is_the_idle_timeout() {
    let (port, shutdown) = serve(Duration::from_millis(1000), Duration::from_millis(300));
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "the idle connection stayed open"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "closed early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1250),
        "closed late: {waited:?}"
    );

    // The slot is released just after the close is sent.
    thread::sleep(Duration::from_millis(100));
    let mut client = EchoClient::connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    assert_eq!(client.echo(1).unwrap(), 1);
    thread::sleep(Duration::from_millis(700));
    assert_eq!(client.echo(2).unwrap(), 2, "a pause past the read timeout");
    shutdown.trigger();
}

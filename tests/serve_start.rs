//! `ServerBuilder::on_serve_start`: the hook runs once before the first request with the
//! transport serving it; a failure stops a byte-stream server, and on HTTP fails that one
//! request (500) and is retried by the next.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vgi_rpc::client::Client;
use vgi_rpc::prelude::*;
use vgi_rpc::server::TransportKind;
use vgi_rpc::transport::http::{HttpOptions, serve};
use vgi_rpc::transport::{ServeOptions, Shutdown, UnixSocketListener, serve_listener};
use vgi_rpc::{RpcError, Server};

#[vgi_rpc::service(protocol = "Ping")]
pub trait Ping: Send + Sync + 'static {
    /// Returns 1.
    fn ping(&self) -> Result<i64>;
}

struct PingImpl;

impl Ping for PingImpl {
    fn ping(&self) -> Result<i64> {
        Ok(1)
    }
}

#[test]
fn a_byte_stream_server_notifies_once_and_stops_on_failure() {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&kinds);
    let server = Server::builder()
        .service(PingServer::new(PingImpl))
        .on_serve_start(move |kind| {
            seen.lock().unwrap().push(kind);
            Ok(())
        })
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("vgi-serve-start-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixSocketListener::bind(&path).unwrap();
    let shutdown = Shutdown::new().unwrap();
    let stop = shutdown.clone();
    let options = ServeOptions::default().threaded(true);
    let serving = std::thread::spawn(move || serve_listener(&server, &listener, &options, &stop));
    let address = format!("unix:{}", path.display());
    for _ in 0..2 {
        assert_eq!(
            PingClient::from_client(Client::connect(&address).unwrap())
                .ping()
                .unwrap(),
            1
        );
    }
    assert_eq!(
        *kinds.lock().unwrap(),
        vec![TransportKind::Unix],
        "once, before the first call"
    );
    shutdown.trigger();
    serving.join().unwrap().unwrap();

    let failing = Server::builder()
        .service(PingServer::new(PingImpl))
        .on_serve_start(|_| Err(RpcError::runtime_error("no database").into()))
        .build()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let listener = UnixSocketListener::bind(&path).unwrap();
    let stop = Shutdown::new().unwrap();
    let serving = std::thread::spawn(move || {
        serve_listener(&failing, &listener, &ServeOptions::default(), &stop)
    });
    let _ = PingClient::from_client(Client::connect(&address).unwrap()).ping();
    let stopped = serving.join().unwrap();
    assert!(stopped.unwrap_err().to_string().contains("no database"));
}

fn post_status(port: u16) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /Ping/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text[9..12].parse().unwrap()
}

#[test]
fn http_fails_the_request_and_retries_the_hook_on_the_next() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&attempts);
    let server = Server::builder()
        .service(PingServer::new(PingImpl))
        .on_serve_start(move |kind| {
            assert_eq!(kind, TransportKind::Http);
            if count.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(RpcError::runtime_error("warming up").into())
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = Shutdown::new().unwrap();
    let stop = shutdown.clone();
    let serving =
        std::thread::spawn(move || serve(&server, &HttpOptions::default(), listener, &stop));
    assert_eq!(post_status(port), 500, "the failed start is visible");
    let client = Client::connect(&format!("http://127.0.0.1:{port}")).unwrap();
    assert_eq!(
        PingClient::from_client(client).ping().unwrap(),
        1,
        "the retry succeeded"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "and is not repeated after success"
    );
    shutdown.trigger();
    serving.join().unwrap().unwrap();
}

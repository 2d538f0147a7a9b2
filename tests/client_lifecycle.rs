//! What happens around calls: worker processes are reaped, dead workers and deadlines
//! produce errors (never hangs), the connection is reopened afterwards, cancel works from
//! another thread, and bad addresses say what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::StringArray;
use client_support::*;
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, CancelHandle, Client, ConnectOptions};
use vgi_rpc::transport::Address;

fn noop(client: &mut Client, options: &CallOptions) -> vgi_rpc::Result<()> {
    client
        .call(&primary(), "void_noop", &no_params(), options)
        .map(|_| ())
}

fn wait_gone(pid: u32) -> bool {
    let start = Instant::now();
    while process_exists(pid) {
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn dropping_the_client_reaps_a_well_behaved_worker() {
    let mut client = Client::connect(&our_exec_address()).unwrap();
    noop(&mut client, &CallOptions::default()).unwrap();
    let pid = client.worker_pid().unwrap();
    assert!(process_exists(pid));
    drop(client);
    // Reaped synchronously in drop: not even a zombie is left.
    assert!(!process_exists(pid), "worker {pid} left behind");
}

#[test]
fn dropping_the_client_kills_a_worker_that_ignores_eof() {
    let address: Address = "exec:sleep 30".parse().unwrap();
    let options = ConnectOptions::default().with_exit_grace(Duration::from_millis(20));
    let client = Client::connect_with(&address, options).unwrap();
    let pid = client.worker_pid().unwrap();
    let start = Instant::now();
    drop(client);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(!process_exists(pid), "worker {pid} left behind");
}

#[test]
fn a_worker_dying_mid_call_is_an_error_with_its_stderr() {
    // Reads a little of the request, complains and exits.
    let mut client =
        Client::connect("exec:sh -c 'head -c 8 >/dev/null; echo worker fell over >&2; exit 3'")
            .unwrap();
    let start = Instant::now();
    let err = noop(&mut client, &CallOptions::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(err.to_rpc().is_retryable());
    assert!(err.to_string().contains("exit status: 3"), "{err}");
    assert!(err.to_string().contains("worker fell over"), "{err}");
    assert!(client.is_broken());
}

#[test]
fn a_worker_killed_mid_call_is_an_error_not_a_hang() {
    let mut client = Client::connect("exec:sleep 30").unwrap();
    let pid = client.worker_pid().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    });
    let err = noop(&mut client, &CallOptions::default()).unwrap_err();
    killer.join().unwrap();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(err.to_string().contains("signal: 9"), "{err}");
    assert!(!process_exists(pid), "the dead worker was reaped");
}

#[test]
fn timeout_then_the_next_call_reconnects() {
    // Every worker takes 1 s to start answering; the first call gives up at 50 ms.
    let worker = our_worker();
    let address = format!("exec:sh -c 'sleep 1; exec {} --pipe'", worker.display());
    let mut client = Client::connect(&address).unwrap();
    let first_pid = client.worker_pid().unwrap();
    let start = Instant::now();
    let err = noop(
        &mut client,
        &CallOptions::default().with_timeout(Duration::from_millis(50)),
    )
    .unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(!err.to_rpc().is_retryable());
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_millis(900),
        "{waited:?}"
    );
    assert!(client.is_broken());
    assert!(
        !process_exists(first_pid),
        "the timed-out worker was killed and reaped"
    );

    // Reopened transparently: a new worker, and the call succeeds.
    noop(&mut client, &CallOptions::default()).unwrap();
    let second_pid = client.worker_pid().unwrap();
    assert_ne!(first_pid, second_pid);
    // A generous timeout does not fire.
    noop(
        &mut client,
        &CallOptions::default().with_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    assert_eq!(client.worker_pid(), Some(second_pid));
}

#[test]
fn without_reconnect_a_broken_client_says_so_until_reconnect() {
    let worker = our_worker();
    let address: Address = format!("exec:sh -c 'sleep 1; exec {} --pipe'", worker.display())
        .parse()
        .unwrap();
    let mut client =
        Client::connect_with(&address, ConnectOptions::default().with_reconnect(false)).unwrap();
    let short = CallOptions::default().with_timeout(Duration::from_millis(20));
    let err = noop(&mut client, &short).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let err = noop(&mut client, &CallOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(err.to_string().contains("reconnect"), "{err}");
    client.reconnect().unwrap();
    noop(&mut client, &CallOptions::default()).unwrap();
}

#[test]
fn cancel_from_another_thread_interrupts_a_blocked_call() {
    let mut client = Client::connect("exec:sleep 30").unwrap();
    let pid = client.worker_pid().unwrap();
    let cancel = CancelHandle::new();
    let remote = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        remote.cancel();
    });
    let start = Instant::now();
    let err = noop(&mut client, &CallOptions::default().with_cancel(cancel)).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "the call was under way"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(wait_gone(pid));
}

/// A Unix-socket proxy in front of `upstream` that holds the first connection's bytes back
/// for `delay` (later connections pass straight through).
fn delaying_proxy(upstream: String, delay: Duration) -> (TempDir, String) {
    let dir = TempDir::new();
    let path = dir.0.join("proxy.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(down) = conn else { return };
            let Ok(up) = UnixStream::connect(&upstream) else {
                return;
            };
            let hold = if n == 0 { delay } else { Duration::ZERO };
            pipe(down.try_clone().unwrap(), up.try_clone().unwrap(), hold);
            pipe(up, down, Duration::ZERO);
        }
    });
    (dir, format!("unix:{}", path.display()))
}

fn pipe(mut from: UnixStream, mut to: UnixStream, hold: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        let mut buf = [0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[test]
fn socket_timeout_then_reuse_against_the_reference_worker() {
    let server = PyServer::unix();
    let upstream = server.address.strip_prefix("unix:").unwrap().to_owned();
    let (_dir, address) = delaying_proxy(upstream, Duration::from_secs(1));
    let mut client = Client::connect(&address).unwrap();
    let err = noop(
        &mut client,
        &CallOptions::default().with_timeout(Duration::from_millis(100)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let value = row(vec![("value", Arc::new(StringArray::from(vec!["again"])))]);
    let answer = client
        .call(&primary(), "echo_string", &value, &CallOptions::default())
        .unwrap();
    assert_eq!(string_value(answer.batch.as_ref().unwrap()), "again");
}

#[test]
fn stream_timeout_bounds_the_whole_stream() {
    let worker = our_worker();
    let address = format!("exec:sh -c 'sleep 1; exec {} --pipe'", worker.display());
    let mut client = Client::connect(&address).unwrap();
    let options = CallOptions::default().with_timeout(Duration::from_millis(50));
    let mut stream = client
        .open_stream(&primary(), "cancellable_producer", &no_params(), &options)
        .unwrap();
    let err = stream.tick().unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    drop(stream);
    assert!(client.is_broken());
    noop(&mut client, &CallOptions::default()).unwrap();
}

#[test]
fn connect_errors_name_the_problem() {
    let msg = |address: &str| match Client::connect(address) {
        Ok(_) => panic!("{address} connected"),
        Err(e) => e.to_string(),
    };
    assert!(msg("exec:/nonexistent/worker --pipe").contains("/nonexistent/worker"));
    assert!(msg("unix:/nonexistent/w.sock").contains("unix:/nonexistent/w.sock"));
    assert!(msg("exec:'unterminated").contains("unterminated single quote"));
    assert!(msg("tcp://127.0.0.1").contains("missing `:port`"));
    assert!(msg("http://localhost:1").contains("not available"));
    assert!(matches!(
        Client::connect("unix:/nonexistent/w.sock"),
        Err(Error::Connect { .. })
    ));
    assert!(matches!(
        Client::connect("ftp://x"),
        Err(Error::InvalidAddress { .. })
    ));
}

#[test]
fn cancel_interrupts_a_blocked_stream_turn() {
    let mut client = Client::connect("exec:sleep 30").unwrap();
    let pid = client.worker_pid().unwrap();
    let cancel = CancelHandle::new();
    let remote = cancel.clone();
    let options = CallOptions::default().with_cancel(cancel);
    let mut stream = client
        .open_stream(&primary(), "cancellable_producer", &no_params(), &options)
        .unwrap();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        remote.cancel();
    });
    let start = Instant::now();
    let err = stream.tick().unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    drop(stream);
    assert!(client.is_broken());
    assert!(wait_gone(pid));
}

//! What only `exec:` has: the client owns its worker process. Dropping the client reaps
//! the worker (killing one that ignores EOF after the exit grace), and a worker that dies
//! under a call is reported with its exit status and the tail of its standard error.
//!
//! Everything else about failures (deadlines, cancel, disconnects, garbage, connect
//! errors, SIGKILL mid-stream) runs on every transport in the conformance crate's test
//! matrix (`conformance/tests/matrix`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::time::{Duration, Instant};

use client_support::*;
use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions};
use vgi_rpc::transport::Address;

fn noop(client: &mut Client, options: &CallOptions) -> vgi_rpc::Result<()> {
    client
        .call(&primary(), "void_noop", &no_params(), options)
        .map(|_| ())
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

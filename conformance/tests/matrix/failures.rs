//! The local error variants against real workers (ours and the reference): a deadline
//! that passes mid-stream is [`Error::Timeout`] and the next call reconnects (or, with
//! reconnects off, says so until asked); a worker killed with SIGKILL mid-stream is
//! [`Error::Disconnected`], never a hang. Remote errors and in-band cancel are in
//! [`crate::dynamic`]; stalled, garbled and absent peers in [`crate::peers`].

use std::time::{Duration, Instant};

use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, Client, ClientStream, ConnectOptions};

use crate::harness::{Backend, count, echo, kill_9, noop, primary, wait_gone};

matrix!(conformance:
    deadline_mid_stream_then_reconnect,
    without_reconnect_a_broken_client_says_so,
    worker_killed_mid_stream,
);

/// How long the deadline tests give a stream that would run for hours.
const DEADLINE: Duration = Duration::from_millis(300);

/// Ticks `stream` until it fails (batches may still arrive for a while: they were
/// already on their way); returns the error.
fn tick_until_error(stream: &mut ClientStream<'_>) -> Error {
    let start = Instant::now();
    loop {
        match stream.tick() {
            Ok(Some(_)) => assert!(
                start.elapsed() < Duration::from_secs(20),
                "the stream never failed"
            ),
            Ok(None) => panic!("the stream ended as if complete"),
            Err(e) => return e,
        }
    }
}

/// Opens `produce_n` over a count no test waits for, with `options`, once the worker is
/// up: a deadline counts from the call's start, and a Python worker spawned by `exec:`
/// takes longer than [`DEADLINE`] to start.
fn endless<'c>(client: &'c mut Client, options: &CallOptions) -> ClientStream<'c> {
    noop(client, &CallOptions::default()).unwrap();
    client
        .open_stream(&primary(), "produce_n", &count(1 << 40), options)
        .unwrap()
}

/// The call's deadline bounds the whole stream: the turn that crosses it fails with
/// `Timeout`, the connection is dropped (an `exec:` worker killed and reaped), and the
/// next call opens a new one.
fn deadline_mid_stream_then_reconnect(b: &mut Backend) {
    let mut client = b.connect();
    let first_pid = client.worker_pid();
    let start = Instant::now();
    let mut stream = endless(&mut client, &CallOptions::default().with_timeout(DEADLINE));
    assert!(stream.tick().unwrap().is_some());
    let err = tick_until_error(&mut stream);
    let took = start.elapsed();
    drop(stream);
    assert!(matches!(err, Error::Timeout(d) if d == DEADLINE), "{err:?}");
    assert!(!err.to_rpc().is_retryable());
    assert!(
        took >= DEADLINE && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(client.is_broken());
    if let Some(pid) = first_pid {
        assert!(wait_gone(pid), "the timed-out worker {pid} was not reaped");
    }

    // Reopened transparently (for `exec:` a new worker), and the call succeeds.
    echo(&mut client, "again");
    assert!(!client.is_broken());
    if let Some(pid) = first_pid {
        assert_ne!(client.worker_pid(), Some(pid));
    }
    // A generous deadline does not fire.
    let generous = CallOptions::default().with_timeout(Duration::from_secs(30));
    noop(&mut client, &generous).unwrap();
}

fn without_reconnect_a_broken_client_says_so(b: &mut Backend) {
    let mut client = b.connect_with(ConnectOptions::default().with_reconnect(false));
    let mut stream = endless(&mut client, &CallOptions::default().with_timeout(DEADLINE));
    let err = tick_until_error(&mut stream);
    drop(stream);
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let err = noop(&mut client, &CallOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(err.to_string().contains("reconnect"), "{err}");
    client.reconnect().unwrap();
    echo(&mut client, "reconnected");
}

/// SIGKILL to the worker in the middle of a stream: the next turn fails with
/// `Disconnected` on every transport.
fn worker_killed_mid_stream(b: &mut Backend) {
    let mut client = b.connect();
    let pid = b.worker_pid(&client);
    let mut stream = endless(&mut client, &CallOptions::default());
    for _ in 0..3 {
        assert!(stream.tick().unwrap().is_some());
    }
    kill_9(pid);
    let err = tick_until_error(&mut stream);
    drop(stream);
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(err.to_rpc().is_retryable());
    assert!(client.is_broken());
    if !b.transport.announced {
        // Exec-specific: the client owns the worker, so it knows how it died and reaps it.
        assert!(err.to_string().contains("signal: 9"), "{err}");
        assert!(wait_gone(pid), "the dead worker {pid} was not reaped");
    }
    // What the next call meets is inherently transport-specific: `exec:` starts a new
    // worker; a socket has nobody listening any more, once the worker has finished dying
    // (a reconnect racing the exit of its last thread can still reach the listener).
    b.endpoint.wait().unwrap();
    let next = noop(&mut client, &CallOptions::default());
    if b.transport.announced {
        assert!(matches!(next, Err(Error::Connect { .. })), "{next:?}");
    } else {
        next.unwrap();
    }
}

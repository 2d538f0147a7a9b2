//! The local error variants against fake peers ([`crate::fake`]), one misbehaviour per
//! scenario, the same assertions on every transport: a silent peer gives
//! [`Error::Timeout`] and, cancelled from another thread, [`Error::Cancelled`]; a peer that
//! hangs up gives [`Error::Disconnected`], also inside a message; bytes that are not the
//! protocol give [`Error::Protocol`]; nothing listening gives [`Error::Connect`]; a
//! malformed address gives [`Error::InvalidAddress`].

use std::time::{Duration, Instant};

use vgi_rpc::Error;
use vgi_rpc::client::{CallOptions, CancelHandle, Client};
use vgi_rpc_conformance::matrix::Transport;

use crate::fake::{self, FakePeer};
use crate::harness::{no_params, noop, primary, wait_gone};

matrix!(fake:
    silent_peer_times_out,
    cancel_interrupts_a_blocked_call,
    cancel_interrupts_a_blocked_stream_turn,
    peer_hanging_up_is_a_disconnect,
    peer_hanging_up_mid_message_is_a_disconnect,
    bytes_that_are_not_arrow_are_a_protocol_error,
    a_bad_flatbuffer_is_a_protocol_error,
    nothing_listening_is_a_connect_error,
    malformed_addresses_are_invalid,
);

/// Connects to `peer` and makes one `void_noop` call with `options`, cancelled from
/// another thread `cancel_after` the call started if that is given; returns the error and
/// how long the call took. The client is broken afterwards (the connection was dropped),
/// and an `exec:` peer was killed and reaped.
fn failed_call(
    peer: &FakePeer,
    options: CallOptions,
    cancel_after: Option<Duration>,
) -> (Error, Duration) {
    let mut client = peer.connect().unwrap();
    let pid = client.worker_pid();
    let cancel = CancelHandle::new();
    let options = match cancel_after {
        Some(_) => options.with_cancel(cancel.clone()),
        None => options,
    };
    let start = Instant::now();
    let canceller = cancel_after.map(|after| cancel_later(&cancel, after));
    let err = noop(&mut client, &options).unwrap_err();
    let took = start.elapsed();
    if let Some(canceller) = canceller {
        canceller.join().unwrap();
    }
    assert!(client.is_broken(), "{err:?} should drop the connection");
    if let Some(pid) = pid {
        assert!(wait_gone(pid), "the exec: peer {pid} was not reaped");
    }
    (err, took)
}

/// Cancels `cancel` from another thread `after` from now.
fn cancel_later(cancel: &CancelHandle, after: Duration) -> std::thread::JoinHandle<()> {
    let remote = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        remote.cancel();
    })
}

/// When the cancel scenarios cancel.
const CANCEL_AFTER: Duration = Duration::from_millis(300);

fn silent_peer_times_out(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::SILENT);
    let deadline = Duration::from_millis(200);
    let options = CallOptions::default().with_timeout(deadline);
    let (err, took) = failed_call(&peer, options, None);
    assert!(matches!(err, Error::Timeout(d) if d == deadline), "{err:?}");
    assert!(!err.to_rpc().is_retryable());
    assert!(
        took >= deadline && took < Duration::from_secs(5),
        "{took:?}"
    );
}

fn cancel_interrupts_a_blocked_call(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::SILENT);
    let (err, took) = failed_call(&peer, CallOptions::default(), Some(CANCEL_AFTER));
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(took >= CANCEL_AFTER, "the call was under way");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

fn cancel_interrupts_a_blocked_stream_turn(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::SILENT);
    let mut client = peer.connect().unwrap();
    let pid = client.worker_pid();
    let cancel = CancelHandle::new();
    let options = CallOptions::default().with_cancel(cancel.clone());
    let start = Instant::now();
    let canceller = cancel_later(&cancel, CANCEL_AFTER);
    // Opening a stream without a header reads nothing, so it succeeds; the turn blocks.
    // With a shared-memory segment the client first offers it (`__transport_options__`,
    // a unary call under the stream's options): that is what blocks, and what the cancel
    // interrupts. The turn itself is the pipe row's (the same byte stream).
    let err = match client.open_stream(&primary(), "cancellable_producer", &no_params(), &options) {
        Ok(mut stream) => {
            assert!(
                t.shm.is_none(),
                "the segment offer was answered by a silent peer"
            );
            stream.tick().unwrap_err()
        }
        Err(err) => {
            assert!(t.shm.is_some(), "opening failed: {err:?}");
            err
        }
    };
    canceller.join().unwrap();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(start.elapsed() >= CANCEL_AFTER, "the turn was under way");
    assert!(
        client.is_broken(),
        "an interrupted turn drops the connection"
    );
    if let Some(pid) = pid {
        assert!(wait_gone(pid), "the exec: peer {pid} was not reaped");
    }
}

fn peer_hanging_up_is_a_disconnect(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::HANGS_UP);
    let (err, took) = failed_call(&peer, CallOptions::default(), None);
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(
        err.to_rpc().is_retryable(),
        "a disconnect is worth retrying"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

fn peer_hanging_up_mid_message_is_a_disconnect(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::HANGS_UP_MID_MESSAGE);
    let (err, _) = failed_call(&peer, CallOptions::default(), None);
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
}

fn bytes_that_are_not_arrow_are_a_protocol_error(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::NOT_ARROW);
    let (err, took) = failed_call(&peer, CallOptions::default(), None);
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(!err.to_rpc().is_retryable());
    // Decided from the bytes, not by waiting for the peer to go away.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

fn a_bad_flatbuffer_is_a_protocol_error(t: &'static Transport) {
    let peer = FakePeer::start(t, fake::BAD_FLATBUFFER);
    let (err, _) = failed_call(&peer, CallOptions::default(), None);
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("flatbuffer"), "{err}");
}

fn nothing_listening_is_a_connect_error(t: &'static Transport) {
    let address = fake::unreachable(t);
    match fake::connect(&address, &t.connect_options()) {
        Err(Error::Connect { endpoint, source }) => {
            assert_eq!(endpoint, address);
            assert!(!source.to_string().is_empty());
        }
        Err(other) => panic!("{address}: expected a connect error, got {other:?}"),
        Ok(_) => panic!("{address} connected"),
    }
}

/// Malformed forms of every address scheme, each with what the error must say.
const MALFORMED: &[(&str, &str)] = &[
    ("exec:", "needs a command"),
    ("exec:   ", "needs a command"),
    ("exec:'unterminated", "unterminated single quote"),
    ("exec:worker \"open", "unterminated double quote"),
    ("exec:worker \\", "trailing backslash"),
    ("unix:", "needs a socket path"),
    ("unix://", "needs a socket path"),
    ("tcp://127.0.0.1", "missing `:port`"),
    ("tcp://:9000", "missing host"),
    ("tcp://127.0.0.1:99999", "not a number"),
    ("tcp://[::1:9000", "unterminated `[`"),
];

/// The malformed addresses of `t`'s scheme (the scheme of its unreachable address)
/// are refused before anything is dialled or spawned.
fn malformed_addresses_are_invalid(t: &'static Transport) {
    let example = fake::unreachable(t);
    let scheme = ["exec:", "unix:", "tcp://"]
        .into_iter()
        .find(|s| example.starts_with(s))
        .unwrap_or_else(|| panic!("{example}: add malformed forms of its scheme to MALFORMED"));
    let forms: Vec<_> = MALFORMED
        .iter()
        .filter(|(address, _)| address.starts_with(scheme))
        .collect();
    assert!(!forms.is_empty(), "no malformed {scheme} addresses");
    for (address, says) in forms {
        match fake::connect(address, &t.connect_options()) {
            Err(e @ Error::InvalidAddress { .. }) => {
                assert!(e.to_string().contains(says), "{address}: {e}");
            }
            Err(other) => panic!("{address}: expected an invalid address, got {other:?}"),
            Ok(_) => panic!("{address} connected"),
        }
    }
}

/// Schemes no transport serves are invalid addresses too. (No transport to vary: nothing
/// is dialled.)
#[test]
fn unknown_schemes_are_invalid_addresses() {
    for (address, says) in [
        ("ftp://x", "expected `exec:<command line>`"),
        ("", "expected"),
    ] {
        match Client::connect(address) {
            Err(e @ Error::InvalidAddress { .. }) => {
                assert!(e.to_string().contains(says), "{address:?}: {e}")
            }
            Err(other) => panic!("{address:?}: expected an invalid address, got {other:?}"),
            Ok(_) => panic!("{address:?} connected"),
        }
    }
}

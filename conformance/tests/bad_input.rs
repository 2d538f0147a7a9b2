//! Bad bytes from a client, served in-process: truncated messages, absurd lengths,
//! garbage flatbuffers and random corruption of real request captures. The server must
//! end the connection with the error that says what happened, answering in-band when it
//! can tell the bytes are not a request, and never panic or hang.
//!
//! The same bytes sent raw through every transport to the worker process, and framed
//! requests that cannot be decoded (answered, connection kept), are in the test matrix
//! (`conformance/tests/matrix/bad_input.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use vgi_rpc::server::serve_connection;
use vgi_rpc::{Error, ErrorCode};
use vgi_rpc_conformance::matrix::{Answer, read_answers};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/protocol");

fn server() -> vgi_rpc::Server {
    vgi_rpc_conformance::server_builder().build().unwrap()
}

fn capture() -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/pipe_unary.c2s.bin")).unwrap()
}

/// Serves `input` in-process: how the connection ended, and the bytes answered.
fn serve_bytes(input: &[u8]) -> (vgi_rpc::Result<()>, Vec<u8>) {
    let mut out = Vec::new();
    let ended = serve_connection(&server(), input, &mut out);
    (ended, out)
}

/// Serves `input` in-process: how the connection ended, and the answers.
fn serve(input: &[u8]) -> (vgi_rpc::Result<()>, Vec<Answer>) {
    let (ended, out) = serve_bytes(input);
    (ended, read_answers(&mut &out[..]).unwrap())
}

/// Ends with a protocol violation saying `says`, after answering one `ProtocolError`
/// that says the same.
fn refused(input: &[u8], says: &str) {
    let (ended, answers) = serve(input);
    match ended {
        Err(Error::Protocol(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("expected a protocol violation, got {other:?}"),
    }
    match &answers[..] {
        [Err(e)] => {
            assert_eq!(e.error_type, "ProtocolError", "{e:?}");
            assert_eq!(e.code, ErrorCode::Unknown, "{e:?}");
            assert!(e.message.contains(says), "{e:?}");
        }
        other => panic!("expected one ProtocolError answer, got {other:?}"),
    }
}

#[test]
fn truncated_request_is_a_disconnect_without_an_answer() {
    let bytes = capture();
    for cut in [3, 8, 20, 100, 551] {
        let (ended, answers) = serve(&bytes[..cut]);
        assert!(
            matches!(ended, Err(Error::Disconnected(_))),
            "cut at {cut}: {ended:?}"
        );
        assert!(answers.is_empty(), "cut at {cut}: {answers:?}");
    }
}

#[test]
fn nothing_at_all_is_a_clean_close() {
    let (ended, answers) = serve(&[]);
    assert!(ended.is_ok(), "{ended:?}");
    assert!(answers.is_empty());
}

#[test]
fn absurd_lengths_are_refused() {
    // 2 GiB - 1 of metadata, and a negative length.
    refused(
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        "exceeds the limit",
    );
    refused(
        &[0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x80],
        "negative IPC metadata length",
    );
}

#[test]
fn garbage_flatbuffer_is_refused() {
    let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0];
    bytes.extend([0xab; 16]);
    refused(&bytes, "invalid IPC message flatbuffer");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_captures_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = capture();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = serve_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serve_bytes(&bytes);
    }
}

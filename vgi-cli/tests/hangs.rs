//! The CLI never hangs: against a server that accepts and stays silent, one that answers
//! a schema and then nothing, and an endless stream, it exits with status 3 and says why
//! within its default timeout (no `--timeout` given). The three run at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

#[path = "../../tests/support/bins.rs"]
mod bins;

const VGI_RPC: &str = env!("CARGO_BIN_EXE_vgi-rpc");

/// A TCP server that reads whatever comes and answers each connection with `answer`
/// (then keeps the connection open, silent).
fn fake_server(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer);
                // Hold the connection open without another byte.
                thread::sleep(Duration::from_secs(120));
            });
        }
    });
    port
}

/// Runs the CLI; returns its exit status, stderr and how long it took.
fn run(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(VGI_RPC).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn silent_schema_only_and_endless_servers_end_with_exit_3() {
    // A schema message of an empty schema, then nothing: no batch, no EOS.
    let schema_only: &'static [u8] = {
        let bytes = vgi_rpc::wire::encode_schema_message(&arrow_schema::Schema::empty());
        Box::leak(bytes.into_boxed_slice())
    };
    let silent = fake_server(b"");
    let half = fake_server(schema_only);
    let worker = bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker");
    let worker = worker.display();
    let cases = vec![
        (
            "silent",
            vec![
                "call".to_owned(),
                format!("tcp://127.0.0.1:{silent}"),
                "echo_int".into(),
                "value=1".into(),
            ],
        ),
        (
            "schema only",
            vec![
                "call".to_owned(),
                format!("tcp://127.0.0.1:{half}"),
                "echo_int".into(),
                "value=1".into(),
            ],
        ),
        (
            "endless",
            vec![
                "call".to_owned(),
                format!("exec:{worker}"),
                "cancellable_producer".into(),
            ],
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(name, args)| {
            thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (name, run(&args))
            })
        })
        .collect();
    for handle in runs {
        let (name, (code, stderr, took)) = handle.join().unwrap();
        assert_eq!(code, Some(3), "{name}: {stderr}");
        assert!(
            stderr.contains("no answer within the call's 30s deadline"),
            "{name}: {stderr}"
        );
        eprintln!("{name}: exit 3 after {took:?}");
    }
}

//! Runs every example binary with no arguments (as `cargo run --example NAME` does) and
//! checks the lines that prove it worked: each one starts itself as a `Calculator` worker
//! and calls it through the generated typed client (`http_jwt` serves HTTP in-process, behind
//! JWT authentication).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[path = "support/bins.rs"]
mod bins;

/// The stdout of example `name`, as `cargo test` built it for this profile
/// (`cargo test --test examples` alone does not build the examples).
fn run(name: &str) -> String {
    let output = Command::new(bins::example_bin("vgi-rpc", name))
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_lines(stdout: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            stdout.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn calculator() {
    assert_lines(
        &run("calculator"),
        &[
            "add(2, 3) = 5",
            "divide(1, 0) failed: ValueError: division by zero (UNKNOWN)",
            "server log [INFO]: greeting Ada",
            "greet(\"Ada\") = Hello, Ada!",
            "countdown(3) = [3, 2, 1]",
            "scale(10) [1.0, 2.0] -> [10.0, 20.0]",
        ],
    );
}

#[test]
fn calculator_client() {
    assert_lines(
        &run("calculator_client"),
        &[
            "divide(10, 4) = 2.5",
            "divide(1, 0) -> ValueError [UNKNOWN]: division by zero",
            "greet_with_defaults(\"Ada\") = Hello, Ada!",
            "server logs received: [\"[INFO] greeting Ada\", \"[INFO] greeting Ada\"]",
        ],
    );
}

#[test]
fn producer_collect() {
    assert_lines(
        &run("producer_collect"),
        &[
            "collected 5 batches, 5 rows",
            "  batch 4: [1]",
            "took 2 batches of countdown(1000), then cancelled",
            "add(1, 1) = 2",
        ],
    );
}

#[test]
fn exchange() {
    assert_lines(
        &run("exchange"),
        &[
            "scale(2.5): [2.0, 4.0] -> [5.0, 10.0]",
            "scale(-1): [3.0] -> [-3.0], then cancel",
            "add(2, 2) = 4",
        ],
    );
}

#[test]
fn http_jwt() {
    assert_lines(
        &run("http_jwt"),
        &[
            "hello alice (via jwt, scope \"notes:read\")",
            "without a token: AuthenticationError: authentication rejected [UNAUTHENTICATED] (missing_credential)",
        ],
    );
}

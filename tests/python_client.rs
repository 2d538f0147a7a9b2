//! The reference Python client (vgi-rpc 0.52.2) against the Rust `calculator` example
//! worker: runs `tests/python` under pytest in the reference venv.
//!
//! Needs Python >= 3.13 (`scripts/python-venv.sh` creates the venv on first use; set
//! `VGI_PYTHON` to pick the interpreter). Without one this test fails rather than skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/bins.rs"]
mod bins;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The reference venv, created by `scripts/python-venv.sh` if needed.
fn python_venv() -> PathBuf {
    let output = Command::new("bash")
        .arg(Path::new(MANIFEST_DIR).join("scripts/python-venv.sh"))
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cannot create the reference Python venv (vgi-rpc 0.52.2 needs Python >= 3.13; \
         set VGI_PYTHON to an interpreter): {}\n{stderr}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("a UTF-8 venv path");
    let venv = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("the venv path on stdout")
            .trim(),
    );
    assert!(
        venv.join("bin/python").exists(),
        "no python in {}",
        venv.display()
    );
    venv
}

#[test]
fn reference_python_client_calls_the_calculator_example() {
    let worker = bins::example_bin("vgi-rpc", "calculator");
    let venv = python_venv();
    let output = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(MANIFEST_DIR)
        .env("VGI_EXAMPLE_WORKER", &worker)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("pytest runs");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "pytest tests/python failed ({}); see its output above",
        output.status
    );
}

//! The reference Python client (vgi-rpc 0.52.2) against the Rust `calculator` example
//! worker: runs `tests/python` under pytest in the reference venv.
//!
//! Needs Python >= 3.13 (`scripts/python-venv.sh` creates the venv on first use; set
//! `VGI_PYTHON` to pick the interpreter). Without one this test fails rather than skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Where Cargo put this build's artifacts: `target/<profile>`, the parent of the
/// `deps` directory holding this test binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// `cargo build` arguments that reproduce this test binary's profile and target directory
/// (a host build: `target/<profile>`).
fn build_args(profile_dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["build".into(), "--example".into(), "calculator".into()];
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => args.push("--release".into()),
        Some(other) => args.extend(["--profile".into(), other.into()]),
    }
    let target_dir = profile_dir.parent().expect("a target directory");
    args.extend(["--target-dir".into(), target_dir.into()]);
    args
}

/// The example binary next to this test binary. `cargo build` runs every time (a no-op
/// when it is up to date): the example may be missing (`cargo test --test python_client`
/// does not build examples) or stale.
fn example_worker() -> PathBuf {
    let dir = profile_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let status = Command::new(cargo)
        .args(build_args(&dir))
        .current_dir(MANIFEST_DIR)
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "`cargo build --example calculator` failed: {status}"
    );
    let worker = dir
        .join("examples")
        .join(format!("calculator{}", std::env::consts::EXE_SUFFIX));
    assert!(worker.exists(), "no example binary at {}", worker.display());
    worker
}

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
    let worker = example_worker();
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

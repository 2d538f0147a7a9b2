//! Building workspace binaries from inside a test, with the test's own profile and
//! target directory (so `cargo test --release` tests release binaries, and the build is
//! a no-op when they are fresh). Shared by several test crates through `#[path]`.

#![allow(unreachable_pub, dead_code, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>` of the running test binary.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Runs `cargo build -q <what>` from `workspace_dir` for this profile and target
/// directory, and returns `target/<profile>`.
pub fn cargo_build(workspace_dir: &str, what: &[&str]) -> PathBuf {
    let dir = profile_dir();
    let mut args: Vec<OsString> = vec!["build".into(), "-q".into()];
    args.extend(what.iter().map(OsString::from));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => args.push("--release".into()),
        Some(other) => args.extend(["--profile".into(), other.into()]),
    }
    args.extend([
        "--target-dir".into(),
        dir.parent().expect("target dir").into(),
    ]);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build {what:?} failed: {status}");
    dir
}

//! Locating binaries Cargo built for this test run, without building anything: workspace
//! binaries live in `target/<profile>/` and examples in `target/<profile>/examples/`, next to
//! the `deps/` directory holding the running test binary (so any `CARGO_TARGET_DIR` or
//! `--target` layout works). `cargo test --workspace` builds all of them, with the tests'
//! feature set, before it runs any test; a narrower run (`cargo test -p vgi-rpc --test X`)
//! uses whatever was last built there. Shared by several test crates through `#[path]`;
//! inside a binary's own package use `env!("CARGO_BIN_EXE_<name>")` instead.

#![allow(unreachable_pub, dead_code, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
///
/// # Panics
///
/// If the test binary does not live in a `deps` directory.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .filter(|deps| deps.ends_with("deps"))
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in target/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// Binary `name` of workspace package `package`, as built for this test's profile.
///
/// # Panics
///
/// If it has not been built, naming the command that builds it.
pub fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    require(&path, &format!("-p {package} --bin {name}"))
}

/// Example `name` of workspace package `package`, as built for this test's profile.
///
/// # Panics
///
/// If it has not been built, naming the command that builds it.
pub fn example_bin(package: &str, name: &str) -> PathBuf {
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    require(&path, &format!("-p {package} --example {name}"))
}

fn require(path: &Path, what: &str) -> PathBuf {
    if !path.is_file() {
        let profile = match profile_dir().file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => String::new(),
            Some("release") => " --release".to_owned(),
            Some(other) => format!(" --profile {other}"),
        };
        panic!(
            "{} is not built. `cargo test --workspace{profile}` (or scripts/test.sh) builds \
             every binary and example before running tests; to build just this one, run \
             `cargo build{profile} {what}` (with the same CARGO_TARGET_DIR)",
            path.display()
        );
    }
    path.to_path_buf()
}

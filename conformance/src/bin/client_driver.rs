//! `vgi-rpc-client-driver`: exposes the vgi-rpc-rs client to the reference's shared
//! conformance suite over the client-driver control protocol (newline-delimited JSON on
//! stdin/stdout; see `conformance/src/driver/mod.rs`).
//!
//! ```text
//! VGI_CLIENT_DRIVER=target/release/vgi-rpc-client-driver pytest ...
//! ```

#[path = "../driver/mod.rs"]
mod driver;

fn main() {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    driver::run(stdin.lock(), stdout.lock());
}

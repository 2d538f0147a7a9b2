//! The server's request path: any bytes a client could send on a connection, served by
//! the full conformance worker (routing, validation, dispatch, streams). Must answer or
//! end the connection with a typed error, never panic or hang.

use std::sync::OnceLock;

fn server() -> &'static vgi_rpc::Server {
    static SERVER: OnceLock<vgi_rpc::Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        vgi_rpc_conformance::server_builder()
            .build()
            .expect("the conformance server builds")
    })
}

// `fuzz_nohook!`: a panic that escapes the target aborts (a crash), while one the
// library itself catches and turns into a typed error (arrow panics inside the decoder's
// guard) is handled as in production.
fn main() {
    // A panic must abort (AFL++ records it as a crash), not unwind into the harness:
    // nothing is reused after one, so the unwind-safety assertion holds.
    let server = std::panic::AssertUnwindSafe(server());
    afl::fuzz_nohook!(|data: &[u8]| {
        let mut answer = Vec::new();
        let _ = vgi_rpc::server::serve_connection(&server, data, &mut answer);
    });
}

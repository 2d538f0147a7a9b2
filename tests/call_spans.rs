//! Every call is a `tracing` span on both ends (target `vgi_rpc::call`), without any
//! OpenTelemetry feature or hook: the server's `vgi_rpc.call` and the client's
//! `vgi_rpc.client_call`, with the OpenTelemetry attribute names, the outcome (counts,
//! error type and code) recorded when the call ends.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::net::UnixStream;
use std::thread;

use vgi_rpc::ErrorCode;
use vgi_rpc::client::Client;
use vgi_rpc::prelude::*;
use vgi_rpc::server::{Peer, serve_connection_from};

#[path = "support/capture.rs"]
mod capture;
use capture::Capture;

#[vgi_rpc::service(protocol = "Spanned", version = "1.0.0")]
pub trait Spanned: Send + Sync + 'static {
    /// Echoes `text`.
    fn echo(&self, text: String) -> Result<String>;
    /// Always fails with a not-found error.
    fn missing(&self) -> Result<String>;
}

struct Impl;

impl Spanned for Impl {
    fn echo(&self, text: String) -> Result<String> {
        Ok(text)
    }
    fn missing(&self) -> Result<String> {
        Err(RpcError::new("KeyError", "no such thing")
            .with_code(ErrorCode::NotFound)
            .into())
    }
}

fn span<'a>(spans: &'a [(String, String)], name: &str, method: &str) -> &'a str {
    &spans
        .iter()
        .find(|(n, f)| n == name && f.contains(&format!("rpc.method={method};")))
        .unwrap_or_else(|| panic!("no {name} span for {method}: {spans:#?}"))
        .1
}

#[test]
fn calls_are_tracing_spans_on_both_ends() {
    let (client_end, server_end) = UnixStream::pair().unwrap();
    let server = Server::builder()
        .service(SpannedServer::new(Impl))
        .build()
        .unwrap();
    let capture = Capture::default();
    let in_server = capture.clone();
    let serving = thread::spawn(move || {
        tracing::subscriber::with_default(in_server, || {
            let reader = server_end.try_clone().unwrap();
            serve_connection_from(&server, Peer::unix(), reader, server_end).unwrap();
        })
    });
    tracing::subscriber::with_default(capture.clone(), || {
        let client = Client::from_io(client_end.try_clone().unwrap(), client_end);
        let mut client = SpannedClient::from_client(client);
        assert_eq!(client.echo("hi".into()).unwrap(), "hi");
        assert!(client.missing().is_err());
    });
    serving.join().unwrap();

    let spans = capture.spans();
    let served = span(&spans, "vgi_rpc.call", "echo");
    for field in [
        "otel.name=vgi_rpc/echo;",
        "otel.kind=\"server\";",
        "rpc.system=\"vgi_rpc\";",
        "rpc.service=\"Spanned\";",
        "rpc.vgi_rpc.method_type=\"unary\";",
        "rpc.vgi_rpc.input_rows=1;",
        "rpc.vgi_rpc.output_rows=1;",
        "otel.status_code=\"OK\";",
    ] {
        assert!(served.contains(field), "{field} in {served}");
    }
    let failed = span(&spans, "vgi_rpc.call", "missing");
    for field in [
        "rpc.vgi_rpc.error_type=\"KeyError\";",
        "rpc.vgi_rpc.error_code=\"NOT_FOUND\";",
        "otel.status_code=\"ERROR\";",
    ] {
        assert!(failed.contains(field), "{field} in {failed}");
    }
    let called = span(&spans, "vgi_rpc.client_call", "echo");
    for field in [
        "otel.kind=\"client\";",
        "rpc.service=Spanned;",
        "rpc.vgi_rpc.method_type=\"unary\";",
    ] {
        assert!(called.contains(field), "{field} in {called}");
    }
    assert!(!called.contains("error_type"), "{called}");
    let refused = span(&spans, "vgi_rpc.client_call", "missing");
    for field in [
        "rpc.vgi_rpc.error_type=\"KeyError\";",
        "rpc.vgi_rpc.error_code=\"NOT_FOUND\";",
        "otel.status_code=\"ERROR\";",
    ] {
        assert!(refused.contains(field), "{field} in {refused}");
    }
}

//! Our ConformanceService description hashes to the reference's pinned values, and its
//! canonical preimage is byte-identical to the reference's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vgi_rpc::server::protocol_hash_preimage;
use vgi_rpc_conformance::ConformanceServer;

const PREIMAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/protocol/conformance_protocol_hash_preimage.json"
);

fn server() -> vgi_rpc::Server {
    vgi_rpc_conformance::server_builder().build().unwrap()
}

#[test]
fn preimage_is_byte_identical() {
    let want = std::fs::read_to_string(PREIMAGE).unwrap();
    let got = protocol_hash_preimage(&ConformanceServer::spec());
    assert_eq!(got, want.trim_end());
}

#[test]
fn hashes_match_the_pinned_reference_values() {
    let server = server();
    assert_eq!(
        server.protocols(),
        [
            "ConformanceService",
            "conformance.Secondary.v1",
            "vgi_rpc.Reflection.v1"
        ]
    );
    assert_eq!(
        server.protocol_hash("ConformanceService"),
        Some("05479410c96f34410a2b10a4f6a49d59dcfd9d6d1d45ce9a9807d060a3bd6014")
    );
    assert_eq!(
        server.protocol_hash("conformance.Secondary.v1"),
        Some("58557cf1611546ad22d1c379bc3ce1b04166082f78375e9fc959f0086347eab6")
    );
    assert_eq!(
        server.protocol_hash("vgi_rpc.Reflection.v1"),
        Some("3c7db4cae8cdfc93dc4a76e73b8b759e18e45e6a5811adba4e520366344b919a")
    );
}

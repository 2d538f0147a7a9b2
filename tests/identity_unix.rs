//! `vgi_rpc.Identity.v2` over a raw transport (IDENTITY_CONFORMANCE_FIXTURE.md §7): a Unix
//! socket whose connections are authenticated from the kernel's `SO_PEERCRED`.
//!
//! Three cases: an allowlisted connection identity resolves; a connection identity not
//! on the allowlist, on the same transport, is refused (so a dispatch path handing the
//! protocol an *empty* context, which refuses everything, cannot pass the first case
//! and this one alike); and an anonymous raw transport cannot mint.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::thread;

use vgi_rpc::Server;
use vgi_rpc::client::Client;
use vgi_rpc::identity::{
    Identity, IdentityFailure, IdentityProtocolClient, IssuedGrant, TokenIdentity,
};
use vgi_rpc::prelude::*;
use vgi_rpc::server::AuthContext;
use vgi_rpc::transport::{ServeOptions, Shutdown, UnixSocketListener, serve_listener};

#[vgi_rpc::service(protocol = "Peer")]
pub trait PeerProbe: Send + Sync + 'static {
    /// `uid:pid` of the calling process, as the kernel reported it.
    fn credentials(&self, ctx: &CallContext) -> Result<String>;
}

struct PeerImpl;

impl PeerProbe for PeerImpl {
    fn credentials(&self, ctx: &CallContext) -> Result<String> {
        let c = ctx.peer().credentials.expect("a Unix peer has credentials");
        Ok(format!("{}:{}", c.uid, c.pid))
    }
}

fn resolve(token: &str) -> std::result::Result<Option<TokenIdentity>, IdentityFailure> {
    Ok((token == "known").then(|| TokenIdentity::new("subject").with_token_name("t")))
}

fn mint(
    principal: &str,
    _: &str,
    _: &[String],
    _: i64,
) -> std::result::Result<IssuedGrant, IdentityFailure> {
    Ok(IssuedGrant::new(
        format!("grant-for:{principal}"),
        chrono::Utc::now(),
    ))
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// A Unix socket server whose allowlist is `allowed`; connections authenticate as
/// `uid:<n>` when `by_uid`, else stay anonymous.
fn serve(tag: &str, allowed: &str, by_uid: bool) -> (PathBuf, Shutdown) {
    let path = std::env::temp_dir().join(format!("vgi-identity-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixSocketListener::bind(&path).unwrap();
    let identity = Identity::builder()
        .resolve_token(resolve)
        .introspectors([allowed])
        .mint_grant(mint)
        .build()
        .unwrap();
    let server = Server::builder()
        .service(PeerProbeServer::new(PeerImpl))
        .identity(identity)
        .build()
        .unwrap();
    let mut options = ServeOptions::default().threaded(true);
    if by_uid {
        options = options.authenticate_connections(|peer| match peer.credentials {
            Some(c) => AuthContext::authenticated("peercred", format!("uid:{}", c.uid)),
            None => AuthContext::anonymous(),
        });
    }
    let shutdown = Shutdown::new().unwrap();
    let stop = shutdown.clone();
    thread::spawn(move || serve_listener(&server, &listener, &options, &stop).unwrap());
    (path, shutdown)
}

fn connect(path: &std::path::Path) -> Client {
    Client::connect(&format!("unix:{}", path.display())).unwrap()
}

#[test]
fn the_kernel_reported_peer_reaches_the_handler() {
    let (path, shutdown) = serve("peer", "nobody", false);
    let answer = PeerProbeClient::from_client(connect(&path))
        .credentials()
        .unwrap();
    assert_eq!(answer, format!("{}:{}", uid(), std::process::id()));
    shutdown.trigger();
}

#[test]
fn an_allowlisted_connection_identity_introspects() {
    let (path, shutdown) = serve("allowed", &format!("uid:{}", uid()), true);
    let mut identity = IdentityProtocolClient::from_client(connect(&path));
    let who = identity.introspect_token("known".into()).unwrap();
    assert_eq!(
        (
            who.principal.as_str(),
            who.token_name.as_str(),
            who.ttl_seconds
        ),
        ("subject", "t", 300)
    );
    let unknown = identity.introspect_token("unknown".into()).unwrap_err();
    assert_eq!(
        unknown.as_rpc().unwrap().kind.as_deref(),
        Some("token_unresolved")
    );
    shutdown.trigger();
}

#[test]
fn a_connection_identity_off_the_allowlist_is_refused_on_the_same_transport() {
    let (path, shutdown) = serve("outsider", "uid:4294967294", true);
    let err = IdentityProtocolClient::from_client(connect(&path))
        .introspect_token("known".into())
        .unwrap_err();
    assert_eq!(
        err.as_rpc().unwrap().kind.as_deref(),
        Some("introspection_refused")
    );
    shutdown.trigger();
}

#[test]
fn an_anonymous_raw_transport_cannot_mint_or_introspect() {
    let (path, shutdown) = serve("anonymous", &format!("uid:{}", uid()), false);
    let mut identity = IdentityProtocolClient::from_client(connect(&path));
    let err = identity.issue_grant("p".into(), vec![], 60).unwrap_err();
    assert_eq!(err.as_rpc().unwrap().kind.as_deref(), Some("stale_auth"));
    let err = identity.introspect_token("known".into()).unwrap_err();
    assert_eq!(
        err.as_rpc().unwrap().kind.as_deref(),
        Some("introspection_refused")
    );
    shutdown.trigger();
}

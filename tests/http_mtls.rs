//! mTLS end to end over real sockets: `serve_tls` requiring client certificates from a
//! CA generated here, our HTTP client presenting (or not) a certificate, and the `Mtls`
//! authenticator naming the caller from it. Every refusal is checked to reach no
//! handler: the service counts its calls.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use vgi_rpc::client::{ClientIdentity, ConnectOptions, HttpConnectOptions};
use vgi_rpc::prelude::*;
use vgi_rpc::transport::Shutdown;
use vgi_rpc::transport::http::auth::Mtls;
use vgi_rpc::transport::http::{HttpOptions, TlsConfig, serve_tls};

/// Reports the caller the server authenticated.
#[vgi_rpc::service(protocol = "MtlsWhoami", version = "1.0.0")]
pub trait Whoami: Send + Sync + 'static {
    /// `domain:principal subject_dn`.
    fn whoami(&self, ctx: &CallContext) -> Result<String>;
}

struct Counted(Arc<AtomicUsize>);

impl Whoami for Counted {
    fn whoami(&self, ctx: &CallContext) -> Result<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let auth = ctx.auth();
        let dn = auth.claims.get("subject_dn").and_then(|v| v.as_str());
        Ok(format!(
            "{}:{} {}",
            auth.domain_or_empty(),
            auth.principal_or_empty(),
            dn.unwrap_or("-")
        ))
    }
}

/// A CA that signs server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn server(&self) -> Leaf {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    fn client(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = vec![SanType::URI(
            format!("spiffe://example.org/{cn}").try_into().unwrap(),
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// An HTTPS server on a free port, stopped and joined on drop.
struct Running {
    url: String,
    calls: Arc<AtomicUsize>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<vgi_rpc::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

fn start(ca: &Ca, optional: bool) -> Running {
    start_with(ca, |tls| {
        if optional {
            tls.with_optional_client_certificates()
        } else {
            tls
        }
    })
}

/// A server requiring certificates from `ca`, with `adjust` applied to its TLS setup.
fn start_with(ca: &Ca, adjust: impl FnOnce(TlsConfig) -> TlsConfig) -> Running {
    let leaf = ca.server();
    let tls = TlsConfig::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes())
        .unwrap()
        .with_client_ca_pem(ca.pem().as_bytes())
        .unwrap();
    let tls = adjust(tls);
    let calls = Arc::new(AtomicUsize::new(0));
    let server = vgi_rpc::Server::builder()
        .service(WhoamiServer::new(Counted(Arc::clone(&calls))))
        .build()
        .unwrap();
    let options = HttpOptions::default().authenticate(Mtls::new());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let shutdown = Shutdown::new().unwrap();
    let stop = shutdown.clone();
    let thread = std::thread::spawn(move || serve_tls(&server, &options, listener, &tls, &stop));
    Running {
        url,
        calls,
        shutdown,
        thread: Some(thread),
    }
}

/// Calls `whoami` trusting `ca`, presenting `identity` if any.
fn call(url: &str, ca: &Ca, identity: Option<&Leaf>) -> vgi_rpc::Result<String> {
    let mut http = HttpConnectOptions::default().with_ca_certificate_pem(ca.pem());
    if let Some(leaf) = identity {
        http = http.with_client_identity(ClientIdentity::from_pem(
            leaf.cert.clone(),
            leaf.key.clone(),
        ));
    }
    WhoamiClient::connect_with(url, ConnectOptions::default().with_http(http))?.whoami()
}

#[test]
fn a_client_certificate_names_the_caller() {
    let ca = Ca::new("test CA");
    let server = start(&ca, false);
    let alice = ca.client("alice");
    let answer = call(&server.url, &ca, Some(&alice)).unwrap();
    assert_eq!(answer, "mtls:alice CN=alice");
    let answer = call(&server.url, &ca, Some(&ca.client("bob"))).unwrap();
    assert_eq!(answer, "mtls:bob CN=bob");
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn without_a_certificate_the_handshake_is_refused() {
    let ca = Ca::new("test CA");
    let server = start(&ca, false);
    let error = call(&server.url, &ca, None).unwrap_err();
    // Refused by TLS, not answered by HTTP: the server's `certificate_required` alert
    // (TLS 1.3: it arrives once the client sends its first request, the health probe).
    assert!(error.is_local(), "{error}");
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    // The server keeps serving those who do present one.
    call(&server.url, &ca, Some(&ca.client("alice"))).unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ca = Ca::new("test CA");
    let stranger = Ca::new("other CA");
    let server = start(&ca, false);
    let error = call(&server.url, &ca, Some(&stranger.client("mallory"))).unwrap_err();
    assert!(error.is_local(), "{error}");
    assert!(error.to_string().contains("UnknownCA"), "{error}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn with_optional_certificates_the_authenticator_answers_401() {
    let ca = Ca::new("test CA");
    let server = start(&ca, true);
    let error = call(&server.url, &ca, None).unwrap_err();
    let rpc = error.as_rpc().expect("a 401 answer");
    assert_eq!(rpc.error_type, "AuthenticationError");
    assert_eq!(rpc.kind.as_deref(), Some("missing_credential"));
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    // A certificate from another CA still fails the handshake.
    let stranger = Ca::new("other CA");
    assert!(call(&server.url, &ca, Some(&stranger.client("mallory"))).is_err());
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        call(&server.url, &ca, Some(&ca.client("alice"))).unwrap(),
        "mtls:alice CN=alice"
    );
}

#[test]
fn the_client_refuses_a_server_its_roots_do_not_trust() {
    let ca = Ca::new("test CA");
    let server = start(&ca, false);
    let other = Ca::new("other CA");
    let error = call(&server.url, &other, Some(&ca.client("alice"))).unwrap_err();
    assert!(matches!(error, vgi_rpc::Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_silent_or_plaintext_peer_is_dropped_without_holding_up_others() {
    let ca = Ca::new("test CA");
    let server = start_with(&ca, |tls| {
        tls.with_handshake_timeout(Duration::from_millis(300))
    });
    let address = server.url.trim_start_matches("https://").to_owned();
    // Connects and says nothing: dropped once the handshake timeout passes.
    let mut silent = TcpStream::connect(&address).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Meanwhile a real client is served.
    assert_eq!(
        call(&server.url, &ca, Some(&ca.client("alice"))).unwrap(),
        "mtls:alice CN=alice"
    );
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed, nothing sent");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Plain HTTP on the TLS port: refused before any request is read.
    let mut plain = TcpStream::connect(&address).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"POST /MtlsWhoami/whoami HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer over plaintext"
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_pem_is_a_configuration_error() {
    assert!(matches!(
        TlsConfig::from_pem(b"nope", b"nope"),
        Err(vgi_rpc::Error::Config(_))
    ));
    let ca = Ca::new("test CA");
    assert!(matches!(
        TlsConfig::from_pem(ca.pem().as_bytes(), b"nope"),
        Err(vgi_rpc::Error::Config(_))
    ));
    let options = ConnectOptions::default().with_http(
        HttpConnectOptions::default()
            .with_client_identity(ClientIdentity::from_pem("nope", "nope")),
    );
    let Err(error) = WhoamiClient::connect_with("https://127.0.0.1:9", options) else {
        panic!("a client identity that is not PEM was accepted");
    };
    assert!(matches!(error, vgi_rpc::Error::Config(_)), "{error}");
}

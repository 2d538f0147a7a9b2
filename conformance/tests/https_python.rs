//! The reference Python client (vgi-rpc 0.52.2 over httpx2, with an `ssl` client
//! certificate) against our worker serving HTTPS with a required client CA
//! (`--tls-cert --tls-key --tls-client-ca`): `conformance.Whoami.v1` reports the
//! certificate's CN as an `mtls` principal, and without a certificate the handshake
//! fails. Certificates are made here with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use vgi_rpc_conformance::announce::spawn_announcing;
use vgi_rpc_conformance::matrix::{ensure_python_venv, python_venv};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker");

/// Calls `whoami` with the reference client; prints the answer or `ERROR <type> …`.
const CLIENT: &str = r#"
import ssl, sys
import httpx2
from vgi_rpc.http import http_connect
from vgi_rpc.conformance.identity_fixture import Whoami

url, ca = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 3:
    context.load_cert_chain(sys.argv[3], sys.argv[4])
try:
    with httpx2.Client(base_url=url, verify=context) as client:
        with http_connect(Whoami, client=client) as proxy:
            print(proxy.whoami())
except Exception as exc:
    print("ERROR", type(exc).__name__, exc, repr(exc.__cause__))
"#;

fn venv() -> PathBuf {
    python_venv()
        .or_else(|| ensure_python_venv().ok())
        .expect("the reference venv (scripts/python-venv.sh)")
}

fn leaf(dir: &Path, name: &str, sans: Vec<String>, ca: &CertifiedIssuer<'_, KeyPair>) {
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    // Python 3.13's default context verifies strictly (RFC 5280 profile).
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

#[test]
fn the_reference_client_authenticates_with_a_client_certificate() {
    let venv = venv();
    let dir = std::env::temp_dir().join(format!("vgi-https-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "python interop CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    leaf(&dir, "server", vec!["127.0.0.1".into()], &ca);
    leaf(&dir, "carol", Vec::new(), &ca);

    let (mut worker, port) = spawn_announcing(
        Command::new(WORKER)
            .args(["--http", "0", "--tls-cert"])
            .arg(dir.join("server.pem"))
            .arg("--tls-key")
            .arg(dir.join("server.key"))
            .arg("--tls-client-ca")
            .arg(dir.join("ca.pem"))
            .stderr(Stdio::null()),
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let client = |identity: &[&str]| {
        let output = Command::new(venv.join("bin/python"))
            .args(["-c", CLIENT, &url])
            .arg(dir.join("ca.pem"))
            .args(identity.iter().map(|f| dir.join(f)))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let with_cert = client(&["carol.pem", "carol.key"]);
    let without = client(&[]);
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let who: serde_json::Value = serde_json::from_str(&with_cert).expect(&with_cert);
    assert_eq!(who["principal"], "carol");
    assert_eq!(who["domain"], "mtls");
    assert_eq!(who["authenticated"], true);
    assert_eq!(who["claims"]["subject_dn"], "CN=carol");
    eprintln!("without a certificate: {without}");
    assert!(without.starts_with("ERROR"), "{without}");
}

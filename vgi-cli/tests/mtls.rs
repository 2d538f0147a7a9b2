//! `vgi-rpc --client-cert/--client-key/--ca-cert` against our conformance worker serving
//! HTTPS with a required client CA (`--tls-cert/--tls-key/--tls-client-ca`): the worker's
//! `conformance.Whoami.v1` reports the certificate's CN as the caller; without a
//! certificate the handshake is refused (exit status 3). Certificates are made here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use assert_cmd::Command as Cli;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

#[path = "../../tests/support/bins.rs"]
mod bins;

const VGI_RPC: &str = env!("CARGO_BIN_EXE_vgi-rpc");

/// Writes `name.pem` and `name.key` signed by `ca` into `dir`.
fn leaf(dir: &Path, name: &str, sans: Vec<String>, ca: &CertifiedIssuer<'_, KeyPair>) {
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// The HTTPS worker, killed on drop.
struct Worker {
    child: Child,
    url: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Worker {
    let worker = bins::workspace_bin("vgi-rpc-conformance", "vgi-rpc-conformance-worker");
    let mut child = Command::new(worker)
        .args(["--http", "0", "--tls-cert"])
        .arg(dir.join("server.pem"))
        .arg("--tls-key")
        .arg(dir.join("server.key"))
        .arg("--tls-client-ca")
        .arg(dir.join("ca.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("PORT:").expect("a PORT line");
    Worker {
        child,
        url: format!("https://127.0.0.1:{port}"),
    }
}

#[test]
fn the_cli_presents_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "cli test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    leaf(dir.path(), "server", vec!["127.0.0.1".into()], &ca);
    leaf(dir.path(), "alice", Vec::new(), &ca);
    let worker = start(dir.path());
    let whoami = |flags: &[(&str, &str)]| {
        let mut cli = Cli::new(VGI_RPC);
        cli.args(["call", &worker.url, "conformance.Whoami.v1.whoami"]);
        for (flag, file) in flags {
            cli.arg(flag).arg(dir.path().join(file));
        }
        cli.output().unwrap()
    };

    let ok = whoami(&[
        ("--client-cert", "alice.pem"),
        ("--client-key", "alice.key"),
        ("--ca-cert", "ca.pem"),
    ]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(stdout.contains(r#""domain":"mtls""#), "{stdout}");
    assert!(stdout.contains(r#""principal":"alice""#), "{stdout}");
    assert!(stdout.contains(r#""subject_dn":"CN=alice""#), "{stdout}");

    let refused = whoami(&[("--ca-cert", "ca.pem")]);
    assert_eq!(refused.status.code(), Some(3), "a transport failure");
    let half = whoami(&[("--client-cert", "alice.pem"), ("--ca-cert", "ca.pem")]);
    assert_eq!(half.status.code(), Some(2), "a usage error");
    let not_a_ca = whoami(&[("--ca-cert", "alice.key")]);
    assert_eq!(
        not_a_ca.status.code(),
        Some(2),
        "a key is no CA certificate"
    );
}

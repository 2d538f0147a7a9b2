//! The worker's HTTP flags and serving: plain HTTP or TLS, with the authentication the
//! flags ask for (identity fixtures, reject-all, proxy proof, mTLS).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use vgi_rpc::transport::Shutdown;
use vgi_rpc_conformance::identity::{IdentityMode, PrincipalHeader, RejectAll};

/// The HTTP-only flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HttpFlags {
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) prefix: String,
    pub(crate) max_request_bytes: Option<u64>,
    pub(crate) max_response_bytes: Option<u64>,
    pub(crate) no_compression: bool,
    pub(crate) token_key: Option<[u8; 32]>,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) reject_all_auth: bool,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    pub(crate) tls_client_ca: Option<PathBuf>,
    pub(crate) proof_mode: Option<String>,
    pub(crate) proof_origin_id: String,
    pub(crate) proof_secrets: String,
    pub(crate) proof_skew: Option<u64>,
    pub(crate) proof_no_replay_cache: bool,
}

/// Binds, announces `PORT:<n>` (after the bind, so a reader can connect at once) and
/// serves HTTP until SIGTERM/SIGINT.
pub(crate) fn serve_http(
    server: &vgi_rpc::Server,
    flags: &HttpFlags,
    identity: IdentityMode,
    port: Option<u16>,
    with_storage: impl FnOnce(
        vgi_rpc::transport::http::HttpOptions,
    ) -> vgi_rpc::transport::http::HttpOptions,
) -> anyhow::Result<()> {
    use vgi_rpc::transport::http::HttpOptions;
    let host = flags.host.as_deref().unwrap_or("127.0.0.1");
    let port = flags.port.or(port).unwrap_or(0);
    let listener = std::net::TcpListener::bind((host, port))
        .with_context(|| format!("binding {host}:{port}"))?;
    let mut options = HttpOptions::default()
        .prefix(&flags.prefix)
        .compression(!flags.no_compression);
    if let Some(limit) = flags.max_request_bytes {
        options = options.max_request_bytes(limit);
    }
    if let Some(limit) = flags.max_response_bytes {
        options = options.max_response_bytes(limit)?;
    }
    if let Some(key) = flags.token_key {
        options = options.token_key(key);
    }
    options = with_storage(options);
    for origin in &flags.cors_origins {
        options = options.cors_origin(origin.clone());
    }
    if let Some(mode) = &flags.proof_mode {
        use vgi_rpc::transport::http::auth::{ProofMode, ProxyProof};
        let mode = if mode == "allow" {
            ProofMode::Allow
        } else {
            ProofMode::Require
        };
        let origin = if flags.proof_origin_id.is_empty() {
            "conformance-origin"
        } else {
            &flags.proof_origin_id
        };
        let mut proof = ProxyProof::new(mode, origin, &flags.proof_secrets)?.skew(
            std::time::Duration::from_secs(flags.proof_skew.unwrap_or(30)),
        );
        if flags.proof_no_replay_cache {
            proof = proof.replay_cache(None);
        }
        options = options.proxy_proof(proof);
    }
    if flags.reject_all_auth {
        options = options.authenticate(RejectAll);
    } else if flags.tls_client_ca.is_some() {
        options = options.authenticate(vgi_rpc::transport::http::auth::Mtls::new());
    } else if identity != IdentityMode::Off {
        options = options.authenticate(PrincipalHeader);
    }
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "PORT:{}", listener.local_addr()?.port())?;
    stdout.flush()?;
    drop(stdout);
    match tls_config(flags)? {
        Some(tls) => {
            vgi_rpc::transport::http::serve_tls(server, &options, listener, &tls, &shutdown)
                .context("serving HTTPS")
        }
        None => vgi_rpc::transport::http::serve(server, &options, listener, &shutdown)
            .context("serving HTTP"),
    }
}

/// The TLS configuration of `--tls-cert`, `--tls-key` and `--tls-client-ca`, if any.
fn tls_config(flags: &HttpFlags) -> anyhow::Result<Option<vgi_rpc::transport::http::TlsConfig>> {
    let (Some(cert), Some(key)) = (&flags.tls_cert, &flags.tls_key) else {
        return Ok(None);
    };
    let mut tls = vgi_rpc::transport::http::TlsConfig::from_pem_files(cert, key)
        .with_context(|| format!("loading {} and {}", cert.display(), key.display()))?;
    if let Some(ca) = &flags.tls_client_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        tls = tls
            .with_client_ca_pem(&pem)
            .with_context(|| format!("loading {}", ca.display()))?;
    }
    Ok(Some(tls))
}

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
    pub(crate) sticky: StickyFlags,
}

/// The sticky-session flags, as the reference's `serve_conformance_http.py` has them:
/// sticky on by default with a fixed echo-header marker.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StickyFlags {
    pub(crate) off: bool,
    pub(crate) no_echo: bool,
    pub(crate) ttl_seconds: Option<f64>,
    pub(crate) auth: bool,
}

impl Eq for StickyFlags {}

/// The echo header the shared suite's `test_echo_header_round_trip` expects.
const ECHO_MARKER: (&str, &str) = ("x-vgi-conformance-echo", "conformance-fixed-marker");

/// Parses a sticky flag (`--no-sticky`, `--no-sticky-echo`, `--sticky-ttl S`,
/// `--sticky-auth`); `Ok(false)` when `flag` is not one.
pub(crate) fn sticky_flag(
    flags: &mut StickyFlags,
    flag: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<bool, String> {
    match flag {
        "--no-sticky" => flags.off = true,
        "--no-sticky-echo" => flags.no_echo = true,
        "--sticky-auth" => flags.auth = true,
        "--sticky-ttl" => {
            let raw = value("--sticky-ttl")?;
            let ttl: f64 = raw
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t > 0.0)
                .ok_or_else(|| {
                    format!("argument --sticky-ttl: invalid positive seconds {raw:?}")
                })?;
            flags.ttl_seconds = Some(ttl);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The sticky options of `flags`, if sticky is on.
fn sticky_options(flags: &StickyFlags) -> Option<vgi_rpc::transport::http::StickyOptions> {
    if flags.off {
        return None;
    }
    let mut sticky = vgi_rpc::transport::http::StickyOptions::new();
    if let Some(ttl) = flags.ttl_seconds {
        sticky = sticky.default_ttl(std::time::Duration::from_secs_f64(ttl));
    }
    if !flags.no_echo {
        sticky = sticky.echo_header(ECHO_MARKER.0, ECHO_MARKER.1);
    }
    Some(sticky)
}

/// `POST /__test_drain__` starts draining, `DELETE` stops (the reference fixture's
/// test-only admin route backing `TestSticky::test_drain_rejects_new_opens`).
fn test_drain_route(drain: vgi_rpc::transport::http::DrainHandle) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::post;
    let stop = drain.clone();
    axum::Router::new().route(
        "/__test_drain__",
        post(move || {
            drain.drain();
            async { StatusCode::NO_CONTENT }
        })
        .delete(move || {
            stop.resume();
            async { StatusCode::NO_CONTENT }
        }),
    )
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
    } else if identity != IdentityMode::Off || flags.sticky.auth {
        options = options.authenticate(PrincipalHeader);
    }
    let sticky = sticky_options(&flags.sticky);
    let drain = sticky.as_ref().map(|s| s.drain_handle());
    if let Some(sticky) = sticky {
        options = options.sticky(sticky);
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
        None => {
            let mut router = vgi_rpc::transport::http::router(server, &options)?;
            if let Some(drain) = drain {
                router = test_drain_route(drain).merge(router);
            }
            vgi_rpc::transport::http::serve_router(router, listener, &shutdown)
                .context("serving HTTP")
        }
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

//! HTTPS on the server: TLS terminated in this process with rustls (on ring, no C
//! build), optionally requiring client certificates signed by a configured CA (mTLS).
//!
//! Most deployments terminate TLS at a proxy and serve [`router`](super::router) or
//! [`serve`](super::serve) behind it. Terminating here is for the other case: a service
//! reached directly whose callers authenticate by certificate. Then the verified chain
//! must reach authenticators, which axum's own `serve` cannot carry, so this module has
//! its own accept loop (`accept.rs`): each connection's handshake runs in its own task
//! under a timeout (a slow client holds up no one), and every request of the connection
//! gets the chain as a
//! [`PeerCertificates`](crate::transport::http::auth::PeerCertificates) extension, read by `Mtls`.

mod accept;

use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use accept::serve_tls;

use crate::{Error, Result};

/// How long a client may take to complete the TLS handshake, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's certificate and key, and whether (and against which CAs) clients must
/// present certificates. Built from PEM, or from a ready rustls [`ServerConfig`].
#[derive(Clone)]
pub struct TlsConfig {
    source: Source,
    handshake_timeout: Duration,
}

#[derive(Clone)]
enum Source {
    Pem {
        chain: Vec<CertificateDer<'static>>,
        key: Arc<PrivateKeyDer<'static>>,
        client_roots: Option<RootCertStore>,
        client_optional: bool,
    },
    Rustls(Arc<ServerConfig>),
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("TlsConfig");
        match &self.source {
            Source::Pem {
                chain,
                client_roots,
                client_optional,
                ..
            } => s
                .field("chain_len", &chain.len())
                .field("client_cas", &client_roots.as_ref().map(RootCertStore::len))
                .field("client_optional", client_optional),
            Source::Rustls(_) => s.field("rustls", &"<ServerConfig>"),
        };
        s.field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{what}: {e}"))
}

/// The certificates of a PEM buffer (at least one).
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(what, e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{what}: no certificate in the PEM")));
    }
    Ok(certs)
}

impl TlsConfig {
    /// TLS with the certificate chain `cert_chain_pem` (server certificate first) and
    /// its private key `key_pem` (PKCS#8, PKCS#1 or SEC1). Clients are not asked for
    /// certificates until [`TlsConfig::with_client_ca_pem`].
    ///
    /// # Errors
    /// [`Error::Config`] when either PEM does not hold what it should.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = certificates(cert_chain_pem, "server certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| config_error("server private key", e))?;
        Ok(TlsConfig {
            source: Source::Pem {
                chain,
                key: Arc::new(key),
                client_roots: None,
                client_optional: false,
            },
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// [`TlsConfig::from_pem`] from two files.
    ///
    /// # Errors
    /// A file cannot be read ([`Error::Io`]), or as [`TlsConfig::from_pem`].
    pub fn from_pem_files(
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        Self::from_pem(&std::fs::read(cert_chain)?, &std::fs::read(key)?)
    }

    /// A ready rustls configuration, used as given (its ALPN list should offer
    /// `http/1.1`; a client certificate it verifies reaches authenticators).
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        TlsConfig {
            source: Source::Rustls(config),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Requires every client to present a certificate that chains to one of the CA
    /// certificates in `ca_pem` (added to any set before): a client without one, or with
    /// one from another CA, fails the handshake and never reaches a handler.
    ///
    /// # Errors
    /// [`Error::Config`] when `ca_pem` holds no usable CA certificate, or the
    /// configuration came from [`TlsConfig::from_rustls`].
    pub fn with_client_ca_pem(mut self, ca_pem: &[u8]) -> Result<Self> {
        let Source::Pem { client_roots, .. } = &mut self.source else {
            return Err(Error::Config(
                "client CAs of a rustls ServerConfig are set in that config".into(),
            ));
        };
        let roots = client_roots.get_or_insert_with(RootCertStore::empty);
        for cert in certificates(ca_pem, "client CA certificate")? {
            roots
                .add(cert)
                .map_err(|e| config_error("client CA certificate", e))?;
        }
        Ok(self)
    }

    /// Lets clients without a certificate complete the handshake (a certificate that is
    /// presented must still verify): the authenticator decides, e.g. `Mtls` answers
    /// 401 `missing_credential`, or a `Chain` falls back to a bearer token.
    #[must_use]
    pub fn with_optional_client_certificates(mut self) -> Self {
        if let Source::Pem {
            client_optional, ..
        } = &mut self.source
        {
            *client_optional = true;
        }
        self
    }

    /// Sets how long a client may take to complete the handshake.
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls configuration to accept with.
    ///
    /// # Errors
    /// [`Error::Config`] when the key does not fit the certificate or the CA set is
    /// unusable.
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let (chain, key, client_roots, client_optional) = match &self.source {
            Source::Rustls(config) => return Ok(Arc::clone(config)),
            Source::Pem {
                chain,
                key,
                client_roots,
                client_optional,
            } => (chain, key, client_roots, *client_optional),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("TLS", e))?;
        let builder = match client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider);
                let verifier = if client_optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| config_error("client CA certificate", e))?,
                )
            }
        };
        let mut config = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| config_error("server certificate and key", e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

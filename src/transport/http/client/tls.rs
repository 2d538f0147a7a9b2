//! The client's side of TLS: the certificate it presents to servers that require one
//! (mTLS) and private roots it trusts besides the built-in web roots. reqwest does the
//! handshake (rustls); this only turns the PEM of [`HttpConnectOptions`] into its terms,
//! so a bad file is a [`Error::Config`] when the connector is built, not a failed call.

use crate::client::HttpConnectOptions;
use crate::{Error, Result};

/// `builder` with the identity and roots of `options`.
///
/// # Errors
/// [`Error::Config`] when a PEM does not hold what it should.
pub(super) fn configure(
    mut builder: reqwest::ClientBuilder,
    options: &HttpConnectOptions,
) -> Result<reqwest::ClientBuilder> {
    if let Some(identity) = &options.client_identity {
        // reqwest reads the key and the chain from one PEM buffer.
        let mut pem = identity.key_pem.clone();
        pem.push(b'\n');
        pem.extend_from_slice(&identity.cert_chain_pem);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| Error::Config(format!("invalid client certificate or key: {e}")))?;
        builder = builder.identity(identity);
    }
    for pem in &options.ca_certificates_pem {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Config(format!("invalid CA certificate: {e}")))?;
        if roots.is_empty() {
            return Err(Error::Config(
                "the CA certificate file holds no certificate".into(),
            ));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    Ok(builder)
}

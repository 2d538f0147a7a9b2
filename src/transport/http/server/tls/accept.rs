//! The connections of [`serve_tls`]: the shared accept loop (`conn.rs`: a connection
//! thread each, up to a bound), a TLS handshake per connection (bounded by the handshake
//! timeout), then hyper's HTTP/1.1 connection driving the same handler
//! [`serve`](super::super::serve) uses, with the connection's peer address and verified
//! client chain added to every request.
//!
//! A refused handshake (no client certificate where one is required, one from another
//! CA, not TLS at all) ends that connection before any request is read, so nothing
//! reaches the router, let alone a handler. Shutdown stops accepting, lets each
//! connection finish the request in flight (hyper's graceful shutdown), and returns when
//! all are done.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::super::{HttpOptions, Routes, conn, routes, runtime_until};
use super::TlsConfig;
use crate::transport::Shutdown;
use crate::transport::http::auth::PeerCertificates;
use crate::{Result, Server};

/// Serves `server` over HTTPS on `listener` (already bound) on a tokio runtime of its
/// own, until `shutdown` is triggered; requests in flight then finish. With a client CA
/// ([`TlsConfig::with_client_ca_pem`]) the verified client chain reaches authenticators
/// as [`AuthRequest::peer_certificates`](crate::transport::http::auth::AuthRequest),
/// which `Mtls` turns into the caller's identity.
///
/// # Errors
/// An unusable TLS configuration ([`crate::Error::Config`]), authentication that cannot
/// be composed, or a runtime or listener that fails.
pub fn serve_tls(
    server: &Server,
    options: &HttpOptions,
    listener: std::net::TcpListener,
    tls: &TlsConfig,
    shutdown: &Shutdown,
) -> Result<()> {
    let app = routes(server, options)?;
    let acceptor = TlsAcceptor::from(tls.server_config()?);
    let (runtime, stopped) = runtime_until(shutdown)?;
    listener.set_nonblocking(true)?;
    let timeout = tls.handshake_timeout();
    runtime.block_on(conn::accept_loop(
        listener,
        stopped,
        move |tcp, remote, closed| {
            connection(tcp, remote, acceptor.clone(), app.clone(), closed, timeout)
        },
    ))?;
    Ok(())
}

/// One client: the handshake, then its requests until it leaves or the server stops.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    app: Routes,
    mut closed: watch::Receiver<bool>,
    timeout: Duration,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::select! {
        done = tokio::time::timeout(timeout, acceptor.accept(tcp)) => done,
        _ = closed.wait_for(|closing| *closing) => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let chain = stream
        .get_ref()
        .1
        .peer_certificates()
        .filter(|chain| !chain.is_empty())
        .map(|chain| PeerCertificates(chain.into()));
    conn::http1(stream, remote, app, chain, true, closed).await;
}

//! The accept loop of [`serve_tls`]: TCP accept, a TLS handshake per connection in its
//! own task (bounded by the handshake timeout), then hyper's HTTP/1.1 connection driving
//! the same router [`serve`](super::super::serve) uses, with the connection's peer
//! address and verified client chain added to every request.
//!
//! A refused handshake (no client certificate where one is required, one from another
//! CA, not TLS at all) ends that connection before any request is read, so nothing
//! reaches the router, let alone a handler. Shutdown stops accepting, lets each
//! connection finish the request in flight (hyper's graceful shutdown), and returns when
//! all are done.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use super::super::{HttpOptions, router, runtime_until};
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
    let app = router(server, options)?;
    let acceptor = TlsAcceptor::from(tls.server_config()?);
    let (runtime, stopped) = runtime_until(shutdown)?;
    listener.set_nonblocking(true)?;
    let timeout = tls.handshake_timeout();
    runtime.block_on(accept_loop(listener, acceptor, app, stopped, timeout))?;
    Ok(())
}

async fn accept_loop(
    listener: std::net::TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    stopped: impl Future<Output = ()>,
    timeout: Duration,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (closing, closed) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut stopped = pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    let (acceptor, app, closed) = (acceptor.clone(), app.clone(), closed.clone());
                    connections.spawn(connection(tcp, remote, acceptor, app, closed, timeout));
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTPS connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    closing.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
    )
}

/// One client: the handshake, then its requests until it leaves or the server stops.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    app: axum::Router,
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
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(remote));
        if let Some(chain) = &chain {
            request.extensions_mut().insert(chain.clone());
        }
        app.clone().call(request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    let mut conn = pin!(http.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "HTTPS connection ended with an error");
            }
            return;
        }
        _ = closed.wait_for(|closing| *closing) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

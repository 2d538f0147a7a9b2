//! Calls over plain `http://` on a connection of the link's own, driven with hyper's
//! HTTP/1.1 client directly instead of through reqwest.
//!
//! reqwest wraps every request in layers a call does not use: its redirect policy parses
//! the URL again on the way out and once more on the way back, a pool checkout hashes the
//! host, retry and timeout wrappers box futures, and proxy matchers run per request.
//! For a small call that was about a fifth of the client's time. A link sends one request
//! at a time, so it can own one keep-alive connection and hand requests straight to it.
//!
//! Only where nothing of reqwest is needed: plain `http://` with no proxy variable in the
//! environment (`HTTP_PROXY`, `ALL_PROXY`, either case), and a request that is not
//! retried under a policy. TLS, proxies, the capability probe, uploads and policy
//! retries stay on reqwest. The bytes a server sees are the same: the caller's headers,
//! then ours, `Accept: */*`, `User-Agent` and `Host` as reqwest adds them (each unless
//! the caller set it), `Content-Length` by hyper.
//!
//! A kept connection the server closed while idle (a keep-alive timeout) is found out
//! before the request goes out — the socket shows its end, or hyper hands the unsent
//! request back — and the request goes on a fresh connection instead; a request that
//! went out is never sent twice.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use super::failure::Failure;

/// Where a direct connection goes: the address to connect to and the `Host` header.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    addr: String,
    host: HeaderValue,
    user_agent: HeaderValue,
    connect_timeout: Option<Duration>,
}

impl Endpoint {
    /// The direct endpoint of `base`, when it may be used: `http://` and no proxy
    /// variable that reqwest would apply to it.
    pub(super) fn of(
        base: &str,
        user_agent: &'static str,
        connect_timeout: Option<Duration>,
    ) -> Option<Endpoint> {
        let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        let url = Url::parse(base).ok()?;
        if proxied || url.scheme() != "http" {
            return None;
        }
        let host = url.host_str()?;
        // The Host header names a port only when it is not the scheme's default, as
        // reqwest writes it.
        let header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Some(Endpoint {
            addr: format!("{host}:{}", url.port_or_known_default()?),
            host: HeaderValue::from_str(&header).ok()?,
            user_agent: HeaderValue::from_static(user_agent),
            connect_timeout,
        })
    }
}

/// A link's own connection to an [`Endpoint`], opened on first use and kept.
pub(super) struct Direct {
    endpoint: Endpoint,
    kept: Option<Kept>,
}

/// An open connection: hyper's handle, and the socket itself to look at before reuse.
struct Kept {
    sender: SendRequest<Full<Bytes>>,
    /// The same socket (a duplicate descriptor): a server that closed the connection
    /// while it was idle shows as end-of-stream here before anything is written, even
    /// when hyper's connection task has not run since (it runs only while a call does).
    socket: std::net::TcpStream,
}

impl Kept {
    /// Whether the server may still read a request sent now: nothing arrived since the
    /// last answer, neither its end nor stray bytes.
    fn open(&self) -> bool {
        !self.sender.is_closed()
            && matches!(self.socket.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl Direct {
    pub(super) fn new(endpoint: Endpoint) -> Self {
        Direct {
            endpoint,
            kept: None,
        }
    }

    /// Sends `request` (its target in origin form) on the kept connection, or on a new
    /// one when there is none or the kept one turned out closed before it went out.
    pub(super) async fn send(
        &mut self,
        mut request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, Failure> {
        let headers = request.headers_mut();
        headers
            .entry(reqwest::header::ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        headers
            .entry(reqwest::header::USER_AGENT)
            .or_insert_with(|| self.endpoint.user_agent.clone());
        headers
            .entry(reqwest::header::HOST)
            .or_insert_with(|| self.endpoint.host.clone());
        // Taken while the request is in flight: a request abandoned halfway (a deadline)
        // leaves no connection behind in an unknown state.
        if let Some(mut kept) = self.kept.take()
            && kept.open()
            && kept.sender.ready().await.is_ok()
        {
            match kept.sender.try_send_request(request).await {
                Ok(response) => {
                    self.kept = Some(kept);
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    // Closed before the request went out: once more on a new connection.
                    Some(unsent) => request = unsent,
                    None => return Err(Failure::Direct(e.into_error())),
                },
            }
        }
        let mut kept = self.connect().await?;
        kept.sender.ready().await.map_err(Failure::Direct)?;
        let response = kept
            .sender
            .send_request(request)
            .await
            .map_err(Failure::Direct)?;
        self.kept = Some(kept);
        Ok(response)
    }

    async fn connect(&self) -> Result<Kept, Failure> {
        let connecting = tokio::net::TcpStream::connect(&self.endpoint.addr);
        let tcp = match self.endpoint.connect_timeout {
            Some(limit) => tokio::time::timeout(limit, connecting)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                }),
            None => connecting.await,
        }
        .map_err(Failure::Connect)?;
        // Requests are small writes answered at once: no Nagle delay (as reqwest is set).
        let _ = tcp.set_nodelay(true);
        let socket = std::os::fd::AsFd::as_fd(&tcp)
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
            .map_err(Failure::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(Failure::Direct)?;
        // Driven by the connector's runtime whenever a call runs on it.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
        Ok(Kept { sender, socket })
    }
}

/// An answer from either path.
pub(super) enum Reply {
    Pooled(reqwest::Response),
    Direct(hyper::Response<Incoming>),
}

impl Reply {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Reply::Pooled(r) => r.status(),
            Reply::Direct(r) => r.status(),
        }
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        match self {
            Reply::Pooled(r) => r.headers(),
            Reply::Direct(r) => r.headers(),
        }
    }

    pub(super) fn headers_mut(&mut self) -> &mut HeaderMap {
        match self {
            Reply::Pooled(r) => r.headers_mut(),
            Reply::Direct(r) => r.headers_mut(),
        }
    }

    /// The body's declared length, when the answer declares one.
    pub(super) fn content_length(&self) -> Option<u64> {
        match self {
            Reply::Pooled(r) => r.content_length(),
            Reply::Direct(r) => hyper::body::Body::size_hint(r.body()).exact(),
        }
    }

    /// The next piece of the body; `None` at its end.
    pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        match self {
            Reply::Pooled(r) => r.chunk().await.map_err(Failure::Request),
            Reply::Direct(r) => loop {
                match r.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(Failure::Direct(e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                        // Trailers: nothing a call reads.
                    }
                }
            },
        }
    }
}

//! Connections and where their requests are answered.
//!
//! The call engine is synchronous and may block (a method can sleep, read files, call
//! out), so it never runs on a tokio worker. Handing each request to tokio's blocking
//! pool costs two thread switches per request, and with client and server on one core
//! those switches were half of a small call's latency. So [`serve`](super::serve) and
//! `serve_tls` give a connection a thread of its own instead, as the byte-stream
//! transports do: the connection's hyper future runs on that thread's current-thread
//! runtime, and the engine work a request needs ([`offload`]) runs on the same thread
//! between two polls of that future — outside the runtime, exactly as a blocking-pool
//! task would, with no hand-off — blocking only that connection, which HTTP/1.1 answers
//! one request at a time anyway. The socket is moved to that
//! runtime's reactor, so its readiness wakes the connection's own thread directly.
//!
//! At most [`CONNECTION_THREADS`] connections hold a thread at once (threads come from
//! the blocking pool, so a closed connection's thread serves the next); further ones are
//! served as tasks on the shared runtime with the blocking-pool hand-off per request, so
//! the thread count stays bounded and no connection is refused. A [`router`](super::router)
//! nested in an application's own server always hands off.
//!
//! Shutdown stops accepting, lets each connection finish the request in flight (hyper's
//! graceful shutdown), and returns when all are done.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How many connections are served on threads of their own at once.
pub const CONNECTION_THREADS: usize = 256;

thread_local! {
    /// Set while this thread drives one connection: its engine work runs inline.
    static INLINE: Cell<bool> = const { Cell::new(false) };
    /// The server's shared runtime, seen from a connection thread.
    static SHARED: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// The engine work posted by [`offload`], for this thread to run.
    static JOB: RefCell<Option<Job>> = const { RefCell::new(None) };
    /// The connection runtime of this (blocking-pool) thread, kept for its next
    /// connection.
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Work that panicked.
#[derive(Debug)]
pub(crate) struct Panicked;

/// Engine work a connection's future handed to its thread, run between two polls.
type Job = Box<dyn FnOnce()>;

/// Runs blocking `work` off the async workers: on a connection thread, by that thread
/// between two polls of the connection (outside the runtime, as on the blocking pool,
/// with the shared runtime entered); else on the blocking pool. A panic becomes
/// [`Panicked`] either way.
pub(crate) async fn offload<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    if !INLINE.get() {
        return tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Panicked);
    }
    let done = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&done);
    JOB.set(Some(Box::new(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(out.map_err(|_| Panicked));
        }
    })));
    std::future::poll_fn(|_| match done.lock().ok().and_then(|mut d| d.take()) {
        Some(out) => Poll::Ready(out),
        // The thread runs the job as soon as this poll returns, then polls again.
        None => Poll::Pending,
    })
    .await
}

/// The runtime background tasks belong on: the server's shared one (a connection
/// thread's own runtime ends with its connection).
pub(crate) fn background() -> Option<Handle> {
    SHARED
        .with_borrow(Clone::clone)
        .or_else(|| Handle::try_current().ok())
}

/// Accepts connections on `listener` until `stopped`, serving each with `serve` (given
/// the socket, the peer's address and the shutdown signal), then waits for all of them.
pub(crate) async fn accept_loop<F, Fut>(
    listener: std::net::TcpListener,
    stopped: impl Future<Output = ()>,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let threads = Arc::new(AtomicUsize::new(0));
    let mut stopped = pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    // An answer is written in several parts (a large batch's column
                    // buffers): without this, Nagle holds the last small part back for
                    // the peer's delayed ACK.
                    let _ = tcp.set_nodelay(true);
                    let serve = serve.clone();
                    let closed = closed.clone();
                    spawn(&mut connections, &threads, tcp, move |tcp| serve(tcp, remote, closed));
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
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

/// Gives `tcp` a connection thread while fewer than [`CONNECTION_THREADS`] are taken,
/// else a task on the shared runtime.
fn spawn<F, Fut>(set: &mut JoinSet<()>, threads: &Arc<AtomicUsize>, tcp: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if threads.fetch_add(1, Ordering::AcqRel) < CONNECTION_THREADS {
        // Off this runtime's reactor, onto the connection thread's.
        match tcp.into_std() {
            Ok(std) => {
                let shared = Handle::current();
                let threads = Arc::clone(threads);
                set.spawn_blocking(move || {
                    on_thread(shared, std, serve);
                    threads.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(e) => {
                threads.fetch_sub(1, Ordering::AcqRel);
                tracing::debug!(error = %e, "cannot move an HTTP connection to its thread");
            }
        }
        return;
    }
    threads.fetch_sub(1, Ordering::AcqRel);
    set.spawn(serve(tcp));
}

/// Drives one connection on this thread's current-thread runtime, running the engine
/// work it posts ([`offload`]) between polls, outside the runtime.
fn on_thread<F, Fut>(shared: Handle, std: std::net::TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: Future<Output = ()>,
{
    RUNTIME.with_borrow_mut(|slot| {
        if slot.is_none() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => *slot = Some(runtime),
                Err(e) => tracing::warn!(error = %e, "cannot start an HTTP connection runtime"),
            }
        }
        let Some(runtime) = slot.as_ref() else {
            return;
        };
        let tcp = {
            let _context = runtime.enter();
            match TcpStream::from_std(std) {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot register an HTTP connection");
                    return;
                }
            }
        };
        SHARED.set(Some(shared.clone()));
        INLINE.set(true);
        let mut connection = pin!(serve(tcp));
        loop {
            let finished = runtime.block_on(std::future::poll_fn(|cx| {
                if connection.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                if JOB.with_borrow(Option::is_some) {
                    return Poll::Ready(false);
                }
                Poll::Pending
            }));
            if let Some(job) = JOB.take() {
                // As on the blocking pool: no runtime driving this thread, the shared
                // one entered.
                let _context = shared.enter();
                job();
            }
            if finished {
                break;
            }
        }
        INLINE.set(false);
        SHARED.set(None);
    });
}

/// Serves the requests of one connection (plain or TLS) with `routes` until the client
/// leaves or the server stops; every request gets the peer address as `ConnectInfo`
/// and `extension`. `timer` turns on hyper's header-read timeout.
pub(crate) async fn http1<I, X>(
    io: I,
    remote: SocketAddr,
    routes: super::Routes,
    extension: Option<X>,
    timer: bool,
    mut closed: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    X: Clone + Send + Sync + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(remote));
        if let Some(extension) = &extension {
            request.extensions_mut().insert(extension.clone());
        }
        let answer = routes.clone().answer(request);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    if timer {
        http.timer(TokioTimer::new());
    }
    let mut conn = pin!(http.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "HTTP connection ended with an error");
            }
            return;
        }
        _ = closed.wait_for(|closing| *closing) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

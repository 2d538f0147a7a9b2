//! `authenticate_layer` as axum middleware on an application's own router: a route of
//! the application and the nested RPC routes share one authentication, a refusal is the
//! standard 401, and the RPC handler sees the layer's `AuthContext`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use vgi_rpc::Server;
use vgi_rpc::client::{Client, ConnectOptions, HttpConnectOptions};
use vgi_rpc::prelude::*;
use vgi_rpc::server::AuthContext;
use vgi_rpc::transport::http::auth::StaticBearer;
use vgi_rpc::transport::http::{AuthLayerState, HttpOptions, authenticate_layer, router};

#[vgi_rpc::service(protocol = "Who")]
pub trait Who: Send + Sync + 'static {
    /// The caller's principal.
    fn who(&self, ctx: &CallContext) -> Result<String>;
}

struct WhoImpl;

impl Who for WhoImpl {
    fn who(&self, ctx: &CallContext) -> Result<String> {
        Ok(ctx.auth().principal_or_empty().to_owned())
    }
}

async fn me(axum::Extension(auth): axum::Extension<AuthContext>) -> String {
    format!("me: {}", auth.principal_or_empty())
}

/// Serves `/me` and the RPC routes under `/rpc`, behind one bearer table.
fn serve() -> SocketAddr {
    let server = Server::builder()
        .service(WhoServer::new(WhoImpl))
        .build()
        .unwrap();
    let rpc = router(&server, &HttpOptions::default().prefix("/rpc")).unwrap();
    let tokens = StaticBearer::new([("t0k3n", AuthContext::authenticated("bearer", "alice"))]);
    let state = AuthLayerState::new(tokens, Some("Bearer realm=\"test\""));
    let app = axum::Router::new()
        .route("/me", axum::routing::get(me))
        .merge(rpc)
        .layer(axum::middleware::from_fn_with_state(
            state,
            authenticate_layer,
        ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    addr
}

fn get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

#[test]
fn one_layer_guards_the_application_route_and_the_rpc_routes() {
    let addr = serve();
    let (status, text) = get(addr, "/me", None);
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("vgi-auth-reason: missing_credential"),
        "{text}"
    );
    assert!(text.contains("Bearer realm=\"test\""), "{text}");
    let (status, text) = get(addr, "/me", Some("wrong"));
    assert_eq!(status, 401, "{text}");
    let (status, text) = get(addr, "/me", Some("t0k3n"));
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("me: alice"), "{text}");

    let url = format!("http://{addr}/rpc").parse().unwrap();
    let http = HttpConnectOptions::default().with_bearer("t0k3n");
    let client = Client::connect_with(&url, ConnectOptions::default().with_http(http)).unwrap();
    assert_eq!(WhoClient::from_client(client).who().unwrap(), "alice");
    let anonymous = Client::connect(&format!("http://{addr}/rpc")).unwrap();
    let err = WhoClient::from_client(anonymous).who().unwrap_err();
    assert_eq!(
        err.as_rpc().unwrap().kind.as_deref(),
        Some("missing_credential"),
        "{err:?}"
    );
}

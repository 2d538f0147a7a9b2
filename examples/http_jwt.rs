//! An HTTP service behind JWT authentication: the handler reads who is calling from its
//! `CallContext`, and the typed client calls it with a bearer token.
//!
//! ```text
//! cargo run --example http_jwt
//! ```
//!
//! The server trusts tokens from one issuer for one audience, signed with an HMAC secret
//! (a real deployment points `Jwt::with_jwks_uri` at its identity provider's JWKS
//! instead). Requests without a valid token are refused with 401 before any handler
//! runs; `/health` stays open for load balancers.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;
use vgi_rpc::client::{Client, ConnectOptions, HttpConnectOptions};
use vgi_rpc::prelude::*;
use vgi_rpc::transport::Shutdown;
use vgi_rpc::transport::http::auth::Jwt;
use vgi_rpc::transport::http::{HttpOptions, serve};

const ISSUER: &str = "https://login.example.com";
const AUDIENCE: &str = "notes-service";
const SECRET: &[u8] = b"an example secret; use your identity provider's JWKS";

/// A service that greets its caller by the principal the token named.
#[vgi_rpc::service(protocol = "Notes")]
pub trait Notes: Send + Sync + 'static {
    /// Who the server thinks is calling.
    fn whoami(&self, ctx: &CallContext) -> Result<String>;
}

struct NotesImpl;

impl Notes for NotesImpl {
    fn whoami(&self, ctx: &CallContext) -> Result<String> {
        let auth = ctx.auth();
        let scope = auth
            .claims
            .get("scope")
            .and_then(|s| s.as_str())
            .unwrap_or("");
        Ok(format!(
            "hello {} (via {}, scope {scope:?})",
            auth.principal_or_empty(),
            auth.domain_or_empty()
        ))
    }
}

fn token_for(user: &str) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = json!({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "scope": "notes:read"});
    let key =
        EncodingKey::from_secret(SECRET).map_err(|e| vgi_rpc::Error::Config(e.to_string()))?;
    encode(&Header::default(), &claims, &key).map_err(|e| vgi_rpc::Error::Config(e.to_string()))
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // The server: the Notes service behind a JWT check, on a free local port.
    let server = vgi_rpc::Server::builder()
        .service(NotesServer::new(NotesImpl))
        .build()?;
    let options = HttpOptions::default().authenticate(Jwt::with_secret(ISSUER, AUDIENCE, SECRET)?);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = Shutdown::new()?;
    let stop = shutdown.clone();
    let serving = std::thread::spawn(move || serve(&server, &options, listener, &stop));

    // The client: the generated typed client, sending the token with every request.
    let http = HttpConnectOptions::default().with_bearer(token_for("alice")?);
    let client = Client::connect_with(&url.parse()?, ConnectOptions::default().with_http(http))?;
    println!("{}", NotesClient::from_client(client).whoami()?);

    // Without a token the call never reaches the handler.
    let mut anonymous = NotesClient::from_client(Client::connect(&url)?);
    match anonymous.whoami() {
        Ok(answer) => println!("unexpectedly served: {answer}"),
        Err(e) => println!("without a token: {e}"),
    }

    shutdown.trigger();
    serving.join().map_err(|_| "the server thread panicked")??;
    Ok(())
}

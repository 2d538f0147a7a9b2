//! The caller's side of `vgi_rpc.Identity.v2`: a typed client generated from the same
//! signatures the hosted protocol publishes (its protocol hash is the one the hand-built
//! server side must match, which a test checks).
//!
//! ```no_run
//! use vgi_rpc::client::{Client, ConnectOptions, HttpConnectOptions};
//! use vgi_rpc::identity::IdentityProtocolClient;
//! # fn main() -> vgi_rpc::Result<()> {
//! let http = HttpConnectOptions::default().with_bearer("an-introspector-token");
//! let client = Client::connect_with(
//!     &"http://127.0.0.1:8000".parse()?,
//!     ConnectOptions::default().with_http(http),
//! )?;
//! let who = IdentityProtocolClient::from_client(client).introspect_token("opaque-credential".into())?;
//! println!("{} (cache {} s)", who.principal, who.ttl_seconds);
//! # Ok(()) }
//! ```

use super::{IssuedGrant, TokenIdentity};
use crate::Result;

/// `vgi_rpc.Identity.v2` as a client sees it.
#[crate::service(protocol = "vgi_rpc.Identity.v2")]
pub trait IdentityProtocol: Send + Sync + 'static {
    /// Resolves an opaque credential to the identity it authenticates as (allowlisted
    /// callers only).
    fn introspect_token(&self, token: String) -> Result<TokenIdentity>;
    /// Mints a grant for the caller, who must have authenticated recently.
    fn issue_grant(
        &self,
        purpose: String,
        scopes: Vec<String>,
        ttl_seconds: i64,
    ) -> Result<IssuedGrant>;
}

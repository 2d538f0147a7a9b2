//! `vgi_rpc.Identity.v2`: credential introspection and grant issuance, hosted beside the
//! application's protocols the way reflection is.
//!
//! The framework owns the guards and the deployment owns the policy. Guards are the same
//! in every deployment and catastrophic to get wrong (who may introspect, which
//! credentials a resolver may see, how fresh a login must be to mint), so they live here,
//! in a fixed order the cross-port contract pins (`IDENTITY_V2_SPEC.md` §4). Policy —
//! what a credential means, what a grant is — differs everywhere, so it arrives as two
//! hooks: [`ResolveToken`] and [`MintGrant`].
//!
//! A method whose hook is not configured is not hosted at all, and the protocol hash
//! narrows with it; with neither hook, the protocol is absent. Sealed grants
//! ([`grant`], `vgig1.` tokens) let the framework mint and accept its own grants without
//! author code. The guards read [`AuthContext`](crate::server::AuthContext): on
//! transports that do not authenticate every call fails closed.

mod client;
mod config;
mod errors;
#[cfg(feature = "grants")]
pub mod grant;
mod guards;
mod records;
mod service;

pub use client::{IdentityProtocol, IdentityProtocolClient};
pub use config::{Identity, IdentityBuilder, MintGrant, ResolveToken};
pub use errors::{AuthUnavailable, IdentityFailure};
pub use guards::{MAX_TOKEN_BYTES, is_resolvable_shape, token_digest};
pub use records::{IssuedGrant, TokenIdentity};

/// The protocol's wire name.
pub const PROTOCOL: &str = "vgi_rpc.Identity.v2";
/// `introspect_token(token) -> TokenIdentity`.
pub const INTROSPECT_TOKEN: &str = "introspect_token";
/// `issue_grant(purpose, scopes, ttl_seconds) -> IssuedGrant`.
pub const ISSUE_GRANT: &str = "issue_grant";
/// The default ceiling on the age of the login that may mint a grant.
pub const DEFAULT_MAX_AUTH_AGE: std::time::Duration = std::time::Duration::from_secs(900);

pub(crate) use service::IdentityService;

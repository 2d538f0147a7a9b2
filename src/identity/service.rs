//! The hosted protocol: a hand-written [`Service`] whose method set is the configured
//! hooks, so an unconfigured method is absent (and the protocol hash narrows) rather
//! than hosted-and-refusing. The per-method refusals stay as the belt to those braces.

use std::sync::Arc;

use arrow_array::RecordBatch;

use super::errors::{from_hook, grant_refused, introspection_refused, token_unresolved};
use super::guards::{check_freshness, check_introspector, check_resolvable};
use super::{INTROSPECT_TOKEN, ISSUE_GRANT, Identity, IdentityFailure, IssuedGrant, PROTOCOL};
use crate::schema::ArrowRecord;
use crate::schema::reflection::result_schema;
use crate::server::reflection::{binary_result, record_ipc};
use crate::server::{CallContext, MethodKind, MethodSpec, ProtocolSpec, Response, Service};
use crate::{Result, RpcError};

#[derive(crate::ArrowRecord)]
struct IntrospectArgs {
    token: String,
}

#[derive(crate::ArrowRecord)]
struct IssueArgs {
    purpose: String,
    scopes: Vec<String>,
    ttl_seconds: i64,
}

/// `vgi_rpc.Identity.v2` for one deployment's [`Identity`].
pub(crate) struct IdentityService {
    identity: Identity,
    spec: Arc<ProtocolSpec>,
}

impl IdentityService {
    /// The service, or `None` when no method would be hosted.
    pub(crate) fn new(identity: Identity) -> Option<Self> {
        let mut methods = Vec::new();
        if identity.offers_introspect() {
            methods.push(method(
                INTROSPECT_TOKEN,
                "Resolve an opaque credential to the identity it authenticates as \
                 (allowlisted callers only).",
                IntrospectArgs::schema(),
            ));
        }
        if identity.offers_mint() {
            methods.push(method(
                ISSUE_GRANT,
                "Mint a grant for the caller, who must have authenticated recently.",
                IssueArgs::schema(),
            ));
        }
        if methods.is_empty() {
            return None;
        }
        let spec = ProtocolSpec {
            name: PROTOCOL.to_owned(),
            version: None,
            doc: "Credential introspection and grant issuance.".to_owned(),
            methods,
        };
        Some(IdentityService {
            identity,
            spec: Arc::new(spec),
        })
    }

    fn introspect(&self, args: &RecordBatch, ctx: &CallContext) -> Result<Response> {
        let Some(resolver) = &self.identity.resolver else {
            return Err(introspection_refused("this worker does not resolve credentials").into());
        };
        // Authorization first: an unauthorized caller learns nothing about the credential.
        check_introspector(ctx.auth(), &self.identity.introspectors)?;
        let IntrospectArgs { token } = IntrospectArgs::from_batch(args, 0)?;
        check_resolvable(&token)?;
        match resolver.resolve_token(&token) {
            Ok(Some(identity)) => binary_result(&record_ipc(identity)?),
            // Uniform with malformed and over-long: which one would confirm a guess.
            Ok(None) | Err(IdentityFailure::Refused(_)) => Err(token_unresolved().into()),
            Err(failure) => Err(from_hook(failure).into()),
        }
    }

    fn issue(&self, args: &RecordBatch, ctx: &CallContext) -> Result<Response> {
        if !self.identity.offers_mint() {
            return Err(grant_refused("this worker does not mint grants").into());
        }
        check_freshness(ctx.auth(), self.identity.max_auth_age)?;
        let IssueArgs {
            purpose,
            scopes,
            ttl_seconds,
        } = IssueArgs::from_batch(args, 0)?;
        // The subject is the caller, never a parameter.
        let principal = ctx.auth().principal_or_empty();
        let minted = self.mint(principal, &purpose, &scopes, ttl_seconds);
        match minted {
            Ok(grant) => binary_result(&record_ipc(grant)?),
            Err(failure) => Err(from_hook(failure).into()),
        }
    }

    fn mint(
        &self,
        principal: &str,
        purpose: &str,
        scopes: &[String],
        ttl_seconds: i64,
    ) -> std::result::Result<IssuedGrant, IdentityFailure> {
        if let Some(minter) = &self.identity.minter {
            return minter.mint_grant(principal, purpose, scopes, ttl_seconds);
        }
        #[cfg(feature = "grants")]
        if let Some(keys) = &self.identity.grant_keys {
            return super::grant::mint(keys, principal, purpose, scopes, ttl_seconds);
        }
        Err(IdentityFailure::Refused(
            "this worker does not mint grants".into(),
        ))
    }
}

fn method(name: &str, doc: &str, params: arrow_schema::SchemaRef) -> MethodSpec {
    let defaults = vec![None; params.fields().len()];
    MethodSpec {
        name: name.to_owned(),
        doc: doc.to_owned(),
        kind: MethodKind::Unary,
        params,
        defaults,
        result: Some(result_schema()),
        header: None,
    }
}

impl Service for IdentityService {
    fn spec(&self) -> &Arc<ProtocolSpec> {
        &self.spec
    }

    fn call(&self, method: usize, args: &RecordBatch, ctx: &CallContext) -> Result<Response> {
        match self.spec.methods.get(method).map(|m| m.name.as_str()) {
            Some(INTROSPECT_TOKEN) => self.introspect(args, ctx),
            Some(ISSUE_GRANT) => self.issue(args, ctx),
            _ => Err(RpcError::value_error(format!("{PROTOCOL} has no method #{method}")).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TokenIdentity;
    use crate::server::protocol_hash;

    fn resolve(_: &str) -> std::result::Result<Option<TokenIdentity>, IdentityFailure> {
        Ok(None)
    }

    fn mint(
        _: &str,
        _: &str,
        _: &[String],
        _: i64,
    ) -> std::result::Result<IssuedGrant, IdentityFailure> {
        Err(IdentityFailure::Refused("no".into()))
    }

    fn hash(identity: Identity) -> Option<String> {
        IdentityService::new(identity).map(|s| protocol_hash(s.spec()))
    }

    #[test]
    fn the_three_hash_vectors_and_narrowing() {
        let both = Identity::builder()
            .resolve_token(resolve)
            .introspectors(["ops"])
            .mint_grant(mint);
        assert_eq!(
            hash(both.build().unwrap()).as_deref(),
            Some("145267755ff90d5c3313d79c7ff771306f2530626380d01cb0e57a951d0f9ec3")
        );
        let introspect = Identity::builder()
            .resolve_token(resolve)
            .introspectors(["ops"]);
        assert_eq!(
            hash(introspect.build().unwrap()).as_deref(),
            Some("4039fbf6db3e64ae234e0be605b977477150ace892f10b6c691920eaf925e7ac")
        );
        let grant = Identity::builder().mint_grant(mint);
        assert_eq!(
            hash(grant.build().unwrap()).as_deref(),
            Some("4199df7403c9ca1a02c4c524b405a999eb1489614a1480873ffc23a0e5b0d312")
        );
        assert_eq!(
            hash(Identity::builder().build().unwrap()),
            None,
            "no hooks: not hosted"
        );
    }

    #[test]
    fn a_resolver_needs_an_allowlist() {
        assert!(Identity::builder().resolve_token(resolve).build().is_err());
        assert!(
            Identity::builder()
                .resolve_token(resolve)
                .introspectors([""])
                .build()
                .is_err()
        );
    }
}

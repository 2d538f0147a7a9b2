//! Composition: alternatives tried in order ([`Chain`]), and the identity bearers the
//! server appends after a deployment's own authenticator ([`compose_identity`]).

use std::sync::Arc;

use super::bearer::{AnonymousWithoutCredentials, GrantBearer, ResolveTokenBearer};
use super::{AuthContext, AuthError, AuthReason, AuthRequest, Authenticate};
use crate::identity::Identity;
use crate::{Error, Result};

/// Alternatives, OR-ed: the first member that answers an identity wins; a
/// [`AuthError::Rejected`] moves on; [`AuthError::Denied`] and
/// [`AuthError::Unavailable`] end the chain at once.
///
/// When every member rejects, the 401's reason is `missing_credential` only if every
/// member agreed nothing was presented (the one case where "send a credential" is
/// actionable); otherwise the first other reason.
#[derive(Clone)]
pub struct Chain {
    members: Vec<Arc<dyn Authenticate>>,
}

impl Chain {
    /// A chain of `members`, tried in order.
    pub fn new(members: Vec<Arc<dyn Authenticate>>) -> Self {
        Chain { members }
    }

    /// Appends a member.
    #[must_use]
    pub fn or(mut self, member: impl Authenticate) -> Self {
        self.members.push(Arc::new(member));
        self
    }
}

impl Authenticate for Chain {
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> std::result::Result<AuthContext, AuthError> {
        let mut reasons = Vec::with_capacity(self.members.len());
        let mut details = Vec::with_capacity(self.members.len());
        for member in &self.members {
            match member.authenticate(request) {
                Err(AuthError::Rejected { reason, detail }) => {
                    reasons.push(reason);
                    details.push(detail);
                }
                answer => return answer,
            }
        }
        let reason =
            if reasons.iter().all(|r| *r == AuthReason::MissingCredential) && !reasons.is_empty() {
                AuthReason::MissingCredential
            } else {
                reasons
                    .into_iter()
                    .find(|r| *r != AuthReason::MissingCredential)
                    .unwrap_or(AuthReason::Unauthorized)
            };
        Err(AuthError::rejected(
            reason,
            format!(
                "no authenticator accepted the request ({})",
                details.join("; ")
            ),
        ))
    }

    fn proxy_headers(&self) -> Vec<String> {
        let mut headers: Vec<String> = self
            .members
            .iter()
            .flat_map(|m| m.proxy_headers())
            .collect();
        headers.dedup();
        headers
    }
}

/// The authenticator a server hosting `identity` runs: the deployment's own `user`
/// authenticator, then sealed grants (when keys are configured), then the resolve hook
/// (when configured). With neither identity source, `user` unchanged. Without `user`, a
/// request carrying no `Authorization` header stays anonymous, and one carrying a
/// credential nothing accepts is a 401.
///
/// # Errors
/// `user` depends on proxy-added evidence: OR-ing bearers beside it would bypass that
/// requirement, so compose the chain yourself behind the gate instead.
pub fn compose_identity(
    user: Option<Arc<dyn Authenticate>>,
    identity: Option<&Identity>,
) -> Result<Option<Arc<dyn Authenticate>>> {
    let mut members: Vec<Arc<dyn Authenticate>> = Vec::new();
    if let Some(identity) = identity {
        if let Some(keys) = identity.grant_keys() {
            members.push(Arc::new(GrantBearer::new(keys.clone())));
        }
        if let Some(resolver) = identity.resolver() {
            members.push(Arc::new(ResolveTokenBearer::new(Arc::clone(resolver))));
        }
    }
    if members.is_empty() {
        return Ok(user);
    }
    match user {
        None => {
            members.push(Arc::new(AnonymousWithoutCredentials));
            Ok(Some(Arc::new(Chain::new(members))))
        }
        Some(user) if !user.proxy_headers().is_empty() => Err(Error::Config(
            "this server's authenticator depends on proxy-added evidence; accepting sealed \
             grants or resolve_token bearers beside it would bypass that requirement. Chain \
             them behind the gate yourself and host no identity bearers automatically"
                .into(),
        )),
        Some(user) => {
            members.insert(0, user);
            Ok(Some(Arc::new(Chain::new(members))))
        }
    }
}

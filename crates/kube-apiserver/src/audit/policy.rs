//! The audit policy (`--audit-policy-file`, audit.k8s.io/v1 `Policy`): the first rule
//! that matches a request sets its level and omitted stages.

use std::path::Path;

use serde::Deserialize;

use crate::{authn::UserInfo, authz::RequestInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub level: Level,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    #[serde(default)]
    pub omit_managed_fields: bool,
}

/// What the policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading the audit policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("decoding the audit policy: {0}")]
    Decode(String),
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let p: Policy =
            serde_norway::from_str(text).map_err(|e| PolicyError::Decode(e.to_string()))?;
        if p.kind != "Policy"
            || !matches!(
                p.api_version.as_str(),
                "audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1"
            )
        {
            return Err(PolicyError::Decode(format!(
                "unexpected kind {:?} / apiVersion {:?} (want Policy, audit.k8s.io/v1)",
                p.kind, p.api_version
            )));
        }
        if p.rules.is_empty() {
            tracing::warn!("the audit policy has no rules: nothing will be audited");
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The first matching rule's level (None when no rule matches).
    pub fn decide(&self, user: &UserInfo, req: &RequestInfo) -> Decision {
        for rule in &self.rules {
            if rule.matches(user, req) {
                let mut omit = self.omit_stages.clone();
                omit.extend(rule.omit_stages.iter().copied());
                return Decision {
                    level: rule.level,
                    omit_stages: omit,
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: Vec::new(),
            omit_managed_fields: false,
        }
    }
}

impl Rule {
    /// Upstream `ruleMatches`.
    fn matches(&self, user: &UserInfo, req: &RequestInfo) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.name) {
            return false;
        }
        if !self.user_groups.is_empty() && !user.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&req.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(req);
        }
        if !self.non_resource_urls.is_empty() {
            return self.matches_non_resource(req);
        }
        true
    }

    fn matches_non_resource(&self, req: &RequestInfo) -> bool {
        if req.is_resource_request {
            return false;
        }
        self.non_resource_urls
            .iter()
            .any(|spec| match spec.strip_suffix('*') {
                Some(prefix) => req.path.starts_with(prefix),
                None => *spec == req.path,
            })
    }

    fn matches_resource(&self, req: &RequestInfo) -> bool {
        if !req.is_resource_request {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&req.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if req.subresource.is_empty() {
            req.resource.clone()
        } else {
            format!("{}/{}", req.resource, req.subresource)
        };
        let sub_wildcard = format!("*/{}", req.subresource);
        let res_wildcard = format!("{}/*", req.resource);
        for gr in &self.resources {
            if gr.group != req.api_group {
                continue;
            }
            if gr.resources.is_empty() {
                return true;
            }
            for res in &gr.resources {
                let hit = *res == combined
                    || res == "*"
                    || (!req.subresource.is_empty()
                        && (*res == sub_wildcard || *res == res_wildcard))
                    || (req.subresource.is_empty() && *res == req.resource);
                if hit && (gr.resource_names.is_empty() || gr.resource_names.contains(&req.name)) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, group: &str, resource: &str, ns: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            is_resource_request: !resource.is_empty(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: String::new(),
            path: "/healthz".into(),
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
             - level: None\n  nonResourceURLs: [\"/healthz*\"]\n\
             - level: RequestResponse\n  resources:\n  - group: \"\"\n    resources: [configmaps]\n\
             - level: None\n  users: [bob]\n\
             - level: Metadata\n",
        )
        .expect("policy");
        let admin = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec![],
        };
        let bob = UserInfo {
            name: "bob".into(),
            uid: String::new(),
            groups: vec![],
        };
        assert_eq!(p.decide(&admin, &req("get", "", "", "")).level, Level::None);
        let d = p.decide(&admin, &req("create", "", "configmaps", "default"));
        assert_eq!(d.level, Level::RequestResponse);
        assert_eq!(d.omit_stages, vec![Stage::RequestReceived]);
        assert_eq!(
            p.decide(&bob, &req("get", "", "pods", "default")).level,
            Level::None
        );
        assert_eq!(
            p.decide(&admin, &req("get", "apps", "deployments", "default"))
                .level,
            Level::Metadata
        );
        assert!(Policy::parse("kind: Nope\n").is_err());
    }
}

//! RBAC policy rules and their matching, as upstream's `rbac/v1` helpers
//! (`VerbMatches`, `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`,
//! `NonResourceURLMatches`) and the escalation comparator
//! (`registry/rbac/validation/policy_comparator.go`: `Covers`, `BreakdownRule`).

use serde_json::{json, Value};

use crate::authz::RequestInfo;

pub const ALL: &str = "*";

/// One `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

impl PolicyRule {
    pub fn from_json(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v.get("verbs")),
            api_groups: strings(v.get("apiGroups")),
            resources: strings(v.get("resources")),
            resource_names: strings(v.get("resourceNames")),
            non_resource_urls: strings(v.get("nonResourceURLs")),
        }
    }

    /// The rules of a Role/ClusterRole object.
    pub fn list_from(role: &Value) -> Vec<PolicyRule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        if !self.api_groups.is_empty() {
            m.insert("apiGroups".into(), json!(self.api_groups));
        }
        if !self.resources.is_empty() {
            m.insert("resources".into(), json!(self.resources));
        }
        if !self.resource_names.is_empty() {
            m.insert("resourceNames".into(), json!(self.resource_names));
        }
        if !self.non_resource_urls.is_empty() {
            m.insert("nonResourceURLs".into(), json!(self.non_resource_urls));
        }
        Value::Object(m)
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == ALL || v == verb)
    }

    fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == ALL || g == group)
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || has(&self.resource_names, name)
    }

    fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == ALL || u == path || (u.ends_with('*') && path.starts_with(&u[..u.len() - 1]))
        })
    }

    /// Whether this rule allows the request (upstream `RuleAllows`).
    pub fn allows(&self, req: &RequestInfo) -> bool {
        if req.is_resource_request {
            let combined = if req.subresource.is_empty() {
                req.resource.clone()
            } else {
                format!("{}/{}", req.resource, req.subresource)
            };
            self.verb_matches(&req.verb)
                && self.group_matches(&req.api_group)
                && self.resource_matches(&combined, &req.subresource)
                && self.name_matches(&req.name)
        } else {
            self.verb_matches(&req.verb) && self.url_matches(&req.path)
        }
    }

    /// Upstream's `BreakdownRule`: one rule per (group, resource, verb[, name]) or
    /// (url, verb).
    fn breakdown(&self) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let base = PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        ..Default::default()
                    };
                    if self.resource_names.is_empty() {
                        out.push(base);
                    } else {
                        for name in &self.resource_names {
                            out.push(PolicyRule {
                                resource_names: vec![name.clone()],
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(PolicyRule {
                    verbs: vec![verb.clone()],
                    non_resource_urls: vec![url.clone()],
                    ..Default::default()
                });
            }
        }
        out
    }

    /// Upstream `ruleCovers`: this (owner) rule grants everything `sub` grants.
    fn covers(&self, sub: &PolicyRule) -> bool {
        let verbs = has(&self.verbs, ALL) || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, ALL) || has_all(&self.api_groups, &sub.api_groups);
        let resources = resources_cover_all(&self.resources, &sub.resources);
        let urls = sub
            .non_resource_urls
            .iter()
            .all(|u| url_covers(&self.non_resource_urls, u));
        let names = self.resource_names.is_empty()
            || (!sub.resource_names.is_empty()
                && has_all(&self.resource_names, &sub.resource_names));
        verbs && groups && resources && names && urls
    }

    /// Upstream's `%v` of a rule in escalation messages:
    /// `{APIGroups:[""], Resources:["pods"], Verbs:["create"]}`.
    pub fn compact_string(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:[{}]", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:[{}]", list(&self.resources)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:[{}]", list(&self.resource_names)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!(
                "NonResourceURLs:[{}]",
                list(&self.non_resource_urls)
            ));
        }
        parts.push(format!("Verbs:[{}]", list(&self.verbs)));
        format!("{{{}}}", parts.join(", "))
    }
}

fn resources_cover_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn url_covers(owner: &[String], url: &str) -> bool {
    owner
        .iter()
        .any(|o| o == ALL || o == url || (o.ends_with('*') && url.starts_with(&o[..o.len() - 1])))
}

/// Upstream `Covers`: the rules in `wanted` not granted by `owner` (empty: covered).
pub fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing = Vec::new();
    for rule in wanted {
        for atom in rule.breakdown() {
            if !owner.iter().any(|o| o.covers(&atom)) {
                missing.push(atom);
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> PolicyRule {
        PolicyRule::from_json(&v)
    }

    fn resource_req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            is_resource_request: true,
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "default".into(),
            name: name.into(),
            path: String::new(),
        }
    }

    fn url_req(verb: &str, path: &str) -> RequestInfo {
        RequestInfo {
            is_resource_request: false,
            path: path.into(),
            ..resource_req(verb, "", "", "", "")
        }
    }

    #[test]
    fn resource_matching_with_wildcards_and_subresources() {
        let r = rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}),
        );
        assert!(r.allows(&resource_req("get", "", "pods", "", "x")));
        assert!(r.allows(&resource_req("get", "", "pods", "log", "x")));
        assert!(!r.allows(&resource_req("get", "", "pods", "exec", "x")));
        assert!(!r.allows(&resource_req("create", "", "pods", "", "")));
        assert!(!r.allows(&resource_req("get", "apps", "pods", "", "")));
        let star_sub = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]}));
        assert!(star_sub.allows(&resource_req(
            "update",
            "apps",
            "deployments",
            "status",
            "d"
        )));
        assert!(!star_sub.allows(&resource_req("update", "apps", "deployments", "", "d")));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(named.allows(&resource_req("get", "", "configmaps", "", "a")));
        assert!(!named.allows(&resource_req("get", "", "configmaps", "", "b")));
        assert!(!named.allows(&resource_req("get", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls() {
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(r.allows(&url_req("get", "/healthz")));
        assert!(r.allows(&url_req("get", "/apis/apps/v1")));
        assert!(!r.allows(&url_req("get", "/healthz/etcd")));
        assert!(!r.allows(&url_req("post", "/healthz")));
        // A resource rule never allows a path.
        let res = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(!res.allows(&url_req("get", "/healthz")));
    }

    #[test]
    fn coverage_for_escalation() {
        let owner = vec![rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
        )];
        assert!(uncovered(&owner, &[rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "services/status"]}))]).is_empty());
        let missing = uncovered(
            &owner,
            &[rule(
                json!({"verbs": ["get", "create"], "apiGroups": [""], "resources": ["pods"]}),
            )],
        );
        assert_eq!(missing.len(), 1);
        assert_eq!(
            missing[0].compact_string(),
            "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"create\"]}"
        );
        // Names: an owner restricted to names does not cover the unrestricted rule.
        let named = vec![rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}),
        )];
        assert!(!uncovered(
            &named,
            &[rule(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]})
            )]
        )
        .is_empty());
        assert!(uncovered(&named, &[rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}))]).is_empty());
        let admin = vec![
            rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})),
            rule(json!({"verbs": ["*"], "nonResourceURLs": ["*"]})),
        ];
        assert!(uncovered(
            &admin,
            &[rule(
                json!({"verbs": ["get"], "nonResourceURLs": ["/metrics"]})
            )]
        )
        .is_empty());
    }
}

//! The RBAC authorizer (upstream `plugin/pkg/auth/authorizer/rbac`): the rules of every
//! Role/ClusterRole bound to the user (through ClusterRoleBindings, and RoleBindings of
//! the request's namespace) are visited until one allows the request. Roles and
//! bindings are read from the watch cache, never from etcd per request. ClusterRoles
//! with an `aggregationRule` also carry the rules of every ClusterRole their selectors
//! match, resolved here so a new aggregated role takes effect at once.

pub mod rules;

use std::{collections::HashSet, sync::Arc};

use api_types::{meta, selectors::LabelSelector};
use serde_json::Value;

use crate::{
    authn::{UserInfo, SYSTEM_PRIVILEGED_GROUP},
    cache::WatchCache,
};

use super::RequestInfo;
pub use rules::PolicyRule;

/// The prefix of service-account user names.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Where roles and bindings come from: the watch cache in the server, a fake in tests.
pub trait RbacSource: Send + Sync {
    fn role(&self, namespace: &str, name: &str) -> Option<Value>;
    fn cluster_role(&self, name: &str) -> Option<Value>;
    fn role_bindings(&self, namespace: &str) -> Vec<Value>;
    fn cluster_role_bindings(&self) -> Vec<Value>;
    fn cluster_roles(&self) -> Vec<Value>;
}

/// [`RbacSource`] over the watch cache.
pub struct CacheSource(pub Arc<WatchCache>);

impl CacheSource {
    fn list(&self, plural: &str, prefix_ns: Option<&str>) -> Vec<Value> {
        let Some(info) = api_types::registry::lookup("rbac.authorization.k8s.io", "v1", plural)
        else {
            return Vec::new();
        };
        self.0
            .resource(info)
            .map(|c| {
                c.list(&info.list_prefix(prefix_ns))
                    .iter()
                    .map(|o| o.selectable.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let info = api_types::registry::lookup("rbac.authorization.k8s.io", "v1", plural)?;
        self.0
            .resource(info)?
            .get(&info.key(namespace, name))
            .map(|o| o.selectable.clone())
    }
}

impl RbacSource for CacheSource {
    fn role(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get("roles", Some(namespace), name)
    }
    fn cluster_role(&self, name: &str) -> Option<Value> {
        self.get("clusterroles", None, name)
    }
    fn role_bindings(&self, namespace: &str) -> Vec<Value> {
        self.list("rolebindings", Some(namespace))
    }
    fn cluster_role_bindings(&self) -> Vec<Value> {
        self.list("clusterrolebindings", None)
    }
    fn cluster_roles(&self) -> Vec<Value> {
        self.list("clusterroles", None)
    }
}

/// Whether a binding subject names this user (upstream `appliesToUser`).
pub fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_namespace);
            !ns.is_empty() && user.name == format!("{SERVICE_ACCOUNT_PREFIX}{ns}:{name}")
        }
        _ => false,
    }
}

/// Resolves users to rules.
pub struct RuleResolver {
    source: Box<dyn RbacSource>,
}

/// Aggregation nesting deeper than this is cut off (cycles are skipped anyway).
const MAX_AGGREGATION_DEPTH: usize = 8;

impl RuleResolver {
    pub fn new(source: Box<dyn RbacSource>) -> Self {
        RuleResolver { source }
    }

    /// The rules of a ClusterRole, including aggregated ones; `Err` is the upstream
    /// "not found" message used as a denial reason.
    pub fn cluster_role_rules(&self, name: &str) -> Result<Vec<PolicyRule>, String> {
        let role = self
            .source
            .cluster_role(name)
            .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io \"{name}\" not found"))?;
        let all = self.source.cluster_roles();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        collect_aggregated(&role, &all, &mut seen, &mut out, 0);
        Ok(out)
    }

    /// The rules of a namespaced Role.
    pub fn role_rules(&self, namespace: &str, name: &str) -> Result<Vec<PolicyRule>, String> {
        self.source
            .role(namespace, name)
            .map(|r| PolicyRule::list_from(&r))
            .ok_or_else(|| format!("role.rbac.authorization.k8s.io \"{name}\" not found"))
    }

    fn role_ref_rules(
        &self,
        role_ref: Option<&Value>,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        let kind = role_ref
            .and_then(|r| r.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = role_ref
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match kind {
            "ClusterRole" => self.cluster_role_rules(name),
            "Role" if !namespace.is_empty() => self.role_rules(namespace, name),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Visits the rules that apply to `user` in `namespace` (cluster-wide ones first)
    /// until `visit` returns false. Returns resolution errors (missing roles).
    pub fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&PolicyRule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for binding in self.source.cluster_role_bindings() {
            if !binding_applies(&binding, user, "") {
                continue;
            }
            match self.role_ref_rules(binding.get("roleRef"), "") {
                Ok(rules) => {
                    for r in &rules {
                        if !visit(r) {
                            return errors;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if namespace.is_empty() {
            return errors;
        }
        for binding in self.source.role_bindings(namespace) {
            if !binding_applies(&binding, user, namespace) {
                continue;
            }
            match self.role_ref_rules(binding.get("roleRef"), namespace) {
                Ok(rules) => {
                    for r in &rules {
                        if !visit(r) {
                            return errors;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Every rule that applies to `user` in `namespace`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        self.visit_rules(user, namespace, |r| {
            out.push(r.clone());
            true
        });
        out
    }

    /// Whether RBAC allows the request; `Err(reason)` when it has no opinion.
    pub fn authorize(&self, user: &UserInfo, req: &RequestInfo) -> Result<(), String> {
        let mut allowed = false;
        let errors = self.visit_rules(user, &req.namespace, |r| {
            allowed = r.allows(req);
            !allowed
        });
        if allowed {
            Ok(())
        } else if errors.is_empty() {
            Err(String::new())
        } else {
            Err(format!("RBAC: [{}]", errors.join(", ")))
        }
    }

    /// Upstream `ConfirmNoEscalation`: `user` holds every permission in `wanted` in
    /// `namespace` (empty: cluster-wide). Members of `system:masters` always pass.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        wanted: &[PolicyRule],
    ) -> Result<(), String> {
        if user.groups.iter().any(|g| g == SYSTEM_PRIVILEGED_GROUP) {
            return Ok(());
        }
        let owned = self.rules_for(user, namespace);
        let missing = rules::uncovered(&owned, wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let groups = user
            .groups
            .iter()
            .map(|g| format!("{g:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        let list = missing
            .iter()
            .map(PolicyRule::compact_string)
            .collect::<Vec<_>>()
            .join("\n");
        Err(format!(
            "user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{list}",
            user.name
        ))
    }
}

fn binding_applies(binding: &Value, user: &UserInfo, namespace: &str) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subjects| subjects.iter().any(|s| subject_matches(s, user, namespace)))
}

/// A ClusterRole's own rules plus, through its `aggregationRule`, those of every
/// ClusterRole matching one of its selectors (recursively, each role once).
fn collect_aggregated(
    role: &Value,
    all: &[Value],
    seen: &mut HashSet<String>,
    out: &mut Vec<PolicyRule>,
    depth: usize,
) {
    let name = meta::name(role).unwrap_or("").to_string();
    if !seen.insert(name) || depth > MAX_AGGREGATION_DEPTH {
        return;
    }
    out.extend(PolicyRule::list_from(role));
    let Some(selectors) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    else {
        return;
    };
    let selectors: Vec<LabelSelector> = selectors
        .iter()
        .filter_map(|s| LabelSelector::from_label_selector_json(s).ok())
        .filter(|s| !s.is_empty())
        .collect();
    for other in all {
        let labels = meta::labels(other);
        if selectors.iter().any(|s| s.matches(&labels)) {
            collect_aggregated(other, all, seen, out, depth + 1);
        }
    }
}

/// The aggregated rules of `role` given every ClusterRole (for writing them back into
/// the stored object, as upstream's clusterrole-aggregation controller does).
pub fn aggregated_rules(role: &Value, all: &[Value]) -> Vec<PolicyRule> {
    let mut bare = role.clone();
    if let Some(o) = bare.as_object_mut() {
        o.remove("rules");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    collect_aggregated(&bare, all, &mut seen, &mut out, 0);
    let mut dedup: Vec<PolicyRule> = Vec::new();
    for r in out {
        if !dedup.contains(&r) {
            dedup.push(r);
        }
    }
    dedup
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use serde_json::json;

    /// An in-memory [`RbacSource`].
    #[derive(Default)]
    pub struct FakeSource {
        pub roles: Vec<Value>,
        pub cluster_roles: Vec<Value>,
        pub role_bindings: Vec<Value>,
        pub cluster_role_bindings: Vec<Value>,
    }

    fn named<'a>(list: &'a [Value], ns: Option<&str>, name: &str) -> Option<&'a Value> {
        list.iter()
            .find(|v| meta::name(v) == Some(name) && (ns.is_none() || meta::namespace(v) == ns))
    }

    impl RbacSource for FakeSource {
        fn role(&self, namespace: &str, name: &str) -> Option<Value> {
            named(&self.roles, Some(namespace), name).cloned()
        }
        fn cluster_role(&self, name: &str) -> Option<Value> {
            named(&self.cluster_roles, None, name).cloned()
        }
        fn role_bindings(&self, namespace: &str) -> Vec<Value> {
            self.role_bindings
                .iter()
                .filter(|b| meta::namespace(b) == Some(namespace))
                .cloned()
                .collect()
        }
        fn cluster_role_bindings(&self) -> Vec<Value> {
            self.cluster_role_bindings.clone()
        }
        fn cluster_roles(&self) -> Vec<Value> {
            self.cluster_roles.clone()
        }
    }

    pub fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    pub fn req(verb: &str, group: &str, resource: &str, ns: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            is_resource_request: true,
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: String::new(),
            path: String::new(),
        }
    }

    fn source() -> FakeSource {
        FakeSource {
            roles: vec![
                json!({"metadata": {"name": "pod-reader", "namespace": "dev"}, "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
            ],
            cluster_roles: vec![
                json!({"metadata": {"name": "view"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-view": "true"}}]}, "rules": []}),
                json!({"metadata": {"name": "view-pods", "labels": {"agg-view": "true"}}, "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
                json!({"metadata": {"name": "edit", "labels": {}}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-edit": "true"}}]}}),
                json!({"metadata": {"name": "view2", "labels": {"agg-edit": "true"}}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-view": "true"}}]}}),
                json!({"metadata": {"name": "nodes-reader"}, "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["nodes"]}]}),
            ],
            role_bindings: vec![
                json!({"metadata": {"name": "b1", "namespace": "dev"}, "roleRef": {"kind": "Role", "name": "pod-reader"}, "subjects": [{"kind": "User", "name": "alice"}]}),
                json!({"metadata": {"name": "b2", "namespace": "qa"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
                json!({"metadata": {"name": "b3", "namespace": "qa"}, "roleRef": {"kind": "ClusterRole", "name": "missing"}, "subjects": [{"kind": "Group", "name": "devs"}]}),
            ],
            cluster_role_bindings: vec![
                json!({"metadata": {"name": "c1"}, "roleRef": {"kind": "ClusterRole", "name": "nodes-reader"}, "subjects": [{"kind": "Group", "name": "devs"}]}),
            ],
        }
    }

    #[test]
    fn role_binding_scopes_to_its_namespace() {
        let r = RuleResolver::new(Box::new(source()));
        let alice = user("alice", &["system:authenticated"]);
        assert!(r.authorize(&alice, &req("list", "", "pods", "dev")).is_ok());
        assert!(r.authorize(&alice, &req("list", "", "pods", "qa")).is_err());
        assert!(r.authorize(&alice, &req("list", "", "pods", "")).is_err());
        assert!(r
            .authorize(&alice, &req("create", "", "pods", "dev"))
            .is_err());
    }

    #[test]
    fn groups_service_accounts_and_aggregation() {
        let r = RuleResolver::new(Box::new(source()));
        let bob = user("bob", &["devs"]);
        assert!(r.authorize(&bob, &req("list", "", "nodes", "")).is_ok());
        // A binding to a missing role is reported as the reason.
        let err = r
            .authorize(&bob, &req("list", "", "pods", "qa"))
            .expect_err("denied");
        assert!(
            err.contains("clusterrole.rbac.authorization.k8s.io \"missing\" not found"),
            "{err}"
        );
        let sa = user("system:serviceaccount:qa:bot", &["system:serviceaccounts"]);
        assert!(
            r.authorize(&sa, &req("get", "", "pods", "qa")).is_ok(),
            "aggregated view"
        );
        assert!(r.authorize(&sa, &req("get", "", "pods", "dev")).is_err());
        let other_sa = user("system:serviceaccount:dev:bot", &[]);
        assert!(r
            .authorize(&other_sa, &req("get", "", "pods", "qa"))
            .is_err());
        // Nested aggregation: edit <- view2 <- view-pods.
        let edit_rules = r.cluster_role_rules("edit").expect("edit");
        assert_eq!(edit_rules.len(), 1);
        let all = source().cluster_roles;
        assert_eq!(aggregated_rules(&all[2], &all).len(), 1);
    }

    #[test]
    fn escalation_needs_the_permissions() {
        let r = RuleResolver::new(Box::new(source()));
        let alice = user("alice", &[]);
        let want = vec![PolicyRule::from_json(
            &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        assert!(r.confirm_no_escalation(&alice, "dev", &want).is_ok());
        let err = r
            .confirm_no_escalation(&alice, "qa", &want)
            .expect_err("escalation");
        assert!(err.starts_with("user \"alice\" (groups=[]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"), "{err}");
        let master = user("root", &["system:masters"]);
        assert!(r.confirm_no_escalation(&master, "qa", &want).is_ok());
    }
}

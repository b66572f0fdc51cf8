//! The Node authorizer (upstream `plugin/pkg/auth/authorizer/node`): requests from
//! kubelets (user `system:node:<name>` in group `system:nodes`) may `get` a secret,
//! configmap, persistent volume claim (or its volume) only when a pod bound to that
//! node references it, and may create tokens only for service accounts of such pods;
//! everything else a kubelet asks is checked against the `system:node` rules. Other
//! users get no opinion. The pod graph is read from the watch cache per request.

use std::sync::Arc;

use serde_json::Value;

use super::{bootstrap_policy, rbac::PolicyRule, RequestInfo};
use crate::{authn::UserInfo, cache::WatchCache};

pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDecision {
    Allow,
    NoOpinion(String),
}

pub struct NodeAuthorizer {
    cache: Option<Arc<WatchCache>>,
    node_rules: Vec<PolicyRule>,
}

/// The node name of a kubelet identity (upstream `NodeIdentifier`).
pub fn node_name(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == NODES_GROUP) {
        return None;
    }
    user.name
        .strip_prefix(NODE_USER_PREFIX)
        .filter(|n| !n.is_empty())
}

/// What a pod references of one kind, by name.
fn pod_references(pod: &Value, resource: &str) -> Vec<String> {
    let mut out = Vec::new();
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let containers: Vec<Value> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    match resource {
        "secrets" => {
            for v in &volumes {
                out.extend(s(v.pointer("/secret/secretName")));
                for p in v
                    .pointer("/projected/sources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(s(p.pointer("/secret/name")));
                }
                for k in [
                    "/csi/nodePublishSecretRef/name",
                    "/cephfs/secretRef/name",
                    "/rbd/secretRef/name",
                    "/iscsi/secretRef/name",
                    "/flexVolume/secretRef/name",
                    "/azureFile/secretName",
                ] {
                    out.extend(s(v.pointer(k)));
                }
            }
            for p in spec
                .get("imagePullSecrets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(s(p.get("name")));
            }
            for c in &containers {
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    out.extend(s(e.pointer("/valueFrom/secretKeyRef/name")));
                }
                for e in c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(s(e.pointer("/secretRef/name")));
                }
            }
        }
        "configmaps" => {
            for v in &volumes {
                out.extend(s(v.pointer("/configMap/name")));
                for p in v
                    .pointer("/projected/sources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(s(p.pointer("/configMap/name")));
                }
            }
            for c in &containers {
                for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                    out.extend(s(e.pointer("/valueFrom/configMapKeyRef/name")));
                }
                for e in c
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.extend(s(e.pointer("/configMapRef/name")));
                }
            }
        }
        "persistentvolumeclaims" => {
            for v in &volumes {
                out.extend(s(v.pointer("/persistentVolumeClaim/claimName")));
            }
        }
        "serviceaccounts" => {
            out.push(
                s(spec.get("serviceAccountName"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".into()),
            );
        }
        _ => {}
    }
    out
}

impl NodeAuthorizer {
    pub fn new(cache: Option<Arc<WatchCache>>) -> Self {
        NodeAuthorizer {
            cache,
            node_rules: bootstrap_policy::node_rules(),
        }
    }

    fn pods_on_node(&self, node: &str, namespace: &str) -> Vec<Value> {
        let Some(cache) = &self.cache else {
            return Vec::new();
        };
        let Some(info) = api_types::registry::lookup("", "v1", "pods") else {
            return Vec::new();
        };
        let Some(pods) = cache.resource(info) else {
            return Vec::new();
        };
        pods.list(&info.list_prefix(Some(namespace)))
            .iter()
            .filter(|p| {
                p.selectable
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    == Some(node)
            })
            .map(|p| p.without_managed_fields().into_owned())
            .collect()
    }

    fn related(&self, node: &str, namespace: &str, resource: &str, name: &str) -> bool {
        self.pods_on_node(node, namespace)
            .iter()
            .any(|p| pod_references(p, resource).iter().any(|n| n == name))
    }

    /// A PersistentVolume is related through a claim of one of the node's pods.
    fn related_volume(&self, node: &str, pv: &str) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let Some(pvc_info) = api_types::registry::lookup("", "v1", "persistentvolumeclaims") else {
            return false;
        };
        let Some(pvcs) = cache.resource(pvc_info) else {
            return false;
        };
        pvcs.list(&pvc_info.key_prefix()).iter().any(|c| {
            c.selectable
                .pointer("/spec/volumeName")
                .and_then(Value::as_str)
                == Some(pv)
                && api_types::meta::namespace(&c.selectable)
                    .zip(api_types::meta::name(&c.selectable))
                    .is_some_and(|(ns, n)| self.related(node, ns, "persistentvolumeclaims", n))
        })
    }

    pub fn authorize(&self, user: &UserInfo, req: &RequestInfo) -> NodeDecision {
        let Some(node) = node_name(user) else {
            return NodeDecision::NoOpinion(String::new());
        };
        if req.is_resource_request && req.api_group.is_empty() {
            let graph_checked = match (req.resource.as_str(), req.subresource.as_str()) {
                ("secrets" | "configmaps" | "persistentvolumeclaims" | "persistentvolumes", "") => {
                    Some(req.verb == "get")
                }
                ("serviceaccounts", "token") => Some(req.verb == "create"),
                _ => None,
            };
            if let Some(verb_ok) = graph_checked {
                if !verb_ok {
                    return NodeDecision::NoOpinion(
                        "can only get individual resources of this type".into(),
                    );
                }
                if req.name.is_empty() {
                    return NodeDecision::NoOpinion("No Object name found".into());
                }
                let ok = if req.resource == "persistentvolumes" {
                    self.related_volume(node, &req.name)
                } else {
                    self.related(node, &req.namespace, &req.resource, &req.name)
                };
                return if ok {
                    NodeDecision::Allow
                } else {
                    NodeDecision::NoOpinion(format!(
                        "no relationship found between node '{node}' and this object"
                    ))
                };
            }
        }
        if self.node_rules.iter().any(|r| r.allows(req)) {
            NodeDecision::Allow
        } else {
            NodeDecision::NoOpinion(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_and_references() {
        let kubelet = UserInfo {
            name: "system:node:n1".into(),
            uid: String::new(),
            groups: vec![NODES_GROUP.into()],
        };
        assert_eq!(node_name(&kubelet), Some("n1"));
        let imposter = UserInfo {
            groups: vec![],
            ..kubelet.clone()
        };
        assert_eq!(node_name(&imposter), None);
        let pod = json!({"spec": {
            "volumes": [{"name": "a", "secret": {"secretName": "s1"}}, {"name": "b", "configMap": {"name": "c1"}},
                        {"name": "p", "projected": {"sources": [{"secret": {"name": "s2"}}]}}],
            "containers": [{"name": "x", "envFrom": [{"secretRef": {"name": "s3"}}], "env": [{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "c2", "key": "k"}}}]}],
            "imagePullSecrets": [{"name": "pull"}],
        }});
        assert_eq!(
            pod_references(&pod, "secrets"),
            vec!["s1", "s2", "pull", "s3"]
        );
        assert_eq!(pod_references(&pod, "configmaps"), vec!["c1", "c2"]);
        assert_eq!(pod_references(&pod, "serviceaccounts"), vec!["default"]);
    }

    #[test]
    fn kubelet_without_graph_gets_node_rules_only() {
        let a = NodeAuthorizer::new(None);
        let kubelet = UserInfo {
            name: "system:node:n1".into(),
            uid: String::new(),
            groups: vec![NODES_GROUP.into()],
        };
        let mut req = super::super::rbac::tests::req("get", "", "secrets", "default");
        req.name = "s".into();
        assert!(
            matches!(a.authorize(&kubelet, &req), NodeDecision::NoOpinion(r) if r.contains("no relationship found between node 'n1'"))
        );
        req.verb = "list".into();
        assert_eq!(
            a.authorize(&kubelet, &req),
            NodeDecision::NoOpinion("can only get individual resources of this type".into())
        );
        assert_eq!(
            a.authorize(
                &kubelet,
                &super::super::rbac::tests::req("list", "", "pods", "")
            ),
            NodeDecision::Allow
        );
        assert_eq!(
            a.authorize(
                &kubelet,
                &super::super::rbac::tests::req("delete", "", "namespaces", "")
            ),
            NodeDecision::NoOpinion(String::new())
        );
    }
}

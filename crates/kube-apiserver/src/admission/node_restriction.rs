//! NodeRestriction: a kubelet (user `system:node:<name>` in group `system:nodes`) may
//! only modify its own Node object and the status of pods bound to it, create only
//! mirror pods bound to itself, and delete only pods bound to itself — as upstream's
//! `plugin/pkg/admission/noderestriction`.

use api_types::{meta, ApiError, Subresource};
use serde_json::Value;

use super::{forbidden, Attributes, Operation};

/// The node name of a kubelet identity.
pub fn node_name(user: &crate::authn::UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    user.name.strip_prefix("system:node:")
}

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn bound_node(pod: Option<&Value>) -> &str {
    pod.and_then(|p| p.pointer("/spec/nodeName"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks a write by a kubelet; other users pass.
pub fn admit(attrs: &Attributes<'_>, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let Some(node) = attrs.user.and_then(node_name) else {
        return Ok(());
    };
    let group = attrs.info.group;
    match (group, attrs.info.plural) {
        ("", "nodes") => {
            if attrs.name != node {
                return Err(forbidden(
                    attrs,
                    format!(
                        "node \"{node}\" is not allowed to modify node \"{}\"",
                        attrs.name
                    ),
                ));
            }
            Ok(())
        }
        ("", "pods") => {
            match (attrs.operation, attrs.subresource) {
                (Operation::Create, None) => {
                    if !meta::annotations(obj).contains_key(MIRROR_ANNOTATION) {
                        return Err(forbidden(attrs, format!("pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods")));
                    }
                    if bound_node(Some(obj)) != node {
                        return Err(forbidden(attrs, format!("node \"{node}\" can only create pods with spec.nodeName set to itself")));
                    }
                    Ok(())
                }
                (Operation::Update, Some(Subresource::Status)) => {
                    if bound_node(old) != node {
                        return Err(forbidden(attrs, format!("node \"{node}\" can only update pod status for pods with spec.nodeName set to itself")));
                    }
                    Ok(())
                }
                (Operation::Update, _) => Err(forbidden(
                    attrs,
                    format!("node \"{node}\" can only update pod status"),
                )),
                (Operation::Delete, _) => {
                    if bound_node(old.or(Some(obj))) != node {
                        return Err(forbidden(attrs, format!("node \"{node}\" can only delete pods with spec.nodeName set to itself")));
                    }
                    Ok(())
                }
                (Operation::Create, Some(_)) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;
    use serde_json::json;

    fn kubelet(n: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{n}"),
            uid: String::new(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        }
    }

    fn attrs<'a>(
        op: Operation,
        plural: &str,
        name: &'a str,
        sub: Option<Subresource>,
        user: &'a UserInfo,
    ) -> Attributes<'a> {
        Attributes {
            operation: op,
            info: api_types::registry::lookup("", "v1", plural).expect("registered"),
            namespace: if plural == "nodes" {
                None
            } else {
                Some("default")
            },
            name,
            subresource: sub,
            dry_run: false,
            user: Some(user),
        }
    }

    #[test]
    fn kubelets_touch_only_their_own_node_and_pods() {
        let u = kubelet("n1");
        let node = json!({"metadata": {"name": "n1"}});
        assert!(admit(
            &attrs(
                Operation::Update,
                "nodes",
                "n1",
                Some(Subresource::Status),
                &u
            ),
            &node,
            Some(&node)
        )
        .is_ok());
        let e = admit(
            &attrs(
                Operation::Update,
                "nodes",
                "n2",
                Some(Subresource::Status),
                &u,
            ),
            &node,
            Some(&node),
        )
        .expect_err("other node");
        assert_eq!(e.code, 403);
        assert!(
            e.message.contains("is not allowed to modify node \"n2\""),
            "{}",
            e.message
        );

        let mine = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        let theirs = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2"}});
        assert!(admit(
            &attrs(
                Operation::Update,
                "pods",
                "p",
                Some(Subresource::Status),
                &u
            ),
            &mine,
            Some(&mine)
        )
        .is_ok());
        let e = admit(
            &attrs(
                Operation::Update,
                "pods",
                "p",
                Some(Subresource::Status),
                &u,
            ),
            &theirs,
            Some(&theirs),
        )
        .expect_err("other node's pod");
        assert!(
            e.message
                .contains("can only update pod status for pods with spec.nodeName set to itself"),
            "{}",
            e.message
        );
        assert!(
            admit(
                &attrs(Operation::Update, "pods", "p", None, &u),
                &mine,
                Some(&mine)
            )
            .is_err(),
            "spec updates are not a kubelet's"
        );
        assert!(admit(
            &attrs(Operation::Delete, "pods", "p", None, &u),
            &theirs,
            Some(&theirs)
        )
        .is_err());
        assert!(admit(
            &attrs(Operation::Delete, "pods", "p", None, &u),
            &mine,
            Some(&mine)
        )
        .is_ok());

        let plain = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n1"}});
        assert!(admit(
            &attrs(Operation::Create, "pods", "s", None, &u),
            &plain,
            None
        )
        .is_err());
        let mirror = json!({"metadata": {"name": "s", "annotations": {MIRROR_ANNOTATION: "x"}}, "spec": {"nodeName": "n1"}});
        assert!(admit(
            &attrs(Operation::Create, "pods", "s", None, &u),
            &mirror,
            None
        )
        .is_ok());

        let admin = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        assert!(admit(
            &attrs(Operation::Update, "nodes", "n2", None, &admin),
            &node,
            Some(&node)
        )
        .is_ok());
    }
}

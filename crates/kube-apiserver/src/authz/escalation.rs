//! RBAC escalation prevention on writes of roles and bindings (upstream
//! `registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased`): a
//! user may only create or update a role with permissions they hold (or with the
//! `escalate` verb on it), and only bind a role whose permissions they hold (or with
//! the `bind` verb on it). Members of `system:masters` are exempt.

use api_types::{meta, ApiError, ResourceInfo};
use serde_json::Value;

use super::{rbac::PolicyRule, Authorizer, RequestInfo};
use crate::authn::{UserInfo, SYSTEM_PRIVILEGED_GROUP};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        info.qualified_plural()
    ))
    .with_details(info.group, info.plural, name)
}

fn check(
    authz: &Authorizer,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    authz.allows(
        user,
        &RequestInfo {
            verb: verb.into(),
            is_resource_request: true,
            api_group: RBAC_GROUP.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
            path: String::new(),
        },
    )
}

/// Whether `info` is one of the four RBAC kinds this applies to.
pub fn applies(info: &ResourceInfo) -> bool {
    info.group == RBAC_GROUP
        && matches!(
            info.plural,
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        )
}

/// Checks a create/update of an RBAC object whose new state is `obj`. Does nothing when
/// the RBAC mode is off.
pub fn check_write(
    authz: &Authorizer,
    user: &UserInfo,
    info: &ResourceInfo,
    namespace: Option<&str>,
    obj: &Value,
) -> Result<(), ApiError> {
    let Some(resolver) = authz.rbac() else {
        return Ok(());
    };
    if !applies(info) || user.groups.iter().any(|g| g == SYSTEM_PRIVILEGED_GROUP) {
        return Ok(());
    }
    let ns = if info.namespaced {
        namespace.or_else(|| meta::namespace(obj)).unwrap_or("")
    } else {
        ""
    };
    let name = meta::name(obj).unwrap_or("");
    match info.plural {
        "roles" | "clusterroles" => {
            if check(authz, user, "escalate", info.plural, ns, name) {
                return Ok(());
            }
            if info.plural == "clusterroles"
                && obj.get("aggregationRule").is_some_and(|a| !a.is_null())
            {
                return Err(forbidden(
                    info,
                    name,
                    "must have cluster-admin privileges to use the aggregationRule",
                ));
            }
            let rules = PolicyRule::list_from(obj);
            resolver
                .confirm_no_escalation(user, ns, &rules)
                .map_err(|e| forbidden(info, name, &e))
        }
        _ => {
            let kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_resource = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if check(authz, user, "bind", role_resource, ns, role) {
                return Ok(());
            }
            let rules = match kind {
                "ClusterRole" => resolver.cluster_role_rules(role),
                "Role" => resolver.role_rules(ns, role),
                other => Err(format!("unsupported role reference kind: {other:?}")),
            }
            .map_err(|e| forbidden(info, name, &e))?;
            resolver
                .confirm_no_escalation(user, ns, &rules)
                .map_err(|e| forbidden(info, name, &e))
        }
    }
}

//! `create serviceaccount|role|clusterrole|rolebinding|clusterrolebinding`
//! (upstream `create_serviceaccount.go`, `create_role.go`,
//! `create_clusterrole.go`, `create_rolebinding.go`, `create_clusterrolebinding.go`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::WriteOptions;
use crate::context::Context;
use crate::errors::{Error, Result};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// Upstream `validResourceVerbs`.
const VALID_VERBS: &[&str] = &[
    "*",
    "get",
    "delete",
    "list",
    "create",
    "update",
    "patch",
    "watch",
    "proxy",
    "deletecollection",
    "use",
    "bind",
    "escalate",
    "impersonate",
];

/// Upstream `validNonResourceVerbs`.
const VALID_NON_RESOURCE_VERBS: &[&str] = &[
    "*", "get", "post", "put", "delete", "patch", "head", "options",
];

#[derive(Debug, clap::Args)]
pub struct ServiceAccountArgs {
    pub name: String,
    #[command(flatten)]
    pub write: WriteOptions,
}

pub fn service_account(args: &ServiceAccountArgs) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": args.name}})
}

#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    pub name: String,
    /// Verb that applies to the resources contained in the rule
    #[arg(long, value_delimiter = ',')]
    pub verb: Vec<String>,
    /// Resource that the rule applies to
    #[arg(long, value_delimiter = ',')]
    pub resource: Vec<String>,
    /// Resource in the white list that the rule applies to, repeat this flag for multiple items
    #[arg(long, value_delimiter = ',')]
    pub resource_name: Vec<String>,
    #[command(flatten)]
    pub write: WriteOptions,
}

#[derive(Debug, clap::Args)]
pub struct ClusterRoleArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    /// A partial url that user should have access to.
    #[arg(long, value_delimiter = ',')]
    pub non_resource_url: Vec<String>,
}

/// A Role (`cluster == None`) or a ClusterRole (with its non-resource URLs).
pub async fn role(
    ctx: &Context,
    args: &RoleArgs,
    non_resource_urls: Option<&[String]>,
) -> Result<Value> {
    let cluster = non_resource_urls.is_some();
    let urls = non_resource_urls.unwrap_or_default();
    if args.verb.is_empty() {
        return Err(Error::usage("at least one verb must be specified"));
    }
    if args.resource.is_empty() && urls.is_empty() {
        return Err(Error::usage(if cluster {
            "one of resource or nonResourceURL must be specified"
        } else {
            "at least one resource must be specified"
        }));
    }
    // Upstream warns about a non-standard resource verb but refuses one for
    // non-resource URLs.
    if !args.resource.is_empty() {
        for verb in &args.verb {
            if !VALID_VERBS.contains(&verb.as_str()) {
                eprintln!("Warning: '{verb}' is not a standard resource verb");
            }
        }
    }
    if !urls.is_empty() {
        for verb in &args.verb {
            if !VALID_NON_RESOURCE_VERBS.contains(&verb.as_str()) {
                return Err(Error::usage(format!(
                    "invalid verb: '{verb}' for nonResourceURL"
                )));
            }
        }
    }
    // Resources grouped by API group, groups in order (upstream
    // `generateResourcePolicyRules`).
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !args.resource.is_empty() {
        let discovery = ctx.discovery().await?;
        for r in &args.resource {
            let (resource, sub) = match r.split_once('/') {
                Some((res, sub)) => (res, Some(sub)),
                None => (r.as_str(), None),
            };
            let (group, mut plural) = if resource == "*" {
                (String::new(), "*".to_string())
            } else {
                let found = discovery.resolve(resource)?;
                let first = found.first().ok_or_else(|| {
                    Error::usage(format!(
                        "the server doesn't have a resource type \"{resource}\""
                    ))
                })?;
                (first.group.clone(), first.name.clone())
            };
            if let Some(sub) = sub {
                plural = format!("{plural}/{sub}");
            }
            let entry = groups.entry(group).or_default();
            if !entry.contains(&plural) {
                entry.push(plural);
            }
        }
    }
    let mut rules: Vec<Value> = groups
        .into_iter()
        .map(|(group, resources)| {
            let mut rule =
                json!({"apiGroups": [group], "resources": resources, "verbs": args.verb});
            if !args.resource_name.is_empty() {
                rule["resourceNames"] = json!(args.resource_name);
            }
            rule
        })
        .collect();
    if !urls.is_empty() {
        rules.push(json!({"nonResourceURLs": urls, "verbs": args.verb}));
    }
    let kind = if cluster { "ClusterRole" } else { "Role" };
    Ok(json!({"apiVersion": RBAC_API_VERSION, "kind": kind,
              "metadata": {"name": args.name}, "rules": rules}))
}

#[derive(Debug, clap::Args)]
pub struct BindingArgs {
    pub name: String,
    /// ClusterRole this binding should reference
    #[arg(long)]
    pub clusterrole: Option<String>,
    /// Usernames to bind to the role. The flag can be repeated to add multiple users.
    #[arg(long)]
    pub user: Vec<String>,
    /// Groups to bind to the role. The flag can be repeated to add multiple groups.
    #[arg(long)]
    pub group: Vec<String>,
    /// Service accounts to bind to the role, in the format <namespace>:<name>.
    #[arg(long)]
    pub serviceaccount: Vec<String>,
    #[command(flatten)]
    pub write: WriteOptions,
}

#[derive(Debug, clap::Args)]
pub struct RoleBindingArgs {
    #[command(flatten)]
    pub binding: BindingArgs,
    /// Role this RoleBinding should reference
    #[arg(long)]
    pub role: Option<String>,
}

/// A RoleBinding (`role` given for a namespaced binding) or a ClusterRoleBinding.
pub fn binding(args: &BindingArgs, role: Option<&str>, cluster: bool) -> Result<Value> {
    let role_ref = match (cluster, role, args.clusterrole.as_deref()) {
        (true, _, Some(cr)) => json!({"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cr}),
        (true, _, None) => return Err(Error::usage("required flag(s) \"clusterrole\" not set")),
        (false, Some(r), None) => json!({"apiGroup": RBAC_GROUP, "kind": "Role", "name": r}),
        (false, None, Some(cr)) => {
            json!({"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cr})
        }
        (false, _, _) => {
            return Err(Error::usage(
                "exactly one of clusterrole or role must be specified",
            ))
        }
    };
    let mut subjects = Vec::new();
    for user in &args.user {
        subjects.push(json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": user}));
    }
    for group in &args.group {
        subjects.push(json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}));
    }
    for sa in &args.serviceaccount {
        match sa.split_once(':') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains(':') => {
                subjects.push(json!({"kind": "ServiceAccount", "namespace": ns, "name": name}));
            }
            _ => return Err(Error::usage("serviceaccount must be <namespace>:<name>")),
        }
    }
    let kind = if cluster {
        "ClusterRoleBinding"
    } else {
        "RoleBinding"
    };
    let mut obj = json!({"apiVersion": RBAC_API_VERSION, "kind": kind,
                         "metadata": {"name": args.name}, "roleRef": role_ref});
    if !subjects.is_empty() {
        obj["subjects"] = json!(subjects);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_args() -> BindingArgs {
        BindingArgs {
            name: "b".into(),
            clusterrole: Some("view".into()),
            user: vec!["alice".into()],
            group: vec!["devs".into()],
            serviceaccount: vec!["kube-system:helm".into()],
            write: WriteOptions::default(),
        }
    }

    #[test]
    fn bindings_list_users_groups_then_service_accounts() {
        let b = binding(&binding_args(), None, true).expect("binding");
        assert_eq!(b["kind"], "ClusterRoleBinding");
        assert_eq!(b["subjects"][0]["kind"], "User");
        assert_eq!(b["subjects"][1]["kind"], "Group");
        assert_eq!(
            b["subjects"][2],
            json!({"kind": "ServiceAccount", "namespace": "kube-system", "name": "helm"})
        );
        assert!(binding(&binding_args(), Some("r"), false).is_err());
        let mut bad = binding_args();
        bad.serviceaccount = vec!["helm".into()];
        assert!(binding(&bad, None, true).is_err());
    }
}

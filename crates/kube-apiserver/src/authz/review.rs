//! The create-only, never-stored access review APIs of `authorization.k8s.io/v1`:
//! SelfSubjectAccessReview (what `kubectl auth can-i` posts), SubjectAccessReview (for
//! kubelets and webhooks) and LocalSubjectAccessReview. The answer is the request
//! with `status.{allowed, reason}` filled in by the configured authorizer chain.

use api_types::{ApiError, StatusCause};
use serde_json::{json, Value};

use super::{Authorizer, Decision, RequestInfo};
use crate::authn::UserInfo;

/// The review kinds handled here.
pub const KINDS: &[&str] = &[
    "SelfSubjectAccessReview",
    "SubjectAccessReview",
    "LocalSubjectAccessReview",
];

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn attributes(spec: &Value) -> Option<RequestInfo> {
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        return Some(RequestInfo {
            verb: s(r, "verb"),
            is_resource_request: true,
            api_group: s(r, "group"),
            api_version: s(r, "version"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
            path: String::new(),
        });
    }
    let n = spec
        .get("nonResourceAttributes")
        .filter(|v| v.is_object())?;
    Some(RequestInfo {
        verb: s(n, "verb"),
        is_resource_request: false,
        api_group: String::new(),
        api_version: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        path: s(n, "path"),
    })
}

fn invalid(kind: &str, causes: Vec<StatusCause>) -> ApiError {
    ApiError::invalid("authorization.k8s.io", kind, "", causes)
}

/// Answers one review posted by `requester` (in `namespace` for the local kind).
pub fn review(
    authz: &Authorizer,
    requester: &UserInfo,
    kind: &str,
    namespace: Option<&str>,
    mut body: Value,
) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let Some(mut attrs) = attributes(&spec) else {
        return Err(invalid(
            kind,
            vec![StatusCause::required("spec.resourceAttributes")],
        ));
    };
    let subject = match kind {
        "SelfSubjectAccessReview" => requester.clone(),
        _ => {
            let user = s(&spec, "user");
            let groups: Vec<String> = spec
                .get("groups")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if user.is_empty() && groups.is_empty() {
                return Err(invalid(
                    kind,
                    vec![StatusCause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: at least one of user or group must be specified"
                            .into(),
                        field: "spec.user".into(),
                    }],
                ));
            }
            UserInfo {
                name: user,
                uid: s(&spec, "uid"),
                groups,
            }
        }
    };
    if kind == "LocalSubjectAccessReview" {
        let ns = namespace.unwrap_or("");
        if attrs.is_resource_request && !attrs.namespace.is_empty() && attrs.namespace != ns {
            return Err(invalid(
                kind,
                vec![StatusCause::invalid(
                    "spec.resourceAttributes.namespace",
                    &json!(attrs.namespace),
                    "must match metadata.namespace",
                )],
            ));
        }
        attrs.namespace = ns.to_string();
    }
    let status = match authz.authorize(&subject, &attrs) {
        Decision::Allow => json!({"allowed": true}),
        Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    };
    if let Some(o) = body.as_object_mut() {
        o.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        o.insert("kind".into(), json!(kind));
        o.entry("metadata").or_insert_with(|| json!({}));
        o.insert("status".into(), status);
    }
    Ok(body)
}

/// Whether `info` is one of the create-only APIs [`create_non_stored`] answers.
pub fn is_non_stored(info: &api_types::ResourceInfo) -> bool {
    (info.group == "authorization.k8s.io" && KINDS.contains(&info.kind))
        || (info.group == "authentication.k8s.io"
            && matches!(info.kind, "TokenReview" | "SelfSubjectReview"))
}

/// POST of a create-only, never-stored API (`write::create` hands them here before the
/// store): access reviews, TokenReview and SelfSubjectReview. `None` for other kinds.
pub fn create_non_stored(
    state: &crate::server::AppState,
    user: &UserInfo,
    info: &api_types::ResourceInfo,
    namespace: Option<&str>,
    body: Value,
) -> Option<Result<Value, ApiError>> {
    match (info.group, info.kind) {
        ("authorization.k8s.io", kind) if KINDS.contains(&kind) => {
            Some(review(&state.authorizer, user, kind, namespace, body))
        }
        ("authentication.k8s.io", "TokenReview") => Some(crate::authn::review::token_review(
            &state.authenticator,
            body,
        )),
        ("authentication.k8s.io", "SelfSubjectReview") => Some(Ok(json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups}},
        }))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_review_and_subject_review() {
        let authz = Authorizer::new(&["RBAC".to_string()]);
        let admin = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        let body = json!({"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}});
        let out = review(
            &authz,
            &admin,
            "SelfSubjectAccessReview",
            None,
            body.clone(),
        )
        .expect("review");
        assert_eq!(out["status"]["allowed"], true);
        assert_eq!(out["kind"], "SelfSubjectAccessReview");
        let jane = UserInfo {
            name: "jane".into(),
            uid: String::new(),
            groups: vec![],
        };
        let out = review(&authz, &jane, "SelfSubjectAccessReview", None, body).expect("review");
        assert_eq!(out["status"]["allowed"], false);
        let sar = json!({"spec": {"user": "x", "groups": ["system:masters"], "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}});
        assert_eq!(
            review(&authz, &jane, "SubjectAccessReview", None, sar).expect("sar")["status"]
                ["allowed"],
            true
        );
        let empty = json!({"spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}});
        assert_eq!(
            review(&authz, &jane, "SubjectAccessReview", None, empty)
                .expect_err("invalid")
                .code,
            422
        );
    }
}

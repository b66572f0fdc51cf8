//! User impersonation (upstream `apiserver/pkg/endpoints/filters/impersonation.go`):
//! `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` headers switch the
//! request's identity once the caller is authorized for the `impersonate` verb on
//! `users`/`serviceaccounts`, `groups` and `uids`. `kubectl --as/--as-group` use it.

use api_types::ApiError;
use axum::http::HeaderMap;

use super::{forbidden, rbac::SERVICE_ACCOUNT_PREFIX, Authorizer, RequestInfo};
use crate::authn::{UserInfo, ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS_USER};

pub const IMPERSONATE_USER: &str = "impersonate-user";
pub const IMPERSONATE_GROUP: &str = "impersonate-group";
pub const IMPERSONATE_UID: &str = "impersonate-uid";

fn impersonate_request(group: &str, resource: &str, namespace: &str, name: &str) -> RequestInfo {
    RequestInfo {
        verb: "impersonate".into(),
        is_resource_request: true,
        api_group: group.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: namespace.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn header_values(headers: &HeaderMap, name: &str) -> Result<Vec<String>, ApiError> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::bad_request(format!("invalid {name} header")))
        })
        .collect()
}

/// The identity the request runs as: `user` itself without impersonation headers,
/// else the impersonated user (403 when `user` may not impersonate it).
pub fn impersonate(
    authz: &Authorizer,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let names = header_values(headers, IMPERSONATE_USER)?;
    let groups = header_values(headers, IMPERSONATE_GROUP)?;
    let uids = header_values(headers, IMPERSONATE_UID)?;
    let extras = headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-extra-"));
    if names.is_empty() {
        if !groups.is_empty() || !uids.is_empty() || extras {
            return Err(ApiError::internal(
                "requested impersonation without impersonating a user",
            ));
        }
        return Ok(user);
    }
    let [name] = names.as_slice() else {
        return Err(ApiError::bad_request(
            "only one Impersonate-User header is allowed",
        ));
    };
    let mut checks = Vec::new();
    let mut new_groups = groups.clone();
    if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
        let (ns, sa) = rest.split_once(':').unwrap_or(("", rest));
        checks.push(impersonate_request("", "serviceaccounts", ns, sa));
        if groups.is_empty() {
            new_groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    } else {
        checks.push(impersonate_request("", "users", "", name));
    }
    for g in &groups {
        checks.push(impersonate_request("", "groups", "", g));
    }
    for u in &uids {
        checks.push(impersonate_request("authentication.k8s.io", "uids", "", u));
    }
    for check in &checks {
        if !authz.allows(&user, check) {
            return Err(forbidden(&user, check, ""));
        }
    }
    if name != ANONYMOUS_USER
        && !new_groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
    {
        new_groups.push(ALL_AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name: name.clone(),
        uid: uids.first().cloned().unwrap_or_default(),
        groups: new_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn masters_may_impersonate_others_may_not() {
        let authz = Authorizer::new(&["RBAC".to_string()]);
        let mut headers = HeaderMap::new();
        headers.insert(IMPERSONATE_USER, HeaderValue::from_static("jane"));
        let admin = UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        };
        let jane = impersonate(&authz, admin, &headers).expect("allowed");
        assert_eq!(jane.name, "jane");
        assert_eq!(jane.groups, vec![ALL_AUTHENTICATED.to_string()]);

        let bob = UserInfo {
            name: "bob".into(),
            uid: String::new(),
            groups: vec![ALL_AUTHENTICATED.into()],
        };
        let err = impersonate(&authz, bob.clone(), &headers).expect_err("denied");
        assert_eq!(err.code, 403);
        assert_eq!(err.message, "users \"jane\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope");
        assert_eq!(
            impersonate(&authz, bob.clone(), &HeaderMap::new()).expect("no headers"),
            bob
        );
    }
}

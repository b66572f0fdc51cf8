//! POST `/api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (an
//! `authentication.k8s.io/v1` TokenRequest), as upstream's
//! `registry/core/serviceaccount/storage/token.go`: defaults `expirationSeconds` to
//! 3600 and `audiences` to the API audiences, checks a bound Pod/Secret/Node exists
//! with the given uid, and answers the request with `status.{token, expirationTimestamp}`.

use api_types::{meta, ApiError, StatusCause};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::TokenKeys;
use crate::store::Store;

const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

fn invalid(name: &str, causes: Vec<StatusCause>) -> ApiError {
    ApiError::invalid("authentication.k8s.io", "TokenRequest", name, causes)
}

/// Validates and defaults the request spec: (audiences, expirationSeconds, boundObjectRef).
pub fn parse_spec(
    keys: &TokenKeys,
    name: &str,
    request: &Value,
    max_expiration: Option<i64>,
) -> Result<(Vec<String>, i64, Option<Value>), ApiError> {
    let spec = request.get("spec").cloned().unwrap_or(json!({}));
    let mut expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            name,
            vec![StatusCause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            name,
            vec![StatusCause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    if let Some(max) = max_expiration.filter(|m| *m > 0) {
        expiration = expiration.min(max);
    }
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| keys.audiences.clone());
    let bound = spec
        .get("boundObjectRef")
        .filter(|v| v.is_object())
        .cloned();
    if let Some(b) = &bound {
        let kind = b.get("kind").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "Pod" | "Secret" | "Node") {
            return Err(invalid(
                name,
                vec![StatusCause::not_supported(
                    "spec.boundObjectRef.kind",
                    &json!(kind),
                    &["Pod", "Node", "Secret"],
                )],
            ));
        }
    }
    Ok((audiences, expiration, bound))
}

/// Issues a token for `namespace/name`.
pub async fn create(
    store: &Store,
    keys: &TokenKeys,
    namespace: &str,
    name: &str,
    request: Value,
    max_expiration: Option<i64>,
) -> Result<Value, ApiError> {
    let sa_info = api_types::registry::lookup("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts not registered"))?;
    let sa = store.get(sa_info, Some(namespace), name).await?;
    let (audiences, expiration, bound) = parse_spec(keys, name, &request, max_expiration)?;
    let mut bound_claim = None;
    let mut node_claim = None;
    if let Some(b) = &bound {
        let kind = b.get("kind").and_then(Value::as_str).unwrap_or("");
        let bname = b.get("name").and_then(Value::as_str).unwrap_or("");
        let (plural, ns) = match kind {
            "Pod" => ("pods", Some(namespace)),
            "Secret" => ("secrets", Some(namespace)),
            _ => ("nodes", None),
        };
        let info = api_types::registry::lookup("", "v1", plural)
            .ok_or_else(|| ApiError::internal("not registered"))?;
        let obj = store.get(info, ns, bname).await?;
        let uid = meta::uid(&obj).unwrap_or("").to_string();
        if let Some(want) = b
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            if want != uid {
                return Err(ApiError::conflict("", plural, bname, &format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated")));
            }
        }
        if kind == "Node" {
            node_claim = Some((bname.to_string(), uid));
        } else {
            // A pod-bound token also names the pod's node, as upstream.
            if kind == "Pod" {
                if let Some(node) = obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    node_claim = Some((node.to_string(), String::new()));
                }
            }
            bound_claim = Some((kind.to_string(), bname.to_string(), uid));
        }
    }
    let now = Utc::now().timestamp();
    let claims = keys.claims(
        namespace,
        name,
        meta::uid(&sa).unwrap_or(""),
        &audiences,
        now,
        expiration,
        bound_claim
            .as_ref()
            .map(|(k, n, u)| (k.as_str(), n.as_str(), u.as_str())),
        node_claim.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
    );
    let token = keys
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = Utc
        .timestamp_opt(now + expiration, 0)
        .single()
        .map(meta::format_time)
        .unwrap_or_default();
    let mut spec = json!({"audiences": audiences, "expirationSeconds": expiration});
    if let Some(b) = bound {
        spec["boundObjectRef"] = b;
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": meta::format_time(Utc::now())},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serviceaccount::SigningKey;

    #[test]
    fn spec_defaults_and_limits() {
        let pem = SigningKey::generate_pem().expect("gen");
        let keys = TokenKeys::new(
            SigningKey::from_pem(pem.as_bytes()),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (aud, exp, bound) = parse_spec(&keys, "sa", &json!({}), None).expect("defaults");
        assert_eq!(aud, vec![crate::serviceaccount::DEFAULT_ISSUER.to_string()]);
        assert_eq!(exp, 3600);
        assert!(bound.is_none());
        let err = parse_spec(
            &keys,
            "sa",
            &json!({"spec": {"expirationSeconds": 599}}),
            None,
        )
        .expect_err("too short");
        assert!(
            err.causes[0]
                .message
                .contains("may not specify a duration less than 10 minutes"),
            "{:?}",
            err.causes
        );
        let (_, exp, _) = parse_spec(
            &keys,
            "sa",
            &json!({"spec": {"expirationSeconds": 86400}}),
            Some(7200),
        )
        .expect("capped");
        assert_eq!(exp, 7200);
        assert!(parse_spec(
            &keys,
            "sa",
            &json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "x"}}}),
            None
        )
        .is_err());
    }
}

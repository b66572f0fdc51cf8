//! TokenReview (`authentication.k8s.io/v1`, create-only, never stored): the kubelet and
//! webhooks ask the apiserver who a bearer token belongs to. Only the token
//! authenticators answer (no client certificates, no anonymous), as upstream.

use api_types::{ApiError, StatusCause};
use serde_json::{json, Value};

use super::Authenticator;

pub fn token_review(authn: &Authenticator, mut body: Value) -> Result<Value, ApiError> {
    let token = body
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if token.is_empty() {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenReview",
            "",
            vec![StatusCause::required("spec.token")],
        ));
    }
    let status = match authn.authenticate_token(&token) {
        Some(user) => json!({
            "authenticated": true,
            "user": {"username": user.name, "uid": user.uid, "groups": user.groups},
            "audiences": body.pointer("/spec/audiences").cloned().unwrap_or(json!([])),
        }),
        None => json!({"user": {}, "error": "[invalid bearer token]"}),
    };
    if let Some(o) = body.as_object_mut() {
        o.insert("apiVersion".into(), json!("authentication.k8s.io/v1"));
        o.insert("kind".into(), json!("TokenReview"));
        o.entry("metadata").or_insert_with(|| json!({}));
        o.insert("status".into(), status);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::tokenfile::TokenFile;

    #[test]
    fn known_and_unknown_tokens() {
        let mut authn = Authenticator::new(false, true);
        authn.add_token_authenticator(Box::new(
            TokenFile::parse("t1,kubelet,1,\"a\"\n").expect("file"),
        ));
        let ok = token_review(&authn, json!({"spec": {"token": "t1"}})).expect("review");
        assert_eq!(ok["status"]["authenticated"], true);
        assert_eq!(ok["status"]["user"]["username"], "kubelet");
        assert_eq!(
            ok["status"]["user"]["groups"],
            json!(["a", "system:authenticated"])
        );
        let bad = token_review(&authn, json!({"spec": {"token": "nope"}})).expect("review");
        assert!(bad["status"].get("authenticated").is_none());
        assert_eq!(
            token_review(&authn, json!({"spec": {}}))
                .expect_err("invalid")
                .code,
            422
        );
    }
}

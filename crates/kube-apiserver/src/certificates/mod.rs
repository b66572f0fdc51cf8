//! `certificates.k8s.io/v1` CertificateSigningRequests: upstream's CSR strategies
//! (`pkg/registry/certificates/certificates/strategy.go`), validation, and the
//! CertificateApproval / CertificateSigning / CertificateSubjectRestriction admission
//! checks (`plugin/pkg/admission/certificates`): approving needs `approve` and
//! issuing needs `sign` on the virtual `signers` resource named by the signerName.

pub mod validation;

use api_types::{meta, ApiError, ResourceInfo, Subresource};
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::authz::{Authorizer, RequestInfo};

pub const KIND: &str = "CertificateSigningRequest";

/// The signer whose certificates authenticate to the apiserver as any user.
pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

fn is_csr(info: &ResourceInfo) -> bool {
    info.group == "certificates.k8s.io" && info.kind == KIND
}

fn invalid(obj: &Value, causes: Vec<api_types::StatusCause>) -> ApiError {
    ApiError::invalid(
        "certificates.k8s.io",
        KIND,
        meta::name(obj).unwrap_or(""),
        causes,
    )
}

/// Create: the requester's identity replaces whatever the client put in
/// `spec.username/uid/groups/extra`, status starts empty, then validation and the
/// CertificateSubjectRestriction check. A no-op for other kinds.
pub fn on_create(
    info: &ResourceInfo,
    obj: &mut Value,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    if !is_csr(info) {
        return Ok(());
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        for k in ["username", "uid", "groups", "extra"] {
            spec.remove(k);
        }
        if let Some(u) = user {
            spec.insert("username".into(), json!(u.name));
            if !u.uid.is_empty() {
                spec.insert("uid".into(), json!(u.uid));
            }
            if !u.groups.is_empty() {
                spec.insert("groups".into(), json!(u.groups));
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("status".into(), json!({}));
    }
    let errs = validation::validate_create(obj);
    if !errs.is_empty() {
        return Err(invalid(obj, errs));
    }
    subject_restriction(obj)
}

/// Upstream's CertificateSubjectRestriction: no `system:masters` certificates from the
/// kube-apiserver-client signer.
fn subject_restriction(obj: &Value) -> Result<(), ApiError> {
    if obj.pointer("/spec/signerName").and_then(Value::as_str) != Some(KUBE_APISERVER_CLIENT_SIGNER)
    {
        return Ok(());
    }
    use x509_parser::prelude::FromDer;
    let Ok(der) = validation::request_der(obj) else {
        return Ok(());
    };
    let Ok((_, req)) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
    else {
        return Ok(());
    };
    let masters = req
        .certification_request_info
        .subject
        .iter_organization()
        .any(|o| o.as_str().ok() == Some(crate::authn::SYSTEM_PRIVILEGED_GROUP));
    if masters {
        let name = meta::name(obj).unwrap_or("");
        return Err(ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io \"{name}\" is forbidden: use of {KUBE_APISERVER_CLIENT_SIGNER} signer with system:masters group is not allowed"
        ))
        .with_details("certificates.k8s.io", "certificatesigningrequests", name));
    }
    Ok(())
}

/// Update strategies: the main resource changes only metadata, `/status` everything
/// in status but the Approved/Denied conditions, `/approval` only the conditions.
/// Condition timestamps are filled in when missing. `obj` is the generic strategy's
/// result; a no-op for other kinds.
pub fn prepare_for_update(
    info: &ResourceInfo,
    obj: &mut Value,
    new: &Value,
    old: &Value,
    sub: Option<Subresource>,
    now: &str,
) {
    if !is_csr(info) {
        return;
    }
    let Some(o) = obj.as_object_mut() else { return };
    o.insert(
        "spec".into(),
        old.get("spec").cloned().unwrap_or_else(|| json!({})),
    );
    let old_status = old.get("status").cloned().unwrap_or_else(|| json!({}));
    let old_conds = old_status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_conds = new
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_approval = |c: &Value| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("Approved" | "Denied")
        )
    };
    let status = match sub {
        None => old_status,
        Some(Subresource::Approval) => {
            let mut s = old_status;
            s["conditions"] = Value::Array(new_conds);
            s
        }
        _ => {
            let mut s = new
                .get("status")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            let mut conds: Vec<Value> = old_conds
                .iter()
                .filter(|c| is_approval(c))
                .cloned()
                .collect();
            conds.extend(new_conds.into_iter().filter(|c| !is_approval(c)));
            s["conditions"] = Value::Array(conds);
            s
        }
    };
    o.insert("status".into(), status);
    fill_condition_times(obj, old, now);
}

/// Upstream's `populateConditionTimestamps`: a new or changed condition without
/// `lastUpdateTime`/`lastTransitionTime` gets now (the transition time is kept when
/// the status did not change).
fn fill_condition_times(obj: &mut Value, old: &Value, now: &str) {
    let old_conds = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conds) = obj
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds.iter_mut() {
        let Some(m) = c.as_object_mut() else { continue };
        let ty = m.get("type").cloned();
        let prior = old_conds.iter().find(|o| o.get("type") == ty.as_ref());
        if m.get("lastUpdateTime").is_none_or(Value::is_null) {
            m.insert("lastUpdateTime".into(), json!(now));
        }
        if m.get("lastTransitionTime").is_none_or(Value::is_null) {
            let kept = prior
                .filter(|p| p.get("status") == m.get("status"))
                .and_then(|p| p.get("lastTransitionTime"))
                .cloned();
            m.insert(
                "lastTransitionTime".into(),
                kept.unwrap_or_else(|| json!(now)),
            );
        }
    }
}

/// Validation of an update (after the strategy).
pub fn validate_update(
    info: &ResourceInfo,
    obj: &Value,
    old: &Value,
    sub: Option<Subresource>,
) -> Result<(), ApiError> {
    if !is_csr(info) {
        return Ok(());
    }
    let errs = validation::validate_update(obj, old, sub);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid(obj, errs))
    }
}

/// Upstream's `IsAuthorizedForSignerName`: `verb` on `signers` named exactly
/// `signer`, or the `<domain>/*` wildcard.
pub fn authorized_for_signer(
    authz: &Authorizer,
    user: &UserInfo,
    verb: &str,
    signer: &str,
) -> bool {
    let ask = |name: &str| RequestInfo {
        verb: verb.into(),
        is_resource_request: true,
        api_group: "certificates.k8s.io".into(),
        api_version: "*".into(),
        resource: "signers".into(),
        subresource: String::new(),
        namespace: String::new(),
        name: name.into(),
        path: String::new(),
    };
    if authz.allows(user, &ask(signer)) {
        return true;
    }
    match signer.split_once('/') {
        Some((domain, _)) => authz.allows(user, &ask(&format!("{domain}/*"))),
        None => false,
    }
}

/// The CertificateApproval / CertificateSigning checks of a write to `/approval` or
/// `/status`: `current` is the stored CSR and `target` what the write would store
/// (for `/status`, only a changed certificate or conditions needs `sign`).
pub fn authorize_subresource(
    authz: &Authorizer,
    user: &UserInfo,
    info: &ResourceInfo,
    sub: Option<Subresource>,
    current: &Value,
    target: &Value,
) -> Result<(), ApiError> {
    if !is_csr(info) {
        return Ok(());
    }
    let signer = current
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = meta::name(current).unwrap_or("");
    let deny = |verb: &str| {
        ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io \"{name}\" is forbidden: user not permitted to {verb} requests with signerName \"{signer}\""
        ))
        .with_details("certificates.k8s.io", "certificatesigningrequests", name)
    };
    match sub {
        Some(Subresource::Approval) if !authorized_for_signer(authz, user, "approve", signer) => {
            return Err(deny("approve"));
        }
        Some(Subresource::Status) => {
            let changed = current.pointer("/status/certificate")
                != target.pointer("/status/certificate")
                || current.pointer("/status/conditions") != target.pointer("/status/conditions");
            if changed && !authorized_for_signer(authz, user, "sign", signer) {
                return Err(deny("sign"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The approval/signing checks of a PUT or PATCH to a CSR's `/approval` or `/status`
/// (`target` computes what the write would store from the current object). A no-op
/// for other kinds and for the main resource.
pub async fn authorize_write(
    state: &crate::server::AppState,
    user: &UserInfo,
    info: &'static ResourceInfo,
    name: &str,
    sub: Option<Subresource>,
    target: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<(), ApiError> {
    if !is_csr(info) || !matches!(sub, Some(Subresource::Approval | Subresource::Status)) {
        return Ok(());
    }
    let current = state.store.get(info, None, name).await?;
    let wanted = target(&current)?;
    authorize_subresource(&state.authorizer, user, info, sub, &current, &wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> &'static ResourceInfo {
        api_types::registry::lookup("certificates.k8s.io", "v1", "certificatesigningrequests")
            .expect("registered")
    }

    fn request() -> Value {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jane");
        let pem = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        use base64::Engine;
        json!({"metadata": {"name": "c"}, "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "example.com/s", "usages": ["client auth"],
            "username": "forged", "groups": ["system:masters"],
        }, "status": {"conditions": [{"type": "Approved", "status": "True"}]}})
    }

    #[test]
    fn create_takes_the_requester_identity_and_clears_status() {
        let mut obj = request();
        let user = UserInfo {
            name: "jane".into(),
            uid: "u1".into(),
            groups: vec!["devs".into(), "system:authenticated".into()],
        };
        on_create(info(), &mut obj, Some(&user)).expect("valid");
        assert_eq!(obj["spec"]["username"], "jane");
        assert_eq!(obj["spec"]["uid"], "u1");
        assert_eq!(
            obj["spec"]["groups"],
            json!(["devs", "system:authenticated"])
        );
        assert_eq!(obj["status"], json!({}));
    }

    #[test]
    fn subresource_strategies() {
        let mut old = request();
        old["status"] = json!({});
        let mut new = old.clone();
        new["spec"]["signerName"] = json!("example.com/other");
        new["status"] = json!({"certificate": "Zm9v", "conditions": [
            {"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]});
        let now = "2026-01-01T00:00:00Z";
        let mut main = new.clone();
        prepare_for_update(info(), &mut main, &new, &old, None, now);
        assert_eq!(main["spec"]["signerName"], "example.com/s");
        assert_eq!(main["status"], json!({}));
        let mut approval = new.clone();
        prepare_for_update(
            info(),
            &mut approval,
            &new,
            &old,
            Some(Subresource::Approval),
            now,
        );
        assert!(approval["status"].get("certificate").is_none());
        assert_eq!(
            approval["status"]["conditions"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(approval["status"]["conditions"][0]["lastUpdateTime"], now);
        let mut status = new.clone();
        prepare_for_update(
            info(),
            &mut status,
            &new,
            &old,
            Some(Subresource::Status),
            now,
        );
        assert_eq!(status["status"]["certificate"], "Zm9v");
        assert_eq!(
            status["status"]["conditions"],
            json!([{"type": "Failed", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now}])
        );
    }
}

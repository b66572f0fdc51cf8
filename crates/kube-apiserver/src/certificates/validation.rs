//! Validation of `certificates.k8s.io/v1` CertificateSigningRequests, as upstream's
//! `pkg/apis/certificates/validation`: the request must be a PEM PKCS#10 request with
//! a valid signature, `signerName` a qualified `domain/path`, `usages` known and
//! unique, conditions well formed, and updates may not drop conditions, add
//! Approved/Denied outside `/approval`, or set `status.certificate` outside `/status`.

use api_types::{StatusCause, Subresource};
use base64::Engine;
use serde_json::{json, Value};

/// Every usage upstream accepts (`allValidUsages`), sorted as upstream lists them.
pub const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// The signer name upstream's v1 API refuses.
const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

fn decode_b64(v: Option<&Value>) -> Option<Vec<u8>> {
    let s = v?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The DER of the PEM `CERTIFICATE REQUEST` in `spec.request` (base64 in JSON).
pub fn request_der(csr: &Value) -> Result<Vec<u8>, String> {
    let pem_bytes = decode_b64(csr.pointer("/spec/request")).unwrap_or_default();
    let text = std::str::from_utf8(&pem_bytes)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    match x509_parser::pem::parse_x509_pem(text.trim_start().as_bytes()) {
        Ok((_, pem)) if pem.label == "CERTIFICATE REQUEST" => Ok(pem.contents),
        _ => Err("PEM block type must be CERTIFICATE REQUEST".to_string()),
    }
}

/// Upstream's `validateCSR`: parses the request and checks its signature.
pub fn check_request(csr: &Value) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let der = request_der(csr)?;
    let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    req.verify_signature()
        .map_err(|e| format!("x509: ECDSA/RSA verification failure: {e}"))
}

/// Upstream's `ValidateSignerName`.
pub fn validate_signer_name(field: &str, name: &str) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(StatusCause::required(field));
        return errs;
    }
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() != 2 {
        errs.push(StatusCause::invalid(
            field,
            &json!(name),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return errs;
    }
    let (domain, path) = (segments[0], segments[1]);
    if domain.len() > 253 {
        errs.push(StatusCause::invalid(
            field,
            &json!(domain),
            "must be no more than 253 characters",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        let msgs = api_types::validation::names::is_dns1123_label(label);
        if let Some(first) = msgs.first() {
            errs.push(StatusCause::invalid(
                field,
                &json!(domain),
                &format!("validating label {label:?}: {first}"),
            ));
            break;
        }
    }
    if labels.len() < 2 {
        errs.push(StatusCause::invalid(
            field,
            &json!(domain),
            "should be a domain with at least two segments separated by dots",
        ));
    }
    if path.is_empty()
        || path.len() > 253
        || !api_types::validation::names::is_dns1123_subdomain(path).is_empty()
    {
        errs.push(StatusCause::invalid(
            field,
            &json!(path),
            "validating path: must be a lowercase RFC 1123 subdomain",
        ));
    }
    errs
}

fn conditions(csr: &Value) -> Vec<Value> {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn of_type(conds: &[Value], t: &str) -> Vec<Value> {
    conds
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some(t))
        .cloned()
        .collect()
}

fn certificate(csr: &Value) -> Option<&str> {
    csr.pointer("/status/certificate")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Upstream's `validateCertificate`: only CERTIFICATE PEM blocks that parse.
fn validate_certificate(b64: &str) -> Result<(), String> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    let mut rest: &[u8] = &data;
    let mut blocks = 0;
    loop {
        let trimmed = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(&rest[rest.len()..], |i| &rest[i..]);
        if trimmed.is_empty() {
            break;
        }
        let (remaining, pem) = x509_parser::pem::parse_x509_pem(trimmed)
            .map_err(|_| "must contain at least one CERTIFICATE PEM block".to_string())?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                pem.label
            ));
        }
        x509_parser::parse_x509_certificate(&pem.contents)
            .map_err(|e| format!("x509: malformed certificate: {e}"))?;
        blocks += 1;
        rest = remaining;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// The rules on a whole object (create, and the new object of an update).
fn validate_object(csr: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    if let Err(e) = check_request(csr) {
        errs.push(StatusCause::invalid(
            "spec.request",
            &json!("<request data>"),
            &e,
        ));
    }
    let usages: Vec<&str> = csr
        .pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|u| u.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    if usages.is_empty() {
        errs.push(StatusCause::required("spec.usages"));
    }
    let tolerate_old_usages = old.is_some();
    if !tolerate_old_usages {
        let mut seen = std::collections::HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !VALID_USAGES.contains(u) {
                errs.push(StatusCause::not_supported(
                    format!("spec.usages[{i}]"),
                    &json!(u),
                    VALID_USAGES,
                ));
            }
            if !seen.insert(*u) {
                errs.push(StatusCause::duplicate(
                    format!("spec.usages[{i}]"),
                    &json!(u),
                ));
            }
        }
    }
    let signer = csr
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let legacy_ok = old
        .and_then(|o| o.pointer("/spec/signerName"))
        .and_then(Value::as_str)
        == Some(LEGACY_UNKNOWN_SIGNER);
    if signer == LEGACY_UNKNOWN_SIGNER && !legacy_ok {
        errs.push(StatusCause::invalid(
            "spec.signerName",
            &json!(signer),
            "the legacy signerName is not allowed via this API version",
        ));
    } else if !legacy_ok {
        errs.extend(validate_signer_name("spec.signerName", signer));
    }
    if let Some(secs) = csr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        if secs < 600 {
            errs.push(StatusCause::invalid(
                "spec.expirationSeconds",
                &json!(secs),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
    }
    errs.extend(validate_conditions(csr, old));
    let same_cert = old.is_some_and(|o| certificate(o) == certificate(csr));
    if !same_cert {
        if let Some(cert) = certificate(csr) {
            if let Err(e) = validate_certificate(cert) {
                errs.push(StatusCause::invalid(
                    "status.certificate",
                    &json!("<certificate data>"),
                    &e,
                ));
            }
        }
    }
    errs
}

fn validate_conditions(csr: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let old_conds = old.map(conditions).unwrap_or_default();
    let old_has = |t: &str| !of_type(&old_conds, t).is_empty();
    let allow_both = old_has("Approved") && old_has("Denied");
    let mut seen = std::collections::HashSet::new();
    let old_dup = {
        let mut s = std::collections::HashSet::new();
        old_conds.iter().any(|c| {
            !s.insert(
                c.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
    };
    let (mut approved, mut denied) = (false, false);
    for (i, c) in conditions(csr).iter().enumerate() {
        let ty = c.get("type").and_then(Value::as_str).unwrap_or("");
        let status = c.get("status").and_then(Value::as_str).unwrap_or("");
        let path = format!("status.conditions[{i}]");
        if ty.is_empty() {
            errs.push(StatusCause::required(format!("{path}.type")));
        }
        let allowed: &[&str] = if matches!(ty, "Approved" | "Denied" | "Failed") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(StatusCause::required(format!("{path}.status")));
        } else if !allowed.contains(&status) {
            errs.push(StatusCause::not_supported(
                format!("{path}.status"),
                &json!(status),
                allowed,
            ));
        }
        if !allow_both {
            match ty {
                "Approved" => {
                    approved = true;
                    if denied {
                        errs.push(StatusCause::invalid(
                            format!("{path}.type"),
                            &json!(ty),
                            "Approved and Denied conditions are mutually exclusive",
                        ));
                    }
                }
                "Denied" => {
                    denied = true;
                    if approved {
                        errs.push(StatusCause::invalid(
                            format!("{path}.type"),
                            &json!(ty),
                            "Approved and Denied conditions are mutually exclusive",
                        ));
                    }
                }
                _ => {}
            }
        }
        if !old_dup && !seen.insert(ty.to_string()) {
            errs.push(StatusCause::duplicate(format!("{path}.type"), &json!(ty)));
        }
    }
    errs
}

/// Create: the object rules.
pub fn validate_create(csr: &Value) -> Vec<StatusCause> {
    validate_object(csr, None)
}

/// Update through the main resource (`sub` None), `/status` or `/approval`.
pub fn validate_update(csr: &Value, old: &Value, sub: Option<Subresource>) -> Vec<StatusCause> {
    let mut errs = validate_object(csr, Some(old));
    let (new_conds, old_conds) = (conditions(csr), conditions(old));
    for t in ["Approved", "Denied", "Failed"] {
        if of_type(&new_conds, t).len() < of_type(&old_conds, t).len() {
            errs.push(StatusCause::forbidden(
                "status.conditions",
                &format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    if sub != Some(Subresource::Approval) {
        for t in ["Approved", "Denied"] {
            let (n, o) = (of_type(&new_conds, t), of_type(&old_conds, t));
            if n.len() > o.len() {
                errs.push(StatusCause::forbidden(
                    "status.conditions",
                    &format!("updates may not add a condition of type {t:?}"),
                ));
            } else if n.len() == o.len() && n != o {
                errs.push(StatusCause::forbidden(
                    "status.conditions",
                    &format!("updates may not modify a condition of type {t:?}"),
                ));
            }
        }
    }
    if certificate(csr) != certificate(old) {
        if sub != Some(Subresource::Status) {
            errs.push(StatusCause::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if certificate(old).is_some() {
            errs.push(StatusCause::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSR object around a fresh PKCS#10 request.
    pub(crate) fn csr_object(cn: &str, org: Option<&str>) -> Value {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, cn);
        if let Some(o) = org {
            dn.push(rcgen::DnType::OrganizationName, o);
        }
        params.distinguished_name = dn;
        let pem = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        json!({"metadata": {"name": "c"}, "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["digital signature", "client auth"],
        }})
    }

    fn fields(errs: &[StatusCause]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn valid_request_passes() {
        let c = csr_object("jane", Some("devs"));
        assert!(validate_create(&c).is_empty(), "{:?}", validate_create(&c));
    }

    #[test]
    fn garbage_request_signer_and_usages_fail() {
        let mut c = csr_object("jane", None);
        c["spec"]["request"] = json!(base64::engine::general_purpose::STANDARD.encode("not pem"));
        c["spec"]["signerName"] = json!("");
        c["spec"]["usages"] = json!(["client auth", "client auth", "flying"]);
        let errs = validate_create(&c);
        let f = fields(&errs);
        assert!(f.contains(&"spec.request".to_string()));
        assert!(f.contains(&"spec.signerName".to_string()));
        assert!(f.contains(&"spec.usages[1]".to_string()));
        assert!(f.contains(&"spec.usages[2]".to_string()));
        assert!(errs.iter().any(|e| {
            e.message
                .contains("PEM block type must be CERTIFICATE REQUEST")
        }));
    }

    #[test]
    fn signer_name_shapes() {
        assert!(validate_signer_name("f", "example.com/signer").is_empty());
        assert!(!validate_signer_name("f", "example/signer").is_empty());
        assert!(!validate_signer_name("f", "example.com").is_empty());
        assert!(!validate_signer_name("f", "a.com/b/c").is_empty());
    }

    #[test]
    fn approval_rules_by_subresource() {
        let old = csr_object("jane", None);
        let mut approved = old.clone();
        approved["status"] =
            json!({"conditions": [{"type": "Approved", "status": "True", "reason": "R"}]});
        assert!(
            !validate_update(&approved, &old, None).is_empty(),
            "main resource cannot approve"
        );
        assert!(
            !validate_update(&approved, &old, Some(Subresource::Status)).is_empty(),
            "status cannot approve"
        );
        assert!(validate_update(&approved, &old, Some(Subresource::Approval)).is_empty());
        let mut both = approved.clone();
        both["status"]["conditions"]
            .as_array_mut()
            .expect("arr")
            .push(json!({"type": "Denied", "status": "True"}));
        assert!(
            !validate_update(&both, &approved, Some(Subresource::Approval)).is_empty(),
            "mutually exclusive"
        );
        assert!(
            !validate_update(&old, &approved, Some(Subresource::Approval)).is_empty(),
            "cannot remove"
        );
    }

    #[test]
    fn certificate_only_through_status_and_only_once() {
        let old = csr_object("jane", None);
        let ca = rcgen::CertificateParams::new(vec!["x".to_string()])
            .expect("p")
            .self_signed(&rcgen::KeyPair::generate().expect("k"))
            .expect("c");
        let mut issued = old.clone();
        issued["status"] =
            json!({"certificate": base64::engine::general_purpose::STANDARD.encode(ca.pem())});
        assert!(validate_update(&issued, &old, Some(Subresource::Status)).is_empty());
        assert!(!validate_update(&issued, &old, None).is_empty());
        let mut garbage = old.clone();
        garbage["status"] =
            json!({"certificate": base64::engine::general_purpose::STANDARD.encode("junk")});
        assert!(!validate_update(&garbage, &old, Some(Subresource::Status)).is_empty());
        let mut again = issued.clone();
        again["status"]["certificate"] = json!(
            base64::engine::general_purpose::STANDARD.encode(format!("{}{}", ca.pem(), ca.pem()))
        );
        assert!(
            !validate_update(&again, &issued, Some(Subresource::Status)).is_empty(),
            "cannot modify"
        );
    }
}

//! The certificates controllers (upstream `pkg/controller/certificates`):
//! `csrapproving` auto-approves kubelet client CSRs after a SubjectAccessReview,
//! `csrsigning` issues certificates for approved CSRs of the `kubernetes.io/*` signers
//! with the cluster signing CA, `csrcleaner` deletes stale CSRs.

pub mod approver;
pub mod authority;
pub mod cleaner;
pub mod signer;

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use x509_parser::prelude::FromDer;

use crate::util::{Error, Result};

pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET_SIGNER: &str =
    "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// Runs `reconcile` for every CertificateSigningRequest through kube-runtime's
/// Controller until the watch ends. Failed syncs are requeued by `error_policy`
/// and only logged here, at debug, under the controller's `name`.
async fn run_controller<Ctx, Fut>(
    name: &'static str,
    client: kube::Client,
    reconcile: impl FnMut(Arc<CertificateSigningRequest>, Arc<Ctx>) -> Fut + Send + 'static,
    error_policy: impl Fn(Arc<CertificateSigningRequest>, &Error, Arc<Ctx>) -> Action
        + Send
        + Sync
        + 'static,
    state: Arc<Ctx>,
) where
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let mut stream = Controller::new(
        Api::<CertificateSigningRequest>::all(client),
        watcher::Config::default(),
    )
    .run(reconcile, error_policy, state)
    .boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("{name}: {err}");
        }
    }
}

/// What the signers and the approver read from a PKCS#10 request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedRequest {
    pub der: Vec<u8>,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: usize,
    pub emails: usize,
    pub uris: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotPem,
    #[error("x509: malformed certificate request: {0}")]
    Malformed(String),
}

/// Upstream's `ParseCSR` of `spec.request` (already base64-decoded by the client).
pub fn parse_request(pem_bytes: &[u8]) -> Result<ParsedRequest, ParseError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_bytes).map_err(|_| ParseError::NotPem)?;
    if pem.label != "CERTIFICATE REQUEST" {
        return Err(ParseError::NotPem);
    }
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .map_err(|e| ParseError::Malformed(e.to_string()))?;
    let info = &req.certification_request_info;
    let mut out = ParsedRequest {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("")
            .to_string(),
        organizations: info
            .subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect(),
        ..Default::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                use x509_parser::extensions::GeneralName;
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push((*d).to_string()),
                    GeneralName::IPAddress(_) => out.ip_addresses += 1,
                    GeneralName::RFC822Name(_) => out.emails += 1,
                    GeneralName::URI(_) => out.uris += 1,
                    _ => {}
                }
            }
        }
    }
    out.der = pem.contents;
    Ok(out)
}

fn same_set(usages: &[String], want: &[&str]) -> bool {
    let have: std::collections::BTreeSet<&str> = usages.iter().map(String::as_str).collect();
    let want: std::collections::BTreeSet<&str> = want.iter().copied().collect();
    have == want
}

/// Upstream's `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(req: &ParsedRequest, usages: &[String]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.ip_addresses > 0 {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    if !same_set(
        usages,
        &["client auth", "digital signature", "key encipherment"],
    ) && !same_set(usages, &["client auth", "digital signature"])
    {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(req: &ParsedRequest, usages: &[String]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses == 0 {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !same_set(
        usages,
        &["digital signature", "key encipherment", "server auth"],
    ) && !same_set(usages, &["digital signature", "server auth"])
    {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream's `validAPIServerClientUsages`.
pub fn validate_apiserver_client_usages(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

/// The decoded `spec.request` PEM.
pub fn request_pem(csr: &CertificateSigningRequest) -> &[u8] {
    &csr.spec.request.0
}

pub fn usages(csr: &CertificateSigningRequest) -> Vec<String> {
    csr.spec.usages.clone().unwrap_or_default()
}

/// Whether a condition of this type with status True is present.
pub fn has_true_condition(csr: &CertificateSigningRequest, ty: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

/// Upstream's `GetCertApprovalCondition`: (approved, denied).
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let conds = csr.status.as_ref().and_then(|s| s.conditions.as_ref());
    let has = |t: &str| conds.is_some_and(|cs| cs.iter().any(|c| c.type_ == t));
    (has("Approved"), has("Denied"))
}

pub fn has_certificate(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// base64 of bytes, for logs and tests.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PEM CSR with this subject and DNS SANs.
    pub fn make_request(cn: &str, org: Option<&str>, dns: &[&str]) -> (String, rcgen::KeyPair) {
        let groups: Vec<&str> = org.into_iter().collect();
        test_support::csr_pem(cn, &groups, dns).expect("csr")
    }

    fn u(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelet_client_rules() {
        let (pem, _) = make_request("system:node:n1", Some("system:nodes"), &[]);
        let req = parse_request(pem.as_bytes()).expect("parse");
        assert_eq!(req.common_name, "system:node:n1");
        assert!(validate_kubelet_client(&req, &u(&["digital signature", "client auth"])).is_ok());
        assert!(validate_kubelet_client(
            &req,
            &u(&["digital signature", "key encipherment", "client auth"])
        )
        .is_ok());
        assert!(validate_kubelet_client(&req, &u(&["server auth"])).is_err());
        let (pem, _) = make_request("jane", Some("system:nodes"), &[]);
        let req = parse_request(pem.as_bytes()).expect("parse");
        assert_eq!(
            validate_kubelet_client(&req, &u(&["client auth", "digital signature"]))
                .err()
                .as_deref(),
            Some("subject common name does not begin with system:node:")
        );
        let (pem, _) = make_request("system:node:n1", Some("system:nodes"), &["n1.example"]);
        let req = parse_request(pem.as_bytes()).expect("parse");
        assert!(validate_kubelet_client(&req, &u(&["client auth", "digital signature"])).is_err());
        assert!(validate_kubelet_serving(&req, &u(&["server auth", "digital signature"])).is_ok());
    }

    #[test]
    fn apiserver_client_usages() {
        assert!(validate_apiserver_client_usages(&u(&["client auth"])).is_ok());
        assert_eq!(
            validate_apiserver_client_usages(&u(&["server auth", "client auth"]))
                .err()
                .as_deref(),
            Some("invalid usage for client certificate: server auth")
        );
        assert!(validate_apiserver_client_usages(&u(&["digital signature"])).is_err());
        assert_eq!(parse_request(b"junk").err(), Some(ParseError::NotPem));
    }
}

//! `csrsigning` (upstream `pkg/controller/certificates/signer`): for approved, not
//! failed, not yet issued CSRs of kubernetes.io/kube-apiserver-client,
//! kube-apiserver-client-kubelet and kubelet-serving, checks the request against the
//! signer's rules (a violation adds a `Failed` condition, reason
//! `SignerValidationFailure`) and writes `status.certificate` signed by
//! `--cluster-signing-cert-file`/`--cluster-signing-key-file`, valid for
//! `--cluster-signing-duration` or the CSR's shorter `spec.expirationSeconds`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;

use super::authority::CertificateAuthority;
use super::{
    approval, has_certificate, has_true_condition, parse_request, request_pem, usages,
    validate_apiserver_client_usages, validate_kubelet_client, validate_kubelet_serving,
    ParsedRequest, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
    KUBE_APISERVER_CLIENT_SIGNER,
};
use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::{ApiContext, Error, Result};

struct Ctx {
    client: kube::Client,
    ca: CertificateAuthority,
    duration: Duration,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let (Some(cert), Some(key)) = (
        ctx.options.cluster_signing_cert_file.clone(),
        ctx.options.cluster_signing_key_file.clone(),
    ) else {
        tracing::info!(
            "csrsigning: --cluster-signing-cert-file/--cluster-signing-key-file not set; not signing"
        );
        return Ok(());
    };
    let ca = CertificateAuthority::load(&cert, &key)?;
    let client = ctx.client.clone();
    let state = Arc::new(Ctx {
        client: client.clone(),
        ca,
        duration: ctx.options.cluster_signing_duration,
        backoff: KeyBackoff::default(),
    });
    super::run_controller("csrsigning", client, reconcile, error_policy, state).await;
    Ok(())
}

/// The signer's rules for a request: Ok(true) sign, Ok(false) not ours, Err why not.
fn check(signer: &str, req: &ParsedRequest, usages: &[String]) -> Result<bool, String> {
    match signer {
        KUBE_APISERVER_CLIENT_KUBELET_SIGNER => validate_kubelet_client(req, usages).map(|()| true),
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(req, usages).map(|()| true),
        KUBE_APISERVER_CLIENT_SIGNER => validate_apiserver_client_usages(usages).map(|()| true),
        _ => Ok(false),
    }
}

/// The certificate lifetime: the signing duration, or the CSR's shorter request.
fn ttl(max: Duration, expiration_seconds: Option<i32>) -> Duration {
    match expiration_seconds {
        Some(s) if s >= 600 => max.min(Duration::from_secs(s as u64)),
        _ => max,
    }
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let (approved, _) = approval(&csr);
    if !approved || has_true_condition(&csr, "Failed") || has_certificate(&csr) {
        return Ok(Action::await_change());
    }
    let signer = csr.spec.signer_name.as_str();
    if !matches!(
        signer,
        KUBE_APISERVER_CLIENT_SIGNER
            | KUBE_APISERVER_CLIENT_KUBELET_SIGNER
            | KUBELET_SERVING_SIGNER
    ) {
        return Ok(Action::await_change());
    }
    let req = parse_request(request_pem(&csr)).map_err(|e| Error::Invalid {
        object: name.clone(),
        message: format!("unable to parse csr {name:?}: {e}"),
    })?;
    let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
    let mut updated = (*csr).clone();
    match check(signer, &req, &usages(&csr)) {
        Ok(false) => return Ok(Action::await_change()),
        Err(why) => {
            tracing::info!(csr = %name, signer, reason = %why, "csr failed signer validation");
            updated
                .status
                .get_or_insert_with(Default::default)
                .conditions
                .get_or_insert_with(Vec::new)
                .push(CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(why),
                    last_update_time: Some(crate::util::time::now()),
                    ..Default::default()
                });
        }
        Ok(true) => {
            let pem = ctx
                .ca
                .sign(
                    &req.der,
                    &usages(&csr),
                    ttl(ctx.duration, csr.spec.expiration_seconds),
                )
                .map_err(|e| Error::Invalid {
                    object: name.clone(),
                    message: format!("error auto signing csr: {e}"),
                })?;
            updated
                .status
                .get_or_insert_with(Default::default)
                .certificate = Some(ByteString(pem.into_bytes()));
        }
    }
    api.replace_status(&name, &PostParams::default(), &updated)
        .await
        .ctx(|| format!("updating status of csr {name}"))?;
    if has_certificate(&updated) {
        tracing::info!(csr = %name, signer, "issued certificate");
    }
    ctx.backoff.forget(&name);
    Ok(Action::await_change())
}

fn error_policy(csr: Arc<CertificateSigningRequest>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let name = csr.metadata.name.clone().unwrap_or_default();
    tracing::warn!(csr = %name, "csrsigning sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&name).max(Duration::from_millis(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_the_shorter() {
        let year = Duration::from_secs(8760 * 3600);
        assert_eq!(ttl(year, None), year);
        assert_eq!(ttl(year, Some(3600)), Duration::from_secs(3600));
        assert_eq!(
            ttl(Duration::from_secs(60), Some(3600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn signer_rules() {
        let (pem, _) = super::super::tests::make_request("jane", None, &[]);
        let req = parse_request(pem.as_bytes()).expect("parse");
        let u = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check(KUBE_APISERVER_CLIENT_SIGNER, &req, &u(&["client auth"])),
            Ok(true)
        );
        assert!(check(
            KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
            &req,
            &u(&["client auth", "digital signature"])
        )
        .is_err());
        assert_eq!(
            check("example.com/other", &req, &u(&["client auth"])),
            Ok(false)
        );
    }
}

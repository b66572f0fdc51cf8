//! `csrapproving` (upstream `pkg/controller/certificates/approver/sarapprove.go`):
//! approves kubelet client CSRs (signer kube-apiserver-client-kubelet, CN
//! `system:node:<name>`, O `system:nodes`, client usages) when a SubjectAccessReview
//! says the requester may `create` `certificatesigningrequests/selfnodeclient` (a
//! renewal: CN equals the requester) or `certificatesigningrequests/nodeclient`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;

use super::{
    approval, has_certificate, parse_request, request_pem, usages, validate_kubelet_client,
    KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
};
use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::{ApiContext, Error, Result};

pub const REASON: &str = "AutoApproved";
pub const NODE_CLIENT_MESSAGE: &str =
    "Auto approving kubelet client certificate after SubjectAccessReview.";
pub const SELF_NODE_CLIENT_MESSAGE: &str =
    "Auto approving self kubelet client certificate after SubjectAccessReview.";

struct Ctx {
    client: kube::Client,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let state = Arc::new(Ctx {
        client: client.clone(),
        backoff: KeyBackoff::default(),
    });
    super::run_controller("csrapproving", client, reconcile, error_policy, state).await;
    Ok(())
}

/// One recognizer: which requests it covers, the permission a SubjectAccessReview
/// checks, and the approval message.
struct Recognizer {
    subresource: &'static str,
    message: &'static str,
    self_only: bool,
}

const RECOGNIZERS: &[Recognizer] = &[
    Recognizer {
        subresource: "selfnodeclient",
        message: SELF_NODE_CLIENT_MESSAGE,
        self_only: true,
    },
    Recognizer {
        subresource: "nodeclient",
        message: NODE_CLIENT_MESSAGE,
        self_only: false,
    },
];

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let (approved, denied) = approval(&csr);
    if has_certificate(&csr)
        || approved
        || denied
        || csr.spec.signer_name != KUBE_APISERVER_CLIENT_KUBELET_SIGNER
    {
        return Ok(Action::await_change());
    }
    let req = parse_request(request_pem(&csr)).map_err(|e| Error::Invalid {
        object: name.clone(),
        message: format!("unable to parse csr {name:?}: {e}"),
    })?;
    if validate_kubelet_client(&req, &usages(&csr)).is_err() {
        return Ok(Action::await_change());
    }
    let requester = csr.spec.username.clone().unwrap_or_default();
    let mut tried = Vec::new();
    for r in RECOGNIZERS {
        if r.self_only && req.common_name != requester {
            continue;
        }
        tried.push(r.subresource);
        if !authorize(&ctx.client, &csr, r.subresource).await? {
            continue;
        }
        let mut approved = (*csr).clone();
        let status = approved.status.get_or_insert_with(Default::default);
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some(REASON.into()),
                message: Some(r.message.into()),
                last_update_time: Some(crate::util::time::now()),
                ..Default::default()
            });
        Api::<CertificateSigningRequest>::all(ctx.client.clone())
            .replace_subresource("approval", &name, &PostParams::default(), &approved)
            .await
            .ctx(|| format!("approving csr {name}"))?;
        tracing::info!(csr = %name, requester = %requester, permission = r.subresource, "approved kubelet client certificate request");
        ctx.backoff.forget(&name);
        return Ok(Action::await_change());
    }
    // Upstream's IgnorableError: recognized but not allowed; retried on change only.
    tracing::debug!(csr = %name, ?tried, "recognized csr but subject access review was not approved");
    Ok(Action::await_change())
}

/// A SubjectAccessReview for the requester of the CSR.
async fn authorize(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> Result<bool> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(subresource.into()),
                version: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .ctx(|| "creating subjectaccessreview".to_string())?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

fn error_policy(csr: Arc<CertificateSigningRequest>, err: &Error, ctx: Arc<Ctx>) -> Action {
    let name = csr.metadata.name.clone().unwrap_or_default();
    tracing::warn!(csr = %name, "csrapproving sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&name).max(Duration::from_millis(5)))
}

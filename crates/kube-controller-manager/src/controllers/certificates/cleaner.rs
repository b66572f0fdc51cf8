//! `csrcleaner` (upstream `pkg/controller/certificates/cleaner`): every hour deletes
//! CSRs that are done with: approved (issued) or denied/failed for more than an hour,
//! pending for more than a day, or whose issued certificate has expired.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, DeleteParams, ListParams};

use super::{approval, has_true_condition};
use crate::context::ControllerContext;
use crate::util::time::seconds_since;

const POLL: Duration = Duration::from_secs(3600);
const APPROVED_EXPIRATION: i64 = 3600;
const DENIED_EXPIRATION: i64 = 3600;
const PENDING_EXPIRATION: i64 = 24 * 3600;

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for csr in list.items {
                    if is_stale(&csr) {
                        let name = csr.metadata.name.clone().unwrap_or_default();
                        match api.delete(&name, &DeleteParams::default()).await {
                            Ok(_) => {
                                tracing::info!(csr = %name, "cleaned up stale certificate signing request")
                            }
                            Err(err) => tracing::debug!(csr = %name, "deleting stale csr: {err}"),
                        }
                    }
                }
            }
            Err(err) => tracing::warn!("csrcleaner: listing csrs: {err}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Seconds since the newest condition of `ty` was updated (or since creation).
fn age_of(csr: &CertificateSigningRequest, ty: &str) -> i64 {
    let cond_time = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == ty))
        .and_then(|c| {
            c.last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
        });
    cond_time
        .or(csr.metadata.creation_timestamp.as_ref())
        .map(seconds_since)
        .unwrap_or(0)
}

fn certificate_expired(csr: &CertificateSigningRequest) -> bool {
    let Some(pem) = csr.status.as_ref().and_then(|s| s.certificate.as_ref()) else {
        return false;
    };
    let Ok((_, p)) = x509_parser::pem::parse_x509_pem(&pem.0) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&p.contents) else {
        return false;
    };
    cert.validity().not_after.timestamp() < k8s_openapi::jiff::Timestamp::now().as_second()
}

pub fn is_stale(csr: &CertificateSigningRequest) -> bool {
    let (approved, denied) = approval(csr);
    if certificate_expired(csr) {
        return true;
    }
    if denied {
        return age_of(csr, "Denied") > DENIED_EXPIRATION;
    }
    if has_true_condition(csr, "Failed") {
        return age_of(csr, "Failed") > DENIED_EXPIRATION;
    }
    if approved {
        return age_of(csr, "Approved") > APPROVED_EXPIRATION;
    }
    age_of(csr, "") > PENDING_EXPIRATION
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn csr(created_ago: i64, cond: Option<(&str, i64)>) -> CertificateSigningRequest {
        let at = |ago: i64| {
            Time(Timestamp::from_second(Timestamp::now().as_second() - ago).expect("ts"))
        };
        let mut c = CertificateSigningRequest::default();
        c.metadata.creation_timestamp = Some(at(created_ago));
        if let Some((ty, ago)) = cond {
            c.status = Some(CertificateSigningRequestStatus {
                conditions: Some(vec![CertificateSigningRequestCondition {
                    type_: ty.into(),
                    status: "True".into(),
                    last_update_time: Some(at(ago)),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        c
    }

    #[test]
    fn staleness() {
        assert!(!is_stale(&csr(3600, None)));
        assert!(is_stale(&csr(25 * 3600, None)));
        assert!(!is_stale(&csr(7200, Some(("Approved", 60)))));
        assert!(is_stale(&csr(7200, Some(("Approved", 3700)))));
        assert!(is_stale(&csr(7200, Some(("Denied", 3700)))));
    }
}

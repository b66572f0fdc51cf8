//! `--use-service-account-credentials` (upstream's `SAControllerClientBuilder`): each
//! controller talks to the apiserver as its own ServiceAccount `kube-system/<name>`
//! (bound to `system:controller:<name>` by the apiserver's bootstrap policy). The
//! account is created through the API, its token obtained with a TokenRequest and
//! written to a file the client re-reads every minute; a task renews the token at
//! 80% of its life.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

/// The namespace controller accounts live in.
pub const NAMESPACE: &str = "kube-system";

/// Token lifetime asked for (upstream's controller tokens live an hour).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The ServiceAccount (upstream's client name) a controller runs as.
pub fn service_account_for(controller: &str) -> &str {
    match controller {
        "endpoints-controller" => "endpoint-controller",
        "node-lifecycle-controller" => "node-controller",
        "pod-garbage-collector-controller" => "pod-garbage-collector",
        "root-ca-certificate-publisher-controller" => "root-ca-cert-publisher",
        "serviceaccount-controller" => "service-account-controller",
        "garbage-collector-controller" => "generic-garbage-collector",
        "replicationcontroller-controller" => "replication-controller",
        "daemonset-controller" => "daemon-set-controller",
        "horizontal-pod-autoscaler-controller" => "horizontal-pod-autoscaler",
        "statefulset-controller" => "statefulset-controller",
        "disruption-controller" => "disruption-controller",
        "persistentvolume-binder-controller" => "persistent-volume-binder",
        c if c.starts_with("certificatesigningrequest-") => "certificate-controller",
        other => other,
    }
}

/// Makes sure `kube-system/<account>` exists.
async fn ensure_account(client: &kube::Client, account: &str) -> anyhow::Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(account.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => {
            tracing::info!(account, "created controller service account");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating serviceaccount {NAMESPACE}/{account}")),
    }
}

/// A fresh token for the account and its lifetime.
async fn request_token(client: &kube::Client, account: &str) -> anyhow::Result<(String, Duration)> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(TOKEN_LIFETIME.as_secs() as i64),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer: TokenRequest = api
        .create_subresource("token", account, &PostParams::default(), &req)
        .await
        .with_context(|| format!("requesting a token for serviceaccount {NAMESPACE}/{account}"))?;
    let status = answer
        .status
        .context("TokenRequest answered without status")?;
    let life = status
        .expiration_timestamp
        .0
        .as_second()
        .saturating_sub(k8s_openapi::jiff::Timestamp::now().as_second());
    Ok((status.token, Duration::from_secs(life.max(60) as u64)))
}

fn write_token(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Where token files go: a private directory per process.
fn token_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "kube-controller-manager-{}-tokens",
        std::process::id()
    ));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(dir)
}

/// A client authenticated as `kube-system/<account>`, built from `base` (the
/// controller-manager's own configuration: same server and CA, no other credentials).
/// `admin` (the controller-manager's own client) creates the account and renews the
/// token in the background.
pub async fn client_for(
    admin: &kube::Client,
    base: &kube::Config,
    account: &str,
) -> anyhow::Result<kube::Client> {
    ensure_account(admin, account).await?;
    let (token, life) = request_token(admin, account).await?;
    let path = token_dir()?.join(account);
    write_token(&path, &token)?;
    let mut config = base.clone();
    config.auth_info = kube::config::AuthInfo {
        token_file: Some(path.display().to_string()),
        ..Default::default()
    };
    let client = kube::Client::try_from(config)
        .with_context(|| format!("building a client for {account}"))?;
    let admin = admin.clone();
    let account = account.to_string();
    tokio::spawn(async move {
        let mut wait = life.mul_f64(0.8);
        loop {
            tokio::time::sleep(wait).await;
            match request_token(&admin, &account)
                .await
                .and_then(|(t, l)| write_token(&path, &t).map(|()| l))
            {
                Ok(l) => wait = l.mul_f64(0.8),
                Err(e) => {
                    tracing::warn!(account = %account, "renewing controller token: {e:#}");
                    wait = Duration::from_secs(10);
                }
            }
        }
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_client_names() {
        assert_eq!(
            service_account_for("replicaset-controller"),
            "replicaset-controller"
        );
        assert_eq!(
            service_account_for("endpoints-controller"),
            "endpoint-controller"
        );
        assert_eq!(
            service_account_for("certificatesigningrequest-signing-controller"),
            "certificate-controller"
        );
        assert_eq!(
            service_account_for("garbage-collector-controller"),
            "generic-garbage-collector"
        );
    }
}

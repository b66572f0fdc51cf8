//! Building the API client every daemon uses: the classic `--master` URL or a
//! `--kubeconfig` file (modern setups), with kube-rs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// `--master` / `--kubeconfig`, as upstream's scheduler, controller-manager and proxy take them.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long = "master", env = "KUBE_MASTER_URL")]
    pub master: Option<String>,
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long = "kubeconfig")]
    pub kubeconfig: Option<PathBuf>,
}

impl ClientArgs {
    pub async fn client(&self, user_agent: &str) -> anyhow::Result<kube::Client> {
        build_client(
            self.master.as_deref(),
            self.kubeconfig.as_deref(),
            user_agent,
        )
        .await
    }

    /// The client configuration `client` is built from (e.g. to read its CA).
    pub async fn config(&self, user_agent: &str) -> anyhow::Result<kube::Config> {
        build_config(
            self.master.as_deref(),
            self.kubeconfig.as_deref(),
            user_agent,
        )
        .await
    }
}

/// A client from a master URL and/or kubeconfig; with neither, the in-cluster or
/// default kubeconfig resolution of kube-rs.
pub async fn build_client(
    master: Option<&str>,
    kubeconfig: Option<&Path>,
    user_agent: &str,
) -> anyhow::Result<kube::Client> {
    let config = build_config(master, kubeconfig, user_agent).await?;
    kube::Client::try_from(config).context("building the API client")
}

/// The CA certificates a configuration trusts for the apiserver, as PEM (None for
/// plain HTTP or the system roots).
pub fn root_ca_pem(config: &kube::Config) -> Option<String> {
    use base64::Engine;
    let certs = config.root_cert.as_ref().filter(|c| !c.is_empty())?;
    let mut pem = String::new();
    for der in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Some(pem)
}

/// The configuration behind [`build_client`].
pub async fn build_config(
    master: Option<&str>,
    kubeconfig: Option<&Path>,
    user_agent: &str,
) -> anyhow::Result<kube::Config> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => match master {
            Some(url) => kube::Config::new(
                url.parse()
                    .with_context(|| format!("invalid master URL {url:?}"))?,
            ),
            None => kube::Config::infer()
                .await
                .context("no --master or --kubeconfig given and none could be inferred")?,
        },
    };
    if let Some(url) = master {
        config.cluster_url = url
            .parse()
            .with_context(|| format!("invalid master URL {url:?}"))?;
    }
    config.headers.push((
        http_user_agent(),
        user_agent.parse().context("user agent header")?,
    ));
    Ok(config)
}

fn http_user_agent() -> http::HeaderName {
    http::header::USER_AGENT
}

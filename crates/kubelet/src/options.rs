//! Flags as upstream's kubelet takes them, plus the classic spellings of the
//! RPM-era `/etc/kubernetes/kubelet` (`--api-servers`, `--config` as a manifest
//! directory). `_` and `-` are interchangeable (normalized before parsing).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use kube_common::logging::LoggingArgs;
use serde::Deserialize;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubelet",
    about = "The Kubernetes node agent: runs the pods bound to this node on a CRI runtime.",
    version
)]
pub struct Options {
    /// The IP address for the kubelet to serve on (0.0.0.0 for all interfaces).
    #[arg(long, default_value = "0.0.0.0")]
    pub address: String,
    /// The port for the kubelet to serve on.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// The read-only port: plain HTTP, no authentication, only `/healthz`, `/pods`,
    /// `/stats`, `/metrics`, `/spec` (0 disables it).
    #[arg(long)]
    pub read_only_port: Option<u16>,
    /// File with the x509 certificate for HTTPS on --port (intermediates after the leaf).
    /// Without it and --tls-private-key-file, a self-signed pair is generated in --cert-dir.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// File with the x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Where the TLS certs are: the self-signed serving pair and the bootstrapped client certificate.
    #[arg(long, default_value = "/var/lib/kubelet/pki")]
    pub cert_dir: PathBuf,
    /// Client certificates signed by one of these authorities are authenticated as their
    /// CommonName (user) and Organizations (groups).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Requests not rejected by another authenticator are anonymous (system:anonymous).
    #[arg(long, value_parser = kube_common::flags::parse_go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: Option<bool>,
    /// Authenticate bearer tokens with the TokenReview API.
    #[arg(long, value_parser = kube_common::flags::parse_go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub authentication_token_webhook: Option<bool>,
    /// How long TokenReview answers are cached.
    #[arg(long, value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Option<Duration>,
    /// AlwaysAllow or Webhook (SubjectAccessReview).
    #[arg(long)]
    pub authorization_mode: Option<String>,
    /// How long allowed SubjectAccessReview answers are cached.
    #[arg(long, value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Option<Duration>,
    /// How long denied SubjectAccessReview answers are cached.
    #[arg(long, value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Option<Duration>,
    /// A kubeconfig (bootstrap token) used to get a client certificate when --kubeconfig
    /// does not exist or holds no valid certificate; the result is written to --kubeconfig.
    #[arg(long)]
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// The name this node registers with instead of the hostname.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// Classic: comma-separated API servers (the first is used), plain master URL.
    #[arg(long = "api-servers", value_delimiter = ',')]
    pub api_servers: Vec<String>,
    /// Path to a kubeconfig file for the API connection.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The CRI endpoint (unix socket).
    #[arg(long, default_value = "unix:///run/containerd/containerd.sock")]
    pub container_runtime_endpoint: String,
    /// Directory (or file) of static pod manifests.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// A KubeletConfiguration file, or (classic meaning) a directory of static pod manifests.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The IP address reported as the node's InternalIP.
    #[arg(long)]
    pub node_ip: Option<String>,
    /// Labels to add when registering the node (key=value,...).
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Register the node with the API server.
    #[arg(long, default_value = "true", value_parser = kube_common::flags::parse_go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub register_node: bool,
    /// Directory for kubelet files (volume mounts etc.).
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Where container logs are written (KubeletConfiguration `podLogsDir`).
    #[arg(long)]
    pub pod_logs_dir: Option<PathBuf>,
    /// How often the node status is posted (Go duration).
    #[arg(long, value_parser = parse_duration)]
    pub node_status_update_frequency: Option<Duration>,
    /// Cluster DNS server IPs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain.
    #[arg(long)]
    pub cluster_domain: Option<String>,
    /// The node's pod CIDR (standalone mode; usually set by the controller-manager).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// Maximum pods on this node.
    #[arg(long)]
    pub max_pods: Option<i64>,
    /// Accepted for compatibility, ignored.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub allow_privileged: Option<String>,
    /// Accepted for compatibility, ignored (the sandbox image is containerd's).
    #[arg(long)]
    pub pod_infra_container_image: Option<String>,
    /// Accepted for compatibility, ignored.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub fail_swap_on: Option<String>,
    /// Accepted for compatibility, ignored.
    #[arg(long)]
    pub cgroup_driver: Option<String>,
    /// Accepted for compatibility, ignored.
    #[arg(long)]
    pub container_runtime: Option<String>,
    #[command(flatten)]
    pub logging: LoggingArgs,
}

/// The subset of `kubelet.config.k8s.io/v1beta1` KubeletConfiguration we honour.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub static_pod_path: Option<PathBuf>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
    pub node_status_update_frequency: Option<String>,
    pub pod_logs_dir: Option<PathBuf>,
    pub container_runtime_endpoint: Option<String>,
    pub max_pods: Option<i64>,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    pub read_only_port: Option<u16>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub authentication: FileAuthentication,
    #[serde(default)]
    pub authorization: FileAuthorization,
}

/// KubeletConfiguration `authentication`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAuthentication {
    #[serde(default)]
    pub x509: FileX509,
    #[serde(default)]
    pub webhook: FileWebhook,
    #[serde(default)]
    pub anonymous: FileAnonymous,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileX509 {
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileWebhook {
    pub enabled: Option<bool>,
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct FileAnonymous {
    pub enabled: Option<bool>,
}

/// KubeletConfiguration `authorization`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAuthorization {
    pub mode: Option<String>,
    #[serde(default)]
    pub webhook: FileAuthzWebhook,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAuthzWebhook {
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: Option<String>,
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing KubeletConfiguration {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error("invalid duration {0:?}")]
    Duration(String),
    #[error("unknown authorization mode {0:?} (AlwaysAllow or Webhook)")]
    AuthorizationMode(String),
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    IncompleteTlsPair,
}

/// The settings the kubelet runs with, flags over config file over defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub address: String,
    pub port: u16,
    pub master: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub runtime_endpoint: String,
    pub static_pod_path: Option<PathBuf>,
    pub node_name: Option<String>,
    pub node_ip: Option<String>,
    pub node_labels: Vec<(String, String)>,
    pub register_node: bool,
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub node_status_update_frequency: Duration,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub pod_cidr: Option<String>,
    pub max_pods: i64,
    /// 0: no read-only port.
    pub read_only_port: u16,
    pub tls: crate::tls::TlsSettings,
    pub auth: crate::auth::AuthSettings,
    pub bootstrap_kubeconfig: Option<PathBuf>,
}

/// Go's `time.ParseDuration`; surrounding blanks (from a config file value) are ignored.
pub fn parse_duration(s: &str) -> Result<Duration, kube_common::duration::DurationError> {
    kube_common::duration::parse_go_duration(s.trim())
}

impl Options {
    /// Merges flags with the `--config` file (flags win).
    pub fn settings(&self) -> Result<Settings, Error> {
        let mut static_pod_path = self.pod_manifest_path.clone();
        let mut file = KubeletConfiguration::default();
        if let Some(config) = &self.config {
            if config.is_dir() {
                // Classic meaning: a directory of static pod manifests.
                static_pod_path.get_or_insert_with(|| config.clone());
            } else {
                file = load_config(config)?;
            }
        }
        let frequency = match (
            &self.node_status_update_frequency,
            &file.node_status_update_frequency,
        ) {
            (Some(d), _) => *d,
            (None, Some(s)) => parse_duration(s).map_err(|_| Error::Duration(s.clone()))?,
            (None, None) => Duration::from_secs(10),
        };
        let auth = self.auth_settings(&file)?;
        let tls = match (
            self.tls_cert_file.clone().or(file.tls_cert_file.clone()),
            self.tls_private_key_file
                .clone()
                .or(file.tls_private_key_file.clone()),
        ) {
            (Some(cert), Some(key)) => crate::tls::TlsSettings {
                pair: Some((cert, key)),
                cert_dir: self.cert_dir.clone(),
            },
            (None, None) => crate::tls::TlsSettings {
                pair: None,
                cert_dir: self.cert_dir.clone(),
            },
            _ => return Err(Error::IncompleteTlsPair),
        };
        let default_endpoint = "unix:///run/containerd/containerd.sock";
        let runtime_endpoint = if self.container_runtime_endpoint != default_endpoint {
            self.container_runtime_endpoint.clone()
        } else {
            file.container_runtime_endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint.into())
        };
        Ok(Settings {
            address: if self.address != "0.0.0.0" {
                self.address.clone()
            } else {
                file.address.clone().unwrap_or_else(|| self.address.clone())
            },
            port: if self.port != 10250 {
                self.port
            } else {
                file.port.unwrap_or(self.port)
            },
            master: self.api_servers.iter().find(|s| !s.is_empty()).cloned(),
            kubeconfig: self.kubeconfig.clone(),
            runtime_endpoint,
            static_pod_path: static_pod_path.or(file.static_pod_path.clone()),
            node_name: self
                .hostname_override
                .clone()
                .filter(|h| !h.is_empty())
                .map(|h| h.to_lowercase()),
            node_ip: self.node_ip.clone(),
            node_labels: self
                .node_labels
                .iter()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            register_node: self.register_node,
            root_dir: self.root_dir.clone(),
            pod_logs_dir: self
                .pod_logs_dir
                .clone()
                .or(file.pod_logs_dir.clone())
                .unwrap_or_else(|| "/var/log/pods".into()),
            node_status_update_frequency: frequency,
            cluster_dns: if self.cluster_dns.is_empty() {
                file.cluster_dns.clone().unwrap_or_default()
            } else {
                self.cluster_dns.clone()
            },
            cluster_domain: self
                .cluster_domain
                .clone()
                .or(file.cluster_domain.clone())
                .unwrap_or_else(|| "cluster.local".into()),
            pod_cidr: self.pod_cidr.clone().or(file.pod_cidr.clone()),
            max_pods: self
                .max_pods
                .or(file.max_pods)
                .unwrap_or(crate::node::MAX_PODS),
            read_only_port: self.read_only_port.or(file.read_only_port).unwrap_or(0),
            tls,
            auth,
            bootstrap_kubeconfig: self.bootstrap_kubeconfig.clone(),
        })
    }

    /// Authentication and authorization: flags over the file. Defaults differ as
    /// upstream's: with only flags, the legacy ones (anonymous allowed, no token
    /// webhook, AlwaysAllow); with a KubeletConfiguration file, its v1beta1 defaults
    /// (no anonymous, token webhook, Webhook authorization).
    fn auth_settings(
        &self,
        file: &KubeletConfiguration,
    ) -> Result<crate::auth::AuthSettings, Error> {
        let from_file = self.config.as_ref().is_some_and(|c| !c.is_dir());
        let ttl = |flag: Option<Duration>,
                   file: &Option<String>,
                   default: u64|
         -> Result<Duration, Error> {
            match (flag, file) {
                (Some(d), _) => Ok(d),
                (None, Some(s)) => parse_duration(s).map_err(|_| Error::Duration(s.clone())),
                (None, None) => Ok(Duration::from_secs(default)),
            }
        };
        let mode = self
            .authorization_mode
            .clone()
            .or(file.authorization.mode.clone())
            .unwrap_or_else(|| {
                if from_file {
                    "Webhook".into()
                } else {
                    "AlwaysAllow".into()
                }
            });
        let authorization = match mode.as_str() {
            "AlwaysAllow" => crate::auth::AuthorizationMode::AlwaysAllow,
            "Webhook" => crate::auth::AuthorizationMode::Webhook,
            other => return Err(Error::AuthorizationMode(other.into())),
        };
        Ok(crate::auth::AuthSettings {
            client_ca_file: self.client_ca_file.clone().or(file
                .authentication
                .x509
                .client_ca_file
                .clone()),
            anonymous: self
                .anonymous_auth
                .or(file.authentication.anonymous.enabled)
                .unwrap_or(!from_file),
            token_webhook: self
                .authentication_token_webhook
                .or(file.authentication.webhook.enabled)
                .unwrap_or(from_file),
            token_webhook_cache_ttl: ttl(
                self.authentication_token_webhook_cache_ttl,
                &file.authentication.webhook.cache_ttl,
                120,
            )?,
            authorization,
            authorized_ttl: ttl(
                self.authorization_webhook_cache_authorized_ttl,
                &file.authorization.webhook.cache_authorized_ttl,
                300,
            )?,
            unauthorized_ttl: ttl(
                self.authorization_webhook_cache_unauthorized_ttl,
                &file.authorization.webhook.cache_unauthorized_ttl,
                30,
            )?,
        })
    }
}

fn load_config(path: &Path) -> Result<KubeletConfiguration, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    serde_norway::from_str(&text).map_err(|source| Error::Parse {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let argv = kube_common::flags::normalize_args(
            std::iter::once("kubelet").chain(args.iter().copied()),
            false,
        );
        Options::try_parse_from(argv).expect("flags parse")
    }

    #[test]
    fn classic_flags_and_underscores() {
        let o = parse(&[
            "--address=127.0.0.1",
            "--port=10251",
            "--hostname_override=Node-1",
            "--api_servers=http://m:8080",
            "--allow-privileged=false",
        ]);
        let s = o.settings().expect("settings");
        assert_eq!((s.address.as_str(), s.port), ("127.0.0.1", 10251));
        assert_eq!(s.node_name.as_deref(), Some("node-1"));
        assert_eq!(s.master.as_deref(), Some("http://m:8080"));
        assert_eq!(s.node_status_update_frequency, Duration::from_secs(10));
    }

    #[test]
    fn config_is_a_file_or_a_manifest_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = parse(&[&format!("--config={}", dir.path().display())])
            .settings()
            .expect("settings");
        assert_eq!(s.static_pod_path.as_deref(), Some(dir.path()));

        let file = dir.path().join("kubelet.yaml");
        std::fs::write(
            &file,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\nclusterDNS: [10.254.0.10]\nnodeStatusUpdateFrequency: 5s\nport: 10260\n",
        )
        .expect("write");
        let s = parse(&[&format!("--config={}", file.display())])
            .settings()
            .expect("settings");
        assert_eq!(
            s.static_pod_path.as_deref(),
            Some(Path::new("/etc/kubernetes/manifests"))
        );
        assert_eq!(s.cluster_dns, ["10.254.0.10"]);
        assert_eq!(s.node_status_update_frequency, Duration::from_secs(5));
        assert_eq!(s.port, 10260);
    }

    #[test]
    fn auth_defaults_are_legacy_with_flags_and_secure_with_a_config_file() {
        use crate::auth::AuthorizationMode;
        let s = parse(&[]).settings().expect("settings");
        assert!(
            s.auth.anonymous
                && !s.auth.token_webhook
                && s.auth.authorization == AuthorizationMode::AlwaysAllow
        );
        assert!(s.auth.allows_everyone());
        assert_eq!(
            (s.read_only_port, s.tls.cert_dir.as_path()),
            (0, Path::new("/var/lib/kubelet/pki"))
        );
        let s = parse(&[
            "--anonymous-auth=false",
            "--authentication-token-webhook",
            "--authorization-mode=Webhook",
            "--client-ca-file=/ca.crt",
        ])
        .settings()
        .expect("settings");
        assert!(
            !s.auth.anonymous
                && s.auth.token_webhook
                && s.auth.authorization == AuthorizationMode::Webhook
        );
        assert_eq!(s.auth.client_ca_file.as_deref(), Some(Path::new("/ca.crt")));
        assert!(parse(&["--authorization-mode=RBAC"]).settings().is_err());
        assert!(parse(&["--tls-cert-file=/c"]).settings().is_err());

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("kubelet.yaml");
        std::fs::write(&file, "kind: KubeletConfiguration\nreadOnlyPort: 10255\nauthentication:\n  x509: {clientCAFile: /pki/ca.crt}\n  webhook: {cacheTTL: 30s}\n").expect("write");
        let s = parse(&[&format!("--config={}", file.display())])
            .settings()
            .expect("settings");
        assert!(
            !s.auth.anonymous
                && s.auth.token_webhook
                && s.auth.authorization == AuthorizationMode::Webhook
        );
        assert_eq!(
            (s.read_only_port, s.auth.token_webhook_cache_ttl),
            (10255, Duration::from_secs(30))
        );
        assert_eq!(
            s.auth.client_ca_file.as_deref(),
            Some(Path::new("/pki/ca.crt"))
        );
        let s = parse(&[
            &format!("--config={}", file.display()),
            "--anonymous-auth",
            "--authorization-mode=AlwaysAllow",
        ])
        .settings()
        .expect("settings");
        assert!(s.auth.allows_everyone());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10").is_err());
    }
}

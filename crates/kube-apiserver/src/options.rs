//! Command-line flags, mirroring upstream kube-apiserver (and the classic
//! `/etc/kubernetes/apiserver` spellings: `--address`, `--port`, `--admission-control`).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::Parser;
use kube_common::duration::parse_go_duration as parse_duration;
use kube_common::logging::LoggingArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-apiserver",
    version,
    about = "The Kubernetes API server: validates and configures data for the API objects, stored in etcd."
)]
pub struct Options {
    #[command(flatten)]
    pub logging: LoggingArgs,

    /// List of etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(
        long = "etcd-servers",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_servers: Vec<String>,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long = "etcd-cafile")]
    pub etcd_cafile: Option<PathBuf>,
    /// SSL certification file used to secure etcd communication.
    #[arg(long = "etcd-certfile")]
    pub etcd_certfile: Option<PathBuf>,
    /// SSL key file used to secure etcd communication.
    #[arg(long = "etcd-keyfile")]
    pub etcd_keyfile: Option<PathBuf>,

    /// The IP address on which to serve the insecure port (classic; keep it on loopback).
    #[arg(
        long = "insecure-bind-address",
        alias = "address",
        default_value = "127.0.0.1"
    )]
    pub insecure_bind_address: IpAddr,
    /// The port on which to serve unsecured, unauthenticated access; 0 disables it.
    #[arg(long = "insecure-port", alias = "port", default_value_t = 8080)]
    pub insecure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(
        long = "bind-address",
        alias = "public-address-override",
        default_value = "0.0.0.0"
    )]
    pub bind_address: IpAddr,
    /// The port on which to serve HTTPS with authentication and authorization; 0 disables it.
    #[arg(long = "secure-port", default_value_t = 6443)]
    pub secure_port: u16,
    /// File containing the default x509 certificate for HTTPS.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// The directory where self-signed TLS certs are written when --tls-cert-file is not given.
    #[arg(long = "cert-dir", default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// If set, client certificates signed by one of these authorities are authenticated
    /// with the identity of the certificate's CommonName (user) and Organizations (groups).
    #[arg(long = "client-ca-file")]
    pub client_ca_file: Option<PathBuf>,
    /// If set, the file used to secure the secure port via token authentication (CSV: token,user,uid,"group1,group2").
    #[arg(long = "token-auth-file")]
    pub token_auth_file: Option<PathBuf>,
    /// Enables anonymous requests to the secure port (user system:anonymous).
    #[arg(long = "anonymous-auth", default_value = "true", value_parser = kube_common::flags::parse_go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: bool,
    /// Ordered list of plug-ins to do authorization on the secure port.
    #[arg(
        long = "authorization-mode",
        value_delimiter = ',',
        default_value = "AlwaysAllow"
    )]
    pub authorization_mode: Vec<String>,
    /// File with PEM keys (public or private; RSA or ECDSA) used to verify service account tokens; repeatable.
    #[arg(long = "service-account-key-file", action = clap::ArgAction::Append)]
    pub service_account_key_file: Vec<PathBuf>,
    /// Path to the PEM private key used to sign service account tokens (RS256 or ES256).
    #[arg(long = "service-account-signing-key-file")]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// Issuer of service account tokens (`iss`); the first issues, all are accepted.
    #[arg(long = "service-account-issuer", action = clap::ArgAction::Append)]
    pub service_account_issuer: Vec<String>,
    /// Audiences accepted in tokens; defaults to the service account issuers.
    #[arg(long = "api-audiences", value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Maximum validity of tokens issued by the TokenRequest API (0: no cap).
    #[arg(long = "service-account-max-token-expiration", default_value = "0s", value_parser = parse_duration)]
    pub service_account_max_token_expiration: Duration,
    /// Enable bootstrap tokens (kube-system Secrets of type bootstrap.kubernetes.io/token) for TLS bootstrapping.
    #[arg(long = "enable-bootstrap-token-auth", default_value = "false", value_parser = kube_common::flags::parse_go_bool, num_args = 0..=1, default_missing_value = "true")]
    pub enable_bootstrap_token_auth: bool,
    /// Client certificate the apiserver presents to kubelets.
    #[arg(long = "kubelet-client-certificate")]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Client key the apiserver presents to kubelets.
    #[arg(long = "kubelet-client-key")]
    pub kubelet_client_key: Option<PathBuf>,
    /// CA bundle to verify kubelet serving certificates (unverified without it).
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// The preferred NodeAddressTypes to use for kubelet connections.
    #[arg(long = "kubelet-preferred-address-types", value_delimiter = ',', default_value = DEFAULT_KUBELET_ADDRESS_TYPES)]
    pub kubelet_preferred_address_types: Vec<String>,

    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(
        long = "service-cluster-ip-range",
        alias = "portal-net",
        default_value = "10.0.0.0/24"
    )]
    pub service_cluster_ip_range: String,
    /// A port range to reserve for services with NodePort visibility.
    #[arg(long = "service-node-port-range", default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// Admission plugins to enable in addition to the default ones.
    #[arg(long = "enable-admission-plugins", value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable.
    #[arg(long = "disable-admission-plugins", value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// Deprecated: ordered list of admission plugins (the classic flag).
    #[arg(long = "admission-control", value_delimiter = ',')]
    pub admission_control: Vec<String>,

    /// Amount of time to retain events.
    #[arg(long = "event-ttl", default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: Duration,
    /// The maximum number of non-mutating requests in flight at a given time.
    #[arg(long = "max-requests-inflight", default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// The maximum number of mutating requests in flight at a given time.
    #[arg(long = "max-mutating-requests-inflight", default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// Number of events kept per resource in the watch cache window.
    #[arg(long = "watch-cache-size", default_value_t = 10_000)]
    pub watch_cache_size: usize,
    /// If true, allow privileged containers (accepted for compatibility).
    #[arg(long = "allow-privileged", num_args = 0..=1, default_missing_value = "true", value_parser = kube_common::flags::parse_go_bool)]
    pub allow_privileged: Option<bool>,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long = "advertise-address")]
    pub advertise_address: Option<IpAddr>,
    /// Port of kubelets (classic flag; accepted).
    #[arg(long = "kubelet-port", default_value_t = 10250)]
    pub kubelet_port: u16,

    /// File with the encryption-at-rest configuration (apiserver.config.k8s.io/v1 EncryptionConfiguration).
    #[arg(long = "encryption-provider-config")]
    pub encryption_provider_config: Option<PathBuf>,

    /// Path of the audit log (`-` = standard output); auditing is off without it.
    #[arg(long = "audit-log-path")]
    pub audit_log_path: Option<String>,
    /// Path to the audit policy file (audit.k8s.io/v1 Policy).
    #[arg(long = "audit-policy-file")]
    pub audit_policy_file: Option<PathBuf>,
    /// Maximum size in megabytes of the audit log file before it gets rotated (0: no rotation).
    #[arg(long = "audit-log-maxsize", default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// Maximum number of old audit log files to retain (0: no limit).
    #[arg(long = "audit-log-maxbackup", default_value_t = 0)]
    pub audit_log_maxbackup: u64,
    /// Maximum number of days to retain old audit log files (accepted).
    #[arg(long = "audit-log-maxage", default_value_t = 0)]
    pub audit_log_maxage: u64,
    /// Format of saved audits (only `json` is supported).
    #[arg(long = "audit-log-format", default_value = "json")]
    pub audit_log_format: String,
}

/// `--kubelet-preferred-address-types` default: kubeadm's order (upstream's binary
/// default puts Hostname first, which needs node names that resolve).
pub const DEFAULT_KUBELET_ADDRESS_TYPES: &str =
    "InternalIP,ExternalIP,Hostname,InternalDNS,ExternalDNS";

impl Options {
    /// The admission plugins in effect: the classic `--admission-control` list when
    /// given, else upstream's default set plus `--enable-admission-plugins`, minus the
    /// disabled ones.
    pub fn admission_plugins(&self) -> Vec<String> {
        let mut plugins: Vec<String> = if !self.admission_control.is_empty() {
            self.admission_control.clone()
        } else {
            let mut d: Vec<String> = [
                "NamespaceLifecycle",
                "LimitRanger",
                "ServiceAccount",
                "DefaultTolerationSeconds",
                "PodSecurity",
                "ResourceQuota",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            for p in &self.enable_admission_plugins {
                if !d.contains(p) {
                    d.push(p.clone());
                }
            }
            d
        };
        plugins.retain(|p| !p.is_empty() && !self.disable_admission_plugins.contains(p));
        plugins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_flag_spellings_parse() {
        let args = kube_common::flags::normalize_args(
            [
                "kube-apiserver",
                "--logtostderr=true",
                "--v=0",
                "--etcd_servers=http://127.0.0.1:2379",
                "--address=127.0.0.1",
                "--port=8080",
                "--service_cluster_ip_range=10.254.0.0/16",
                "--admission_control=NamespaceLifecycle,NamespaceExists,LimitRanger,SecurityContextDeny,ServiceAccount,ResourceQuota",
                "--allow-privileged=false",
            ],
            false,
        );
        let o = Options::try_parse_from(args).expect("classic flags parse");
        assert_eq!(o.insecure_port, 8080);
        assert_eq!(o.service_cluster_ip_range, "10.254.0.0/16");
        assert_eq!(o.admission_plugins().len(), 6);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").ok(), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_duration("1h30m").ok(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert!(parse_duration("5").is_err());
    }
}

//! Command-line flags, as upstream's `cmd/kube-controller-manager/app/options`
//! (the subset our controllers use; `/etc/kubernetes/controller-manager`'s
//! `KUBE_CONTROLLER_MANAGER_ARGS` passes them).

use std::time::Duration;

use clap::Parser;
use kube_common::client::ClientArgs;
use kube_common::leader::{parse_go_duration, LeaderElectionArgs};
use kube_common::logging::LoggingArgs;

/// The secure port upstream's controller-manager serves `/healthz` and `/metrics` on.
pub const DEFAULT_PORT: u16 = 10257;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-controller-manager",
    about = "The Kubernetes controller manager: a daemon that embeds the core control loops",
    version
)]
pub struct Options {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub logging: LoggingArgs,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,

    /// A list of controllers to enable. '*' enables all on-by-default controllers,
    /// 'foo' enables the controller named 'foo', '-foo' disables the controller named 'foo'.
    #[arg(long = "controllers", value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,

    /// The port on which to serve /healthz and /metrics (plain HTTP here; 0 disables).
    #[arg(long = "secure-port", default_value_t = DEFAULT_PORT)]
    pub secure_port: u16,
    /// Deprecated insecure port; when given it replaces --secure-port.
    #[arg(long = "port")]
    pub port: Option<u16>,
    /// The IP address on which to serve /healthz and /metrics.
    #[arg(long = "bind-address", alias = "address", default_value = "0.0.0.0")]
    pub bind_address: String,

    /// Number of replica sets allowed to sync concurrently.
    #[arg(long = "concurrent-replicaset-syncs", default_value_t = 5)]
    pub concurrent_replicaset_syncs: u16,
    /// Number of replication controllers allowed to sync concurrently.
    #[arg(long = "concurrent-rc-syncs", default_value_t = 5)]
    pub concurrent_rc_syncs: u16,
    /// Number of deployment objects allowed to sync concurrently.
    #[arg(long = "concurrent-deployment-syncs", default_value_t = 5)]
    pub concurrent_deployment_syncs: u16,
    /// Number of namespace objects allowed to sync concurrently.
    #[arg(long = "concurrent-namespace-syncs", default_value_t = 10)]
    pub concurrent_namespace_syncs: u16,
    /// Number of service account objects allowed to sync concurrently.
    #[arg(
        long = "concurrent-serviceaccount-token-syncs",
        alias = "concurrent-service-account-syncs",
        default_value_t = 5
    )]
    pub concurrent_serviceaccount_syncs: u16,
    /// Number of endpoint syncing operations done concurrently.
    #[arg(long = "concurrent-endpoint-syncs", default_value_t = 5)]
    pub concurrent_endpoint_syncs: u16,
    /// Number of endpoint slice syncing operations done concurrently.
    #[arg(long = "concurrent-service-endpoint-syncs", default_value_t = 5)]
    pub concurrent_service_endpoint_syncs: u16,
    /// Number of garbage collector workers.
    #[arg(long = "concurrent-gc-syncs", default_value_t = 20)]
    pub concurrent_gc_syncs: u16,
    /// Number of job objects allowed to sync concurrently.
    #[arg(long = "concurrent-job-syncs", default_value_t = 5)]
    pub concurrent_job_syncs: u16,
    /// Number of daemonset objects allowed to sync concurrently.
    #[arg(long = "concurrent-daemonset-syncs", default_value_t = 2)]
    pub concurrent_daemonset_syncs: u16,
    /// Number of cronjob objects allowed to sync concurrently.
    #[arg(long = "concurrent-cron-job-syncs", default_value_t = 5)]
    pub concurrent_cron_job_syncs: u16,
    /// Number of resource quotas allowed to sync concurrently.
    #[arg(long = "concurrent-resource-quota-syncs", default_value_t = 5)]
    pub concurrent_resource_quota_syncs: u16,
    /// The period for syncing quota usage status in the system.
    #[arg(long = "resource-quota-sync-period", default_value = "5m0s", value_parser = parse_go_duration)]
    pub resource_quota_sync_period: Duration,
    /// The period for syncing the number of pods in horizontal pod autoscaler.
    #[arg(long = "horizontal-pod-autoscaler-sync-period", default_value = "15s", value_parser = parse_go_duration)]
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// The period for which autoscaler will look backwards and not scale down
    /// below any recommendation it made during that period.
    #[arg(long = "horizontal-pod-autoscaler-downscale-stabilization", default_value = "5m0s", value_parser = parse_go_duration)]
    pub horizontal_pod_autoscaler_downscale_stabilization: Duration,
    /// The minimum change (from 1.0) in the desired-to-actual metrics ratio for
    /// the horizontal pod autoscaler to consider scaling.
    #[arg(long = "horizontal-pod-autoscaler-tolerance", default_value_t = 0.1)]
    pub horizontal_pod_autoscaler_tolerance: f64,
    /// The period after pod start when CPU samples might be skipped.
    #[arg(long = "horizontal-pod-autoscaler-cpu-initialization-period", default_value = "5m0s", value_parser = parse_go_duration)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: Duration,
    /// The period after pod start during which readiness changes are treated as
    /// initial readiness.
    #[arg(long = "horizontal-pod-autoscaler-initial-readiness-delay", default_value = "30s", value_parser = parse_go_duration)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: Duration,
    /// The number of horizontal pod autoscaler objects that are allowed to sync concurrently.
    #[arg(
        long = "concurrent-horizontal-pod-autoscaler-syncs",
        default_value_t = 5
    )]
    pub concurrent_horizontal_pod_autoscaler_syncs: u16,
    /// Number of TTL-after-finished collector workers.
    #[arg(long = "concurrent-ttl-after-finished-syncs", default_value_t = 5)]
    pub concurrent_ttl_after_finished_syncs: u16,

    /// Amount of time a running Node may be unresponsive before it is marked unhealthy.
    #[arg(long = "node-monitor-grace-period", default_value = "40s", value_parser = parse_go_duration)]
    pub node_monitor_grace_period: Duration,
    /// The period for syncing NodeStatus in the node lifecycle controller.
    #[arg(long = "node-monitor-period", default_value = "5s", value_parser = parse_go_duration)]
    pub node_monitor_period: Duration,
    /// The grace period for deleting pods on failed nodes (deprecated upstream;
    /// taint-based eviction uses the pods' tolerationSeconds).
    #[arg(long = "pod-eviction-timeout", default_value = "5m0s", value_parser = parse_go_duration)]
    pub pod_eviction_timeout: Duration,
    /// Number of terminated pods that can exist before the terminated pod garbage
    /// collector starts deleting them (<= 0 disables).
    #[arg(long = "terminated-pod-gc-threshold", default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i64,
    /// The maximum number of endpoints added to an EndpointSlice.
    #[arg(long = "max-endpoints-per-slice", default_value_t = 100)]
    pub max_endpoints_per_slice: usize,
    /// How often the pod garbage collector runs (upstream's fixed `gcCheckPeriod`;
    /// not an upstream flag, tests shorten it).
    #[arg(long = "pod-gc-period", default_value = "20s", value_parser = parse_go_duration, hide = true)]
    pub pod_gc_period: Duration,
    /// How long a node must stay missing before its pods count as orphaned
    /// (upstream's fixed `quarantineTime`; not an upstream flag, tests shorten it).
    #[arg(long = "pod-gc-orphan-quarantine", default_value = "40s", value_parser = parse_go_duration, hide = true)]
    pub pod_gc_orphan_quarantine: Duration,
    /// Whether the garbage collector runs.
    #[arg(long = "enable-garbage-collector", num_args = 0..=1, default_value = "true", default_missing_value = "true",
          value_parser = kube_common::flags::parse_go_bool)]
    pub enable_garbage_collector: bool,
    /// Accepted for compatibility with old unit files; ignored.
    #[arg(long = "service-account-private-key-file")]
    pub service_account_private_key_file: Option<String>,
    /// The CA bundle published as ConfigMap `kube-root-ca.crt` in every namespace
    /// (default: the CA of the kubeconfig this controller-manager uses).
    #[arg(long = "root-ca-file")]
    pub root_ca_file: Option<String>,
    /// PEM x509 CA certificate the csrsigning controller issues cluster-scoped
    /// certificates with (kubernetes.io/kube-apiserver-client, -client-kubelet,
    /// kubelet-serving signers).
    #[arg(long = "cluster-signing-cert-file")]
    pub cluster_signing_cert_file: Option<String>,
    /// PEM private key (PKCS#8) of --cluster-signing-cert-file.
    #[arg(long = "cluster-signing-key-file")]
    pub cluster_signing_key_file: Option<String>,
    /// The max length of duration signed certificates will be given.
    #[arg(long = "cluster-signing-duration", alias = "experimental-cluster-signing-duration", default_value = "8760h0m0s", value_parser = parse_go_duration)]
    pub cluster_signing_duration: Duration,
    /// If true, use individual service account credentials for each controller.
    #[arg(long = "use-service-account-credentials", num_args = 0..=1, default_value = "false", default_missing_value = "true",
          value_parser = kube_common::flags::parse_go_bool)]
    pub use_service_account_credentials: bool,
}

impl Options {
    /// The port `/healthz` and `/metrics` are served on (the old `--port` wins).
    pub fn health_port(&self) -> u16 {
        self.port.unwrap_or(self.secure_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let o = Options::parse_from(["kcm"]);
        assert_eq!(o.controllers, vec!["*"]);
        assert_eq!(o.health_port(), 10257);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(40));
        assert_eq!(o.pod_eviction_timeout, Duration::from_secs(300));
        assert!(o.leader_election.leader_elect);
        assert_eq!(o.concurrent_deployment_syncs, 5);
        assert_eq!(
            o.horizontal_pod_autoscaler_sync_period,
            Duration::from_secs(15)
        );
        assert_eq!(
            o.horizontal_pod_autoscaler_downscale_stabilization,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn classic_spellings() {
        let args = kube_common::flags::normalize_args(
            [
                "kcm",
                "--master=http://127.0.0.1:8080",
                "--controllers=*,-garbagecollector",
                "--port=0",
                "--leader_elect=false",
                "--node_monitor_grace_period=20s",
            ],
            false,
        );
        let o = Options::parse_from(args);
        assert_eq!(o.client.master.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(o.controllers, vec!["*", "-garbagecollector"]);
        assert_eq!(o.health_port(), 0);
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(20));
    }
}

//! Command-line flags, as upstream's kube-scheduler takes them (plus the classic
//! `--master`/`--port`/`--address` of the `/etc/kubernetes/scheduler` era).

use std::net::IpAddr;

use clap::Parser;
use kube_common::client::ClientArgs;
use kube_common::leader::LeaderElectionArgs;
use kube_common::logging::LoggingArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-scheduler",
    about = "The Kubernetes scheduler: assigns pods to nodes",
    version
)]
pub struct Options {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub logging: LoggingArgs,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    /// Port serving /healthz and /metrics (plain HTTP here); 0 disables it.
    #[arg(long = "secure-port", default_value_t = 10259)]
    pub secure_port: u16,
    /// Address for --secure-port.
    #[arg(long = "bind-address", default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// DEPRECATED: the insecure port for /healthz and /metrics; 0 disables it.
    #[arg(long = "port", default_value_t = 0)]
    pub port: u16,
    /// DEPRECATED: address for --port.
    #[arg(long = "address", default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Pods whose spec.schedulerName is this are scheduled by this scheduler.
    #[arg(long = "scheduler-name", default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Percentage of nodes to find feasible before scoring; 0 = adaptive (upstream).
    #[arg(long = "percentage-of-nodes-to-score", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub percentage_of_nodes_to_score: u32,
    /// Initial backoff of unschedulable pods.
    #[arg(long = "pod-initial-backoff-seconds", default_value_t = 1)]
    pub pod_initial_backoff_seconds: u64,
    /// Maximum backoff of unschedulable pods.
    #[arg(long = "pod-max-backoff-seconds", default_value_t = 10)]
    pub pod_max_backoff_seconds: u64,
    /// Accepted for compatibility; requests are not rate limited.
    #[arg(long = "kube-api-qps", default_value_t = 50.0)]
    pub kube_api_qps: f32,
    /// Accepted for compatibility; requests are not rate limited.
    #[arg(long = "kube-api-burst", default_value_t = 100)]
    pub kube_api_burst: u32,
    /// Accepted for compatibility (protobuf is not used).
    #[arg(long = "kube-api-content-type", default_value = "application/json")]
    pub kube_api_content_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_flags_parse() {
        let args = kube_common::flags::normalize_args(
            [
                "kube-scheduler",
                "--logtostderr=true",
                "--v=0",
                "--master=http://127.0.0.1:8080",
                "--leader_elect=false",
                "--port=10251",
            ],
            false,
        );
        let o = Options::parse_from(args);
        assert_eq!(o.client.master.as_deref(), Some("http://127.0.0.1:8080"));
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.port, 10251);
        assert_eq!(o.secure_port, 10259);
        assert_eq!(o.scheduler_name, "default-scheduler");
        assert_eq!(o.bind_address.to_string(), "127.0.0.1");
    }
}

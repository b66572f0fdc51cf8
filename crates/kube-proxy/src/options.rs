//! Command-line flags, as upstream's kube-proxy takes them (the classic
//! `/etc/kubernetes/proxy` era and current ones).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ipnet::Ipv4Net;
use kube_common::client::ClientArgs;
use kube_common::flags::parse_go_bool;
use kube_common::leader::parse_go_duration;
use kube_common::logging::LoggingArgs;

use crate::backend::SyncConfig;

/// `--proxy-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyMode {
    Nftables,
    Iptables,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-proxy",
    about = "The Kubernetes network proxy: programs Service rules on the node",
    version
)]
pub struct Options {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// Which proxy mode to use: nftables (default) or iptables.
    #[arg(
        long = "proxy-mode",
        value_enum,
        default_value = "nftables",
        ignore_case = true
    )]
    pub proxy_mode: ProxyMode,
    /// The CIDR range of pods in the cluster; ClusterIP traffic from outside it is masqueraded.
    #[arg(long = "cluster-cidr")]
    pub cluster_cidr: Option<Ipv4Net>,
    /// SNAT all traffic sent via Service cluster IPs.
    #[arg(long = "masquerade-all", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_go_bool)]
    pub masquerade_all: bool,
    /// Comma-separated CIDRs of node addresses NodePorts answer on; "primary" or
    /// empty means all local addresses.
    #[arg(long = "nodeport-addresses", value_delimiter = ',')]
    pub nodeport_addresses: Vec<String>,
    /// The name of this node (defaults to the hostname).
    #[arg(long = "hostname-override")]
    pub hostname_override: Option<String>,
    /// Minimum interval between rule syncs (overrides the mode-specific flags).
    #[arg(long = "min-sync-period", value_parser = parse_go_duration)]
    pub min_sync_period: Option<Duration>,
    /// Minimum interval between syncs in iptables mode.
    #[arg(long = "iptables-min-sync-period", value_parser = parse_go_duration, default_value = "1s")]
    pub iptables_min_sync_period: Duration,
    /// Minimum interval between syncs in nftables mode.
    #[arg(long = "nftables-min-sync-period", value_parser = parse_go_duration, default_value = "1s")]
    pub nftables_min_sync_period: Duration,
    /// Maximum interval between full resyncs.
    #[arg(long = "sync-period", alias = "iptables-sync-period", value_parser = parse_go_duration, default_value = "30s")]
    pub sync_period: Duration,
    /// Address for /healthz (and /metrics); port 0 disables it.
    #[arg(long = "healthz-bind-address", default_value = "0.0.0.0:10256", value_parser = parse_healthz_address)]
    pub healthz_bind_address: SocketAddr,
    /// Address for /metrics (and /healthz); port 0 disables it.
    #[arg(long = "metrics-bind-address", default_value = "127.0.0.1:10249", value_parser = parse_metrics_address)]
    pub metrics_bind_address: SocketAddr,
    /// Remove the rules of every proxy mode and exit.
    #[arg(long = "cleanup", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_go_bool)]
    pub cleanup: bool,
}

/// `IP:port`, or a bare IP (upstream's older form) with `default_port`.
fn parse_bind_address(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(address) = s.parse::<SocketAddr>() {
        return Ok(address);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("invalid bind address {s:?}: expected IP:port or IP"))
}

fn parse_healthz_address(s: &str) -> Result<SocketAddr, String> {
    parse_bind_address(s, 10256)
}

fn parse_metrics_address(s: &str) -> Result<SocketAddr, String> {
    parse_bind_address(s, 10249)
}

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid --nodeport-addresses entry {0:?}: expected an IPv4 CIDR or \"primary\"")]
    NodePortAddress(String),
}

impl Options {
    /// The effective minimum sync period.
    pub fn effective_min_sync_period(&self) -> Duration {
        self.min_sync_period.unwrap_or(match self.proxy_mode {
            ProxyMode::Nftables => self.nftables_min_sync_period,
            ProxyMode::Iptables => self.iptables_min_sync_period,
        })
    }

    /// The node name: `--hostname-override`, else the lower-cased hostname.
    pub fn node_name(&self) -> String {
        match &self.hostname_override {
            Some(name) if !name.trim().is_empty() => name.trim().to_lowercase(),
            _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_lowercase())
                .unwrap_or_default(),
        }
    }

    pub fn sync_config(&self) -> Result<SyncConfig, OptionsError> {
        let mut nodeport_addresses = Vec::new();
        for entry in self
            .nodeport_addresses
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            if entry == "primary" {
                continue;
            }
            nodeport_addresses.push(
                entry
                    .parse()
                    .map_err(|_| OptionsError::NodePortAddress(entry.to_string()))?,
            );
        }
        Ok(SyncConfig {
            cluster_cidr: self.cluster_cidr,
            masquerade_all: self.masquerade_all,
            nodeport_addresses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let mut all = vec!["kube-proxy"];
        all.extend_from_slice(args);
        Options::try_parse_from(kube_common::flags::normalize_args(all, false)).unwrap()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]);
        assert_eq!(o.proxy_mode, ProxyMode::Nftables);
        assert_eq!(o.effective_min_sync_period(), Duration::from_secs(1));
        assert_eq!(o.healthz_bind_address.port(), 10256);
        assert!(!o.masquerade_all);
        assert_eq!(o.sync_config().unwrap(), SyncConfig::default());
    }

    #[test]
    fn classic_and_current_flags() {
        let o = parse(&[
            "--master=http://127.0.0.1:8080",
            "--proxy-mode=iptables",
            "--cluster-cidr=10.1.0.0/16",
            "--masquerade-all",
            "--nodeport-addresses=192.168.0.0/24,primary",
            "--hostname-override=Minion1",
            "--iptables-min-sync-period=5s",
        ]);
        assert_eq!(o.proxy_mode, ProxyMode::Iptables);
        assert_eq!(o.effective_min_sync_period(), Duration::from_secs(5));
        assert_eq!(o.node_name(), "minion1");
        let c = o.sync_config().unwrap();
        assert!(c.masquerade_all);
        assert_eq!(c.cluster_cidr, Some("10.1.0.0/16".parse().unwrap()));
        assert_eq!(
            c.nodeport_addresses,
            vec!["192.168.0.0/24".parse::<Ipv4Net>().unwrap()]
        );
        let o = parse(&["--min-sync-period=250ms", "--masquerade-all=false"]);
        assert_eq!(o.effective_min_sync_period(), Duration::from_millis(250));
        assert!(!o.masquerade_all);
    }

    #[test]
    fn bind_addresses_with_or_without_port() {
        let o = parse(&[
            "--healthz-bind-address=127.0.0.1",
            "--metrics-bind-address=0.0.0.0:9999",
        ]);
        assert_eq!(o.healthz_bind_address, "127.0.0.1:10256".parse().unwrap());
        assert_eq!(o.metrics_bind_address, "0.0.0.0:9999".parse().unwrap());
        assert!(Options::try_parse_from(["kube-proxy", "--healthz-bind-address=nope"]).is_err());
    }

    #[test]
    fn bad_nodeport_address_rejected() {
        let o = parse(&["--nodeport-addresses=bogus"]);
        assert!(o.sync_config().is_err());
    }
}

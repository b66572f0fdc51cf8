//! Command-line flags. Names follow upstream kube-dns (`--dns-bind-address`,
//! `--dns-port`, `--domain`) and CoreDNS's kubernetes/forward plugins (TTL, upstreams).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kube_common::client::ClientArgs;
use kube_common::leader::parse_go_duration;
use kube_common::logging::LoggingArgs;

/// The default `/healthz` + `/metrics` port (upstream kube-dns used 8081 for its
/// readiness endpoint; CoreDNS splits health 8080 / ready 8181 / metrics 9153).
pub const DEFAULT_HEALTH_PORT: u16 = 8081;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-dns",
    about = "The Kubernetes cluster DNS server: answers for Services and Pods in the cluster domain and forwards everything else",
    version
)]
pub struct Options {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub logging: LoggingArgs,
    /// The cluster domain served authoritatively (`--domain` is upstream kube-dns's name).
    #[arg(
        long = "cluster-domain",
        alias = "domain",
        default_value = "cluster.local"
    )]
    pub cluster_domain: String,
    /// Address to serve DNS on (UDP and TCP).
    #[arg(long = "dns-bind-address", default_value = "0.0.0.0")]
    pub dns_bind_address: IpAddr,
    /// Port to serve DNS on (UDP and TCP).
    #[arg(long = "dns-port", default_value_t = 53)]
    pub dns_port: u16,
    /// Port for /healthz, /readyz and /metrics on --health-bind-address; 0 disables it.
    #[arg(long = "health-port", default_value_t = DEFAULT_HEALTH_PORT)]
    pub health_port: u16,
    /// Address for the health/metrics server (defaults to --dns-bind-address).
    #[arg(long = "health-bind-address")]
    pub health_bind_address: Option<IpAddr>,
    /// TTL in seconds of cluster records and of the negative-answer SOA.
    #[arg(long = "ttl", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,
    /// Upstream resolvers (`IP` or `IP:port`, comma-separated) for names outside
    /// the cluster domain; default: the nameservers in --resolv-conf.
    #[arg(
        long = "upstream",
        alias = "upstream-nameservers",
        value_delimiter = ','
    )]
    pub upstream: Vec<String>,
    /// The resolver configuration whose nameservers are the default upstreams.
    #[arg(long = "resolv-conf", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Timeout of one forwarded query to one upstream.
    #[arg(long = "upstream-timeout", value_parser = parse_go_duration, default_value = "2s")]
    pub upstream_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid --cluster-domain {0:?}")]
    Domain(String),
    #[error("invalid upstream {0:?}: expected IP or IP:port")]
    Upstream(String),
    #[error("reading {path}: {source}")]
    ResolvConf {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `IP`, `IP:port`, `[v6]:port`; the port defaults to 53.
pub fn parse_upstream(s: &str) -> Result<SocketAddr, OptionsError> {
    let s = s.trim();
    if let Ok(address) = s.parse::<SocketAddr>() {
        return Ok(address);
    }
    // A zone (`fe80::1%eth0`) is not representable in IpAddr; drop it.
    let bare = s.split('%').next().unwrap_or(s);
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| OptionsError::Upstream(s.to_string()))
}

/// The `nameserver` entries of a resolv.conf text, in order.
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(address)) => parse_upstream(address).ok(),
                _ => None,
            }
        })
        .collect()
}

impl Options {
    /// The UDP/TCP address DNS is served on.
    pub fn dns_address(&self) -> SocketAddr {
        SocketAddr::new(self.dns_bind_address, self.dns_port)
    }

    /// The health/metrics address, `None` when disabled.
    pub fn health_address(&self) -> Option<SocketAddr> {
        (self.health_port != 0).then(|| {
            SocketAddr::new(
                self.health_bind_address.unwrap_or(self.dns_bind_address),
                self.health_port,
            )
        })
    }

    /// The cluster domain as a lowercase name without the trailing dot.
    pub fn domain(&self) -> Result<String, OptionsError> {
        let domain = self
            .cluster_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if valid {
            Ok(domain)
        } else {
            Err(OptionsError::Domain(self.cluster_domain.clone()))
        }
    }

    /// `--upstream`, else the nameservers of `--resolv-conf`.
    pub fn upstreams(&self) -> Result<Vec<SocketAddr>, OptionsError> {
        let given: Vec<&String> = self
            .upstream
            .iter()
            .filter(|s| !s.trim().is_empty())
            .collect();
        if !given.is_empty() {
            return given.into_iter().map(|s| parse_upstream(s)).collect();
        }
        let text = std::fs::read_to_string(&self.resolv_conf).map_err(|source| {
            OptionsError::ResolvConf {
                path: self.resolv_conf.display().to_string(),
                source,
            }
        })?;
        Ok(resolv_conf_nameservers(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        let mut all = vec!["kube-dns"];
        all.extend_from_slice(args);
        Options::try_parse_from(kube_common::flags::normalize_args(all, false)).unwrap()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]);
        assert_eq!(o.domain().unwrap(), "cluster.local");
        assert_eq!(o.dns_address(), "0.0.0.0:53".parse().unwrap());
        assert_eq!(o.health_address(), Some("0.0.0.0:8081".parse().unwrap()));
        assert_eq!(o.ttl, 5);
        assert_eq!(o.upstream_timeout, Duration::from_secs(2));
    }

    #[test]
    fn flags_with_underscores_and_upstreams() {
        let o = parse(&[
            "--master=http://127.0.0.1:8080",
            "--cluster_domain=Example.COM.",
            "--dns-bind-address=10.254.0.10",
            "--dns_port=5353",
            "--health-port=0",
            "--upstream=192.0.2.1,192.0.2.2:5300,[2001:db8::1]:53",
            "--ttl=30",
        ]);
        assert_eq!(o.domain().unwrap(), "example.com");
        assert_eq!(o.dns_address(), "10.254.0.10:5353".parse().unwrap());
        assert_eq!(o.health_address(), None);
        assert_eq!(
            o.upstreams().unwrap(),
            vec![
                "192.0.2.1:53".parse::<SocketAddr>().unwrap(),
                "192.0.2.2:5300".parse().unwrap(),
                "[2001:db8::1]:53".parse().unwrap(),
            ]
        );
        assert!(Options::try_parse_from(["kube-dns", "--ttl=4000"]).is_err());
        assert!(parse(&["--cluster-domain=bad_domain"]).domain().is_err());
        assert!(parse(&["--upstream=nope"]).upstreams().is_err());
    }

    #[test]
    fn resolv_conf_parsing() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\noptions ndots:2\nnameserver\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap(),
            ]
        );
    }
}

//! Command-line flags, as upstream flanneld names them. Go's flag package takes
//! `-etcd-endpoints` as well as `--etcd-endpoints` (see
//! `kube_common::flags::normalize_args`), and every flag can also come from
//! `FLANNELD_<FLAG>`; the classic `/etc/sysconfig/flanneld` names
//! `FLANNEL_ETCD_ENDPOINTS` / `FLANNEL_ETCD_PREFIX` are honoured as fallbacks.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Parser;
use kube_common::flags::parse_go_bool;
use kube_common::logging::LoggingArgs;

use crate::registry::EtcdConfig;

pub const DEFAULT_ENDPOINTS: &str = "http://127.0.0.1:4001,http://127.0.0.1:2379";
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "flanneld",
    version,
    about = "flannel overlay network agent (etcd mode)"
)]
pub struct Options {
    /// A comma-delimited list of etcd endpoints.
    #[arg(long, env = "FLANNELD_ETCD_ENDPOINTS")]
    pub etcd_endpoints: Option<String>,
    /// etcd prefix.
    #[arg(long, env = "FLANNELD_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// SSL key file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_KEYFILE", default_value = "")]
    pub etcd_keyfile: String,
    /// SSL certification file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_CERTFILE", default_value = "")]
    pub etcd_certfile: String,
    /// SSL Certificate Authority file used to secure etcd communication.
    #[arg(long, env = "FLANNELD_ETCD_CAFILE", default_value = "")]
    pub etcd_cafile: String,
    /// Username for BasicAuth to etcd.
    #[arg(long, env = "FLANNELD_ETCD_USERNAME", default_value = "")]
    pub etcd_username: String,
    /// Password for BasicAuth to etcd.
    #[arg(long, env = "FLANNELD_ETCD_PASSWORD", default_value = "")]
    pub etcd_password: String,
    /// Interface to use (IP or name) for inter-host communication; may be repeated.
    #[arg(long, env = "FLANNELD_IFACE", value_delimiter = ',')]
    pub iface: Vec<String>,
    /// IP accessible by other nodes for inter-host communication.
    #[arg(long, env = "FLANNELD_PUBLIC_IP")]
    pub public_ip: Option<Ipv4Addr>,
    /// Setup IP masquerade rule for traffic destined outside of overlay network.
    #[arg(long, env = "FLANNELD_IP_MASQ", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_go_bool)]
    pub ip_masq: bool,
    /// Filename where env variables (subnet, MTU, ...) will be written to.
    #[arg(
        long,
        env = "FLANNELD_SUBNET_FILE",
        default_value = "/run/flannel/subnet.env"
    )]
    pub subnet_file: PathBuf,
    /// Minutes before lease expiry to renew it.
    #[arg(long, env = "FLANNELD_SUBNET_LEASE_RENEW_MARGIN", default_value_t = 60)]
    pub subnet_lease_renew_margin: u64,
    /// Directory for the CNI conflist containerd reads (empty: do not write one).
    #[arg(long, env = "FLANNELD_CNI_CONF_DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: String,
    /// File name of the CNI conflist in --cni-conf-dir.
    #[arg(
        long,
        env = "FLANNELD_CNI_CONF_NAME",
        default_value = "10-flannel.conflist"
    )]
    pub cni_conf_name: String,
    /// host-local's IP allocation directory written into the CNI conflist.
    #[arg(
        long,
        env = "FLANNELD_CNI_IPAM_DATA_DIR",
        default_value = "/var/lib/cni/networks"
    )]
    pub cni_ipam_data_dir: String,
    /// The IP address on which to listen for healthz requests.
    #[arg(long, env = "FLANNELD_HEALTHZ_IP", default_value = "0.0.0.0")]
    pub healthz_ip: String,
    /// The port to listen on for healthz requests (0 to disable).
    #[arg(long, env = "FLANNELD_HEALTHZ_PORT", default_value_t = 0)]
    pub healthz_port: u16,
    #[command(flatten)]
    pub logging: LoggingArgs,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Options {
    /// Parses argv the Go way (`-flag`, `--flag_name`).
    pub fn parse_args<I, S>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::try_parse_from(kube_common::flags::normalize_args(args, true))
    }

    /// The endpoints: flag / FLANNELD_ETCD_ENDPOINTS, else FLANNEL_ETCD_ENDPOINTS,
    /// else the default. An empty value (an unset variable in a unit file's
    /// `-etcd-endpoints=${FLANNEL_ETCD_ENDPOINTS}`) counts as unset.
    pub fn endpoints(&self, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let raw = self
            .etcd_endpoints
            .as_deref()
            .and_then(non_empty)
            .or_else(|| env("FLANNEL_ETCD_ENDPOINTS").as_deref().and_then(non_empty))
            .unwrap_or_else(|| DEFAULT_ENDPOINTS.to_string());
        raw.split(',').filter_map(non_empty).collect()
    }

    pub fn prefix(&self, env: impl Fn(&str) -> Option<String>) -> String {
        self.etcd_prefix
            .as_deref()
            .and_then(non_empty)
            .or_else(|| env("FLANNEL_ETCD_PREFIX").as_deref().and_then(non_empty))
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string())
    }

    pub fn etcd_config(&self, env: impl Fn(&str) -> Option<String> + Copy) -> EtcdConfig {
        EtcdConfig {
            endpoints: self.endpoints(env),
            prefix: self.prefix(env),
            cafile: non_empty(&self.etcd_cafile),
            certfile: non_empty(&self.etcd_certfile),
            keyfile: non_empty(&self.etcd_keyfile),
            username: non_empty(&self.etcd_username),
            password: non_empty(&self.etcd_password),
        }
    }

    /// Where the conflist goes, if anywhere.
    pub fn cni_conf_path(&self) -> Option<PathBuf> {
        non_empty(&self.cni_conf_dir).map(|d| PathBuf::from(d).join(&self.cni_conf_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn go_style_flags() {
        let o = Options::parse_args([
            "flanneld",
            "-etcd-endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379",
            "-etcd-prefix=/atomic.io/network",
            "--iface=eth1",
            "-ip-masq",
            "--public_ip=192.168.213.5",
            "-subnet-file=/tmp/s.env",
            "-v=2",
        ])
        .expect("parse");
        assert_eq!(
            o.endpoints(no_env),
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(o.prefix(no_env), "/atomic.io/network");
        assert_eq!(o.iface, ["eth1"]);
        assert!(o.ip_masq);
        assert_eq!(o.public_ip, Some(Ipv4Addr::new(192, 168, 213, 5)));
        assert_eq!(o.subnet_file, PathBuf::from("/tmp/s.env"));
        assert_eq!(o.logging.verbosity, 2);
        let o = Options::parse_args(["flanneld", "--ip-masq=false"]).expect("parse");
        assert!(!o.ip_masq);
    }

    #[test]
    fn defaults_and_classic_env_fallbacks() {
        let o =
            Options::parse_args(["flanneld", "-etcd-endpoints=", "-etcd-prefix="]).expect("parse");
        assert_eq!(
            o.endpoints(no_env),
            ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]
        );
        assert_eq!(o.prefix(no_env), "/coreos.com/network");
        assert_eq!(o.subnet_file, PathBuf::from("/run/flannel/subnet.env"));
        assert_eq!(
            o.cni_conf_path(),
            Some(PathBuf::from("/etc/cni/net.d/10-flannel.conflist"))
        );
        assert_eq!(o.healthz_port, 0);
        assert_eq!(o.subnet_lease_renew_margin, 60);
        let classic = |k: &str| match k {
            "FLANNEL_ETCD_ENDPOINTS" => Some("http://192.168.213.1:2379".to_string()),
            "FLANNEL_ETCD_PREFIX" => Some("/atomic.io/network".to_string()),
            _ => None,
        };
        assert_eq!(o.endpoints(classic), ["http://192.168.213.1:2379"]);
        assert_eq!(o.prefix(classic), "/atomic.io/network");
        // An explicit flag wins over the classic variable.
        let o = Options::parse_args(["flanneld", "--etcd-endpoints=http://x:1"]).expect("parse");
        assert_eq!(o.endpoints(classic), ["http://x:1"]);
        let o = Options::parse_args(["flanneld", "--cni-conf-dir="]).expect("parse");
        assert_eq!(o.cni_conf_path(), None);
        let o = Options::parse_args(["flanneld", "--iface=eth0,eth1", "--iface", "eth2"])
            .expect("parse");
        assert_eq!(o.iface, ["eth0", "eth1", "eth2"]);
        assert!(Options::parse_args(["flanneld", "--public-ip=not-an-ip"]).is_err());
    }
}

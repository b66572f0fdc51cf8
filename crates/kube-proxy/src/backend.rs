//! The side-effecting part: a [`ProxyBackend`] applies a [`ProxyState`] to the
//! node (nftables: full syncs as one `nft -f -` transaction, partial ones as one
//! netlink batch; iptables: `iptables-restore --noflush` of all or only the changed
//! chains), plus UDP conntrack cleanup for changed endpoints.

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use crate::nft_netlink::NfTables;
use crate::nft_partial::{render, Applied, Op};
use crate::state::{Protocol, ProxyState};

/// Node-wide settings the rules depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncConfig {
    /// `--cluster-cidr`: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<Ipv4Net>,
    /// `--masquerade-all`: masquerade all ClusterIP traffic.
    pub masquerade_all: bool,
    /// `--nodeport-addresses`: destination ranges NodePorts answer on; empty means
    /// every local address (except loopback).
    pub nodeport_addresses: Vec<Ipv4Net>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Number of rules in the programmed ruleset.
    pub rules: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("running {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(transparent)]
    Netlink(#[from] crate::nft_netlink::NetlinkError),
}

/// Programs the node's packet filter from the proxy state.
pub trait ProxyBackend: Send {
    /// `nftables` or `iptables`.
    fn mode(&self) -> &'static str;
    /// Makes the node's rules match `state` exactly (stale rules removed).
    fn sync(&mut self, state: &ProxyState, config: &SyncConfig) -> Result<SyncStats, BackendError>;
    /// Removes everything this backend created.
    fn cleanup(&mut self) -> Result<(), BackendError>;
    /// Forgets what was applied, so the next sync rewrites everything (periodic
    /// resync, repairing changes made from outside).
    fn invalidate(&mut self) {}
}

/// Runs commands, optionally inside a network namespace (`ip netns exec <ns>`).
#[derive(Debug, Clone, Default)]
pub struct Runner {
    netns: Option<String>,
}

impl Runner {
    pub fn host() -> Self {
        Self { netns: None }
    }

    pub fn in_netns(name: &str) -> Self {
        Self {
            netns: Some(name.to_string()),
        }
    }

    /// The network namespace commands run in (`None`: our own).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Runs `program args`, feeding `stdin`; returns stdout.
    pub fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, BackendError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let command = format!("{program} {}", args.join(" "));
        let mut child = cmd.spawn().map_err(|source| BackendError::Spawn {
            command: command.clone(),
            source,
        })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|source| BackendError::Spawn {
                    command: command.clone(),
                    source,
                })?;
        }
        let output = child
            .wait_with_output()
            .map_err(|source| BackendError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(BackendError::Failed {
                command,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The nftables backend (`--proxy-mode=nftables`): a full table rewrite with
/// `nft -f` on the first sync (and after [`ProxyBackend::invalidate`] or a
/// failure), then partial transactions touching only changed chains and map
/// elements, sent over netlink ([`crate::nft_netlink`]; `nft -f` would first dump
/// the whole table).
pub struct NftBackend {
    runner: Runner,
    applied: Option<Applied>,
    netlink: Option<NfTables>,
}

impl NftBackend {
    pub fn new(runner: Runner) -> Self {
        Self {
            runner,
            applied: None,
            netlink: None,
        }
    }

    /// Applies a partial transaction: over netlink when possible, else `nft -f`.
    fn apply_partial(&mut self, ops: &[Op]) -> Result<(), BackendError> {
        if self.netlink.is_none() {
            match NfTables::open(self.runner.netns()) {
                Ok(socket) => self.netlink = Some(socket),
                Err(err) => tracing::warn!("nf_tables netlink socket: {err}; using nft -f"),
            }
        }
        let small = ops.len() < MAX_BATCH_OPS;
        match &mut self.netlink {
            Some(socket) if small => match socket.apply(ops) {
                Ok(()) => Ok(()),
                Err(err) => {
                    // A broken socket is reopened next time.
                    self.netlink = None;
                    Err(err.into())
                }
            },
            _ => self
                .runner
                .run("nft", &["-f", "-"], Some(&render(ops)))
                .map(|_| ()),
        }
    }
}

/// Partial transactions with more operations go through `nft -f` (one netlink
/// batch must fit the socket buffer).
const MAX_BATCH_OPS: usize = 250;

impl ProxyBackend for NftBackend {
    fn mode(&self) -> &'static str {
        "nftables"
    }

    fn sync(&mut self, state: &ProxyState, config: &SyncConfig) -> Result<SyncStats, BackendError> {
        // Taken out: if applying fails, the next sync is a full one.
        let previous = self.applied.take().filter(|a| a.config() == config);
        let partial = previous.and_then(|mut applied| {
            let ops = applied.update(state, config)?;
            Some((applied, ops))
        });
        let applied = match partial {
            Some((applied, ops)) => {
                if !ops.is_empty() {
                    self.apply_partial(&ops)?;
                }
                applied
            }
            None => {
                let (applied, ruleset) = Applied::full(state, config);
                self.runner.run("nft", &["-f", "-"], Some(&ruleset.text))?;
                applied
            }
        };
        let rules = applied.rules();
        self.applied = Some(applied);
        Ok(SyncStats { rules })
    }

    fn invalidate(&mut self) {
        self.applied = None;
    }

    fn cleanup(&mut self) -> Result<(), BackendError> {
        self.applied = None;
        let text = format!(
            "add table {f} {t}\ndelete table {f} {t}\n",
            f = crate::nft::FAMILY,
            t = crate::nft::TABLE
        );
        self.runner
            .run("nft", &["-f", "-"], Some(&text))
            .map(|_| ())
    }
}

/// `conntrack` invocations that drop UDP flows which would otherwise keep going to
/// removed endpoints, or keep being rejected after a service gained endpoints.
pub fn conntrack_cleanup(old: &ProxyState, new: &ProxyState) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sp in new.services.iter().filter(|s| s.protocol == Protocol::Udp) {
        let Some(ip) = sp.cluster_ip else { continue };
        let previous = old
            .services
            .iter()
            .find(|o| o.id() == sp.id() && o.cluster_ip == sp.cluster_ip);
        let old_eps = previous.map(|p| p.endpoints.as_slice()).unwrap_or(&[]);
        if old_eps.is_empty() && !sp.endpoints.is_empty() {
            out.push(vec![
                "-D".into(),
                "-p".into(),
                "udp".into(),
                "--orig-dst".into(),
                ip.to_string(),
                "--dport".into(),
                sp.port.to_string(),
            ]);
        }
    }
    for sp in old.services.iter().filter(|s| s.protocol == Protocol::Udp) {
        let Some(ip) = sp.cluster_ip else { continue };
        let current = new
            .services
            .iter()
            .find(|n| n.id() == sp.id() && n.cluster_ip == sp.cluster_ip);
        for ep in &sp.endpoints {
            if current.is_some_and(|c| c.endpoints.contains(ep)) {
                continue;
            }
            out.push(vec![
                "-D".into(),
                "-p".into(),
                "udp".into(),
                "--orig-dst".into(),
                ip.to_string(),
                "--dport".into(),
                sp.port.to_string(),
                "--dst-nat".into(),
                ep.ip.to_string(),
            ]);
        }
    }
    out
}

/// Runs the [`conntrack_cleanup`] commands; "0 flow entries" failures are normal.
pub fn flush_conntrack(runner: &Runner, old: &ProxyState, new: &ProxyState) {
    for args in conntrack_cleanup(old, new) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(err) = runner.run("conntrack", &args, None) {
            tracing::debug!("conntrack {}: {err}", args.join(" "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Endpoint, ServicePort};

    fn udp(eps: &[&str]) -> ServicePort {
        ServicePort {
            namespace: "kube-system".into(),
            name: "dns".into(),
            port_name: "dns".into(),
            protocol: Protocol::Udp,
            cluster_ip: Some("10.254.0.10".parse().unwrap()),
            port: 53,
            node_port: None,
            external_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
            endpoints: eps
                .iter()
                .map(|ip| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: 53,
                    local: false,
                })
                .collect(),
        }
    }

    #[test]
    fn conntrack_flushes_removed_udp_endpoints_and_new_services() {
        let old = ProxyState {
            services: vec![udp(&["10.1.0.5", "10.1.0.6"])],
        };
        let new = ProxyState {
            services: vec![udp(&["10.1.0.6"])],
        };
        let cmds: Vec<String> = conntrack_cleanup(&old, &new)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            cmds,
            vec!["-D -p udp --orig-dst 10.254.0.10 --dport 53 --dst-nat 10.1.0.5"]
        );

        let empty = ProxyState {
            services: vec![udp(&[])],
        };
        let cmds: Vec<String> = conntrack_cleanup(&empty, &new)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(cmds, vec!["-D -p udp --orig-dst 10.254.0.10 --dport 53"]);
        assert!(conntrack_cleanup(&new, &new).is_empty());
    }

    #[test]
    fn runner_reports_failures() {
        let err = Runner::host().run("false", &[], None).unwrap_err();
        assert!(matches!(err, BackendError::Failed { .. }), "{err}");
        assert_eq!(Runner::host().run("cat", &[], Some("hi")).unwrap(), "hi");
    }
}

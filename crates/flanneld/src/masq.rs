//! `--ip-masq`: the masquerade rules upstream installs, as nftables (table
//! `ip flannel-ipv4`, chains `postrtg` and `forward`, when the config says
//! `"EnableNFTables": true`) or iptables (`FLANNEL-POSTRTG` in nat, `FLANNEL-FWD`
//! in filter).

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

/// kube-proxy's masquerade mark; traffic it marks is not NATed twice.
pub const KUBE_PROXY_MARK: &str = "0x4000/0x4000";
pub const NFT_TABLE: &str = "flannel-ipv4";
const COMMENT: &str = "flanneld masq";
const MULTICAST: &str = "224.0.0.0/4";

#[derive(Debug, thiserror::Error)]
pub enum MasqError {
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
}

/// The nftables script (one `nft -f` transaction).
pub fn nft_script(network: &Ipv4Net, subnet: &Ipv4Net) -> String {
    let (c, p) = (network.to_string(), subnet.to_string());
    let t = format!("ip {NFT_TABLE}");
    format!(
        "add table {t} {{ comment \"rules for {NFT_TABLE}\" ; }}\n\
         add chain {t} postrtg {{ type nat hook postrouting priority srcnat ; comment \"chain to manage traffic masquerading by flannel\" ; }}\n\
         flush chain {t} postrtg\n\
         add rule {t} postrtg meta mark 0x4000 return\n\
         add rule {t} postrtg ip saddr {p} ip daddr {c} return\n\
         add rule {t} postrtg ip saddr {c} ip daddr {p} return\n\
         add rule {t} postrtg ip saddr != {p} ip daddr {c} return\n\
         add rule {t} postrtg ip saddr {c} ip daddr != {MULTICAST} masquerade fully-random\n\
         add rule {t} postrtg ip saddr != {c} ip daddr {c} masquerade fully-random\n\
         add chain {t} forward {{ type filter hook forward priority filter ; comment \"chain to accept flannel traffic\" ; }}\n\
         flush chain {t} forward\n\
         add rule {t} forward ip saddr {c} accept\n\
         add rule {t} forward ip daddr {c} accept\n"
    )
}

/// The jump rules (`-A` spec without the action) that must exist once.
pub fn iptables_jumps() -> Vec<(&'static str, Vec<String>)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "nat",
            s(&[
                "POSTROUTING",
                "-m",
                "comment",
                "--comment",
                COMMENT,
                "-j",
                "FLANNEL-POSTRTG",
            ]),
        ),
        (
            "filter",
            s(&[
                "FORWARD",
                "-m",
                "comment",
                "--comment",
                "flanneld forward",
                "-j",
                "FLANNEL-FWD",
            ]),
        ),
    ]
}

/// The `iptables-restore --noflush` input: declaring the chains flushes them.
pub fn iptables_restore_input(network: &Ipv4Net, subnet: &Ipv4Net) -> String {
    let (c, p) = (network.to_string(), subnet.to_string());
    let m = format!("-m comment --comment \"{COMMENT}\"");
    let f = "-m comment --comment \"flanneld forward\"";
    format!(
        "*nat\n:FLANNEL-POSTRTG - [0:0]\n\
         -A FLANNEL-POSTRTG -m mark --mark {KUBE_PROXY_MARK} {m} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {p} -d {c} {m} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {c} -d {p} {m} -j RETURN\n\
         -A FLANNEL-POSTRTG ! -s {c} -d {p} {m} -j RETURN\n\
         -A FLANNEL-POSTRTG -s {c} ! -d {MULTICAST} {m} -j MASQUERADE --random-fully\n\
         -A FLANNEL-POSTRTG ! -s {c} -d {c} {m} -j MASQUERADE --random-fully\n\
         COMMIT\n\
         *filter\n:FLANNEL-FWD - [0:0]\n\
         -A FLANNEL-FWD -s {c} {f} -j ACCEPT\n\
         -A FLANNEL-FWD -d {c} {f} -j ACCEPT\n\
         COMMIT\n"
    )
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), MasqError> {
    let spawn_err = |source| MasqError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(MasqError::Failed {
        program: format!("{program} {}", args.join(" ")),
        stderr,
    })
}

/// Installs (or refreshes) the rules.
pub fn ensure(nftables: bool, network: &Ipv4Net, subnet: &Ipv4Net) -> Result<(), MasqError> {
    if nftables {
        run("nft", &["-f", "-"], Some(&nft_script(network, subnet)))?;
        return Ok(());
    }
    run(
        "iptables-restore",
        &["--noflush", "-w", "5"],
        Some(&iptables_restore_input(network, subnet)),
    )?;
    for (table, spec) in iptables_jumps() {
        let (chain, rest) = spec
            .split_first()
            .map(|(c, r)| (c.as_str(), r))
            .unwrap_or(("", &[]));
        let mut check = vec!["-w", "5", "-t", table, "-C", chain];
        check.extend(rest.iter().map(String::as_str));
        if run("iptables", &check, None).is_err() {
            let mut add = vec!["-w", "5", "-t", table, "-A", chain];
            add.extend(rest.iter().map(String::as_str));
            run("iptables", &add, None)?;
        }
    }
    Ok(())
}

/// Removes the nftables table on shutdown, as upstream does (the iptables chains
/// stay, also as upstream).
pub fn cleanup(nftables: bool) {
    if nftables {
        if let Err(e) = run("nft", &["delete", "table", "ip", NFT_TABLE], None) {
            tracing::warn!(error = %e, "removing the flannel nftables table");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> (Ipv4Net, Ipv4Net) {
        (
            "10.1.0.0/16".parse().expect("net"),
            "10.1.94.0/24".parse().expect("net"),
        )
    }

    #[test]
    fn nft_rules_as_upstream() {
        let (c, p) = nets();
        let s = nft_script(&c, &p);
        let rules: Vec<&str> = s.lines().filter(|l| l.starts_with("add rule")).collect();
        assert_eq!(
            rules,
            [
                "add rule ip flannel-ipv4 postrtg meta mark 0x4000 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.1.94.0/24 ip daddr 10.1.0.0/16 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.1.0.0/16 ip daddr 10.1.94.0/24 return",
                "add rule ip flannel-ipv4 postrtg ip saddr != 10.1.94.0/24 ip daddr 10.1.0.0/16 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.1.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
                "add rule ip flannel-ipv4 postrtg ip saddr != 10.1.0.0/16 ip daddr 10.1.0.0/16 masquerade fully-random",
                "add rule ip flannel-ipv4 forward ip saddr 10.1.0.0/16 accept",
                "add rule ip flannel-ipv4 forward ip daddr 10.1.0.0/16 accept",
            ]
        );
        // Chains are flushed before refilling, so re-applying is idempotent.
        assert!(s.contains("flush chain ip flannel-ipv4 postrtg\n"));
    }

    #[test]
    fn iptables_rules_as_upstream() {
        let (c, p) = nets();
        let s = iptables_restore_input(&c, &p);
        assert!(s.starts_with("*nat\n:FLANNEL-POSTRTG - [0:0]\n"));
        assert!(s.contains("-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN\n"));
        assert!(s.contains("-A FLANNEL-POSTRTG ! -s 10.1.0.0/16 -d 10.1.94.0/24 -m comment --comment \"flanneld masq\" -j RETURN\n"));
        assert!(s.contains("-A FLANNEL-POSTRTG -s 10.1.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully\n"));
        assert!(s.contains("*filter\n:FLANNEL-FWD - [0:0]\n-A FLANNEL-FWD -s 10.1.0.0/16"));
        assert_eq!(s.matches("COMMIT\n").count(), 2);
        let jumps = iptables_jumps();
        assert_eq!(jumps[0].0, "nat");
        assert_eq!(
            jumps[0].1.last().map(String::as_str),
            Some("FLANNEL-POSTRTG")
        );
    }
}

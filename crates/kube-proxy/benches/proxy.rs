//! Rule sync cost of both backends, as root, in a throwaway network namespace:
//! for 1 000 and 10 000 Services with two endpoints each, the time of a full
//! sync (a fresh backend, as at start), of one changed endpoint (the partial
//! sync every endpoint churn triggers), of one added endpoint (scale), and the
//! number of rules. Run by
//! `scripts/bench-proxy.sh`. Last line:
//! `RESULT svcs=10000 nft_full_ms=N nft_partial_ms=N ipt_full_ms=N ipt_partial_ms=N`.
//! `PROXY_BENCH_SIZES=1000` runs a subset of the sizes (default `1000,10000`);
//! `PROXY_BENCH_MODES=nftables` (or `iptables`) one backend only (the other's
//! numbers print as 0; the iptables full sync at 10 000 takes minutes).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Instant;

use kube_proxy::backend::{NftBackend, ProxyBackend, Runner, SyncConfig};
use kube_proxy::iptables::IptablesBackend;
use kube_proxy::state::{Endpoint, Protocol, ProxyState, ServicePort};

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn state(services: u32) -> ProxyState {
    let services = (0..services)
        .map(|i| {
            let ip = |base: u32| Ipv4Addr::from(base + i);
            ServicePort {
                namespace: "bench".into(),
                name: format!("svc-{i}"),
                port_name: "http".into(),
                protocol: Protocol::Tcp,
                cluster_ip: Some(ip(u32::from(Ipv4Addr::new(10, 254, 0, 0)) + 100)),
                port: 80,
                node_port: (i < 2000).then(|| 30000 + u16::try_from(i).unwrap_or(0)),
                external_ips: vec![],
                affinity_timeout: None,
                external_policy_local: false,
                internal_policy_local: false,
                endpoints: vec![
                    Endpoint {
                        ip: ip(u32::from(Ipv4Addr::new(10, 1, 0, 0))),
                        port: 8080,
                        local: false,
                    },
                    Endpoint {
                        ip: ip(u32::from(Ipv4Addr::new(10, 2, 0, 0))),
                        port: 8080,
                        local: false,
                    },
                ],
            }
        })
        .collect();
    ProxyState { services }
}

/// Sync times of one backend.
struct Measured {
    full_ms: f64,
    /// One endpoint replaced (median of 5).
    partial_ms: f64,
    /// One endpoint added to a service (median of 3): its balancing rule changes.
    scale_ms: f64,
    rules: usize,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn measure(backend: &mut dyn ProxyBackend, state: &ProxyState, config: &SyncConfig) -> Measured {
    let start = Instant::now();
    let stats = backend.sync(state, config).expect("full sync");
    let full = start.elapsed().as_secs_f64() * 1000.0;
    // One endpoint of one service moves (a pod replaced): median of 5 such changes.
    let mut partial = Vec::new();
    let mut changed = state.clone();
    for round in 0..5u8 {
        let n = changed.services.len();
        let sp = &mut changed.services[n / 2 + usize::from(round)];
        sp.endpoints[1].ip = Ipv4Addr::new(10, 3, round, 7);
        sp.endpoints.sort();
        let start = Instant::now();
        backend.sync(&changed, config).expect("partial sync");
        partial.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mut scale = Vec::new();
    for round in 0..3u8 {
        let n = changed.services.len();
        let sp = &mut changed.services[n / 3 + usize::from(round)];
        sp.endpoints.push(Endpoint {
            ip: Ipv4Addr::new(10, 4, round, 9),
            port: 8080,
            local: false,
        });
        sp.endpoints.sort();
        let start = Instant::now();
        backend.sync(&changed, config).expect("scale sync");
        scale.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    backend.cleanup().expect("cleanup");
    Measured {
        full_ms: full,
        partial_ms: median(partial),
        scale_ms: median(scale),
        rules: stats.rules,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ns = Netns(format!("bench-proxy-{}", std::process::id()));
    let ok = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "ip netns add failed (run as root)");
    let config = SyncConfig {
        cluster_cidr: Some("10.1.0.0/16".parse().expect("cidr")),
        ..SyncConfig::default()
    };
    // PROXY_BENCH_SIZES=1000 runs a subset while iterating (default 1000,10000).
    let sizes: Vec<u32> = std::env::var("PROXY_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<u32>| !v.is_empty())
        .unwrap_or_else(|| vec![1000, 10_000]);
    let mut last = String::new();
    for n in sizes {
        let s = state(n);
        // PROXY_BENCH_MODES=nftables (or iptables) measures one backend only; the
        // other's numbers are then 0 (the iptables full sync at 10 000 takes minutes).
        let modes = std::env::var("PROXY_BENCH_MODES").unwrap_or_default();
        let wants = |mode: &str| modes.is_empty() || modes.split(',').any(|m| m.trim() == mode);
        let skipped = || Measured {
            full_ms: 0.0,
            partial_ms: 0.0,
            scale_ms: 0.0,
            rules: 0,
        };
        let nft = if wants("nftables") {
            measure(&mut NftBackend::new(Runner::in_netns(&ns.0)), &s, &config)
        } else {
            skipped()
        };
        let ipt = if wants("iptables") {
            measure(
                &mut IptablesBackend::new(Runner::in_netns(&ns.0)),
                &s,
                &config,
            )
        } else {
            skipped()
        };
        let (nft_full, nft_partial, ipt_full, ipt_partial) =
            (nft.full_ms, nft.partial_ms, ipt.full_ms, ipt.partial_ms);
        println!(
            "svcs={n} endpoints={} nft_full_ms={nft_full:.0} nft_partial_ms={nft_partial:.1} nft_scale_ms={:.1} nft_rules={} \
             ipt_full_ms={ipt_full:.0} ipt_partial_ms={ipt_partial:.1} ipt_scale_ms={:.1} ipt_rules={}",
            2 * n,
            nft.scale_ms,
            nft.rules,
            ipt.scale_ms,
            ipt.rules,
        );
        last = format!(
            "RESULT svcs={n} nft_full_ms={nft_full:.0} nft_partial_ms={nft_partial:.1} ipt_full_ms={ipt_full:.0} ipt_partial_ms={ipt_partial:.1}"
        );
    }
    println!("{last}");
}

//! The daemon: config -> lease -> backend -> files -> watch, renew, resync.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use ipnet::Ipv4Net;
use tokio::time::{sleep, Instant};

use crate::backend::netlink::{ExtIface, RtNetlink};
use crate::backend::Backend;
use crate::config::{parse_network_config, NetworkConfig};
use crate::lease::LeaseEvent;
use crate::options::Options;
use crate::registry::{OwnLease, Registry, SUBNET_TTL};
use crate::{cni, masq, notify, subnet_file};

/// How often routes (host-gw and vxlan) and masquerade rules are re-checked.
const RESYNC_PERIOD: Duration = Duration::from_secs(10);
const CONFIG_RETRY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn find_ext_iface(nl: &RtNetlink, opts: &Options) -> anyhow::Result<ExtIface> {
    if opts.iface.is_empty() {
        let ext = nl.default_iface().await?;
        tracing::info!(iface = %ext.name, "Using interface of the default route");
        return Ok(ext);
    }
    let mut last = None;
    for spec in &opts.iface {
        match nl.find_iface(spec).await {
            Ok(ext) => return Ok(ext),
            Err(e) => {
                tracing::error!(iface = %spec, error = %e, "Could not find interface");
                last = Some(e);
            }
        }
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("no interface found")))
}

/// Fetches and parses the config, retrying every second as upstream does.
async fn wait_for_config(registry: &mut Registry) -> NetworkConfig {
    loop {
        match registry.network_config().await {
            Ok(text) => match parse_network_config(&text) {
                Ok(c) => return c,
                Err(e) => tracing::error!("Couldn't fetch network config: {e}"),
            },
            Err(e) => tracing::error!("Couldn't fetch network config: {e}"),
        }
        sleep(CONFIG_RETRY).await;
    }
}

fn renew_deadline(lease: &OwnLease, margin: Duration) -> Instant {
    let ttl = Duration::from_secs(u64::try_from(lease.ttl).unwrap_or(0));
    Instant::now() + ttl.saturating_sub(margin).max(Duration::from_secs(1))
}

fn write_files(
    opts: &Options,
    config: &NetworkConfig,
    subnet: &Ipv4Net,
    mtu: u32,
) -> anyhow::Result<()> {
    // The conflist first: the subnet file is what others wait for.
    if let Some(path) = opts.cni_conf_path() {
        subnet_file::write(
            &path,
            &cni::render(&config.network, subnet, mtu, &opts.cni_ipam_data_dir),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    let env = subnet_file::render(&config.network, subnet, mtu, opts.ip_masq);
    subnet_file::write(&opts.subnet_file, &env)
        .with_context(|| format!("writing {}", opts.subnet_file.display()))
}

fn serve_healthz(opts: &Options) -> anyhow::Result<()> {
    if opts.healthz_port == 0 {
        return Ok(());
    }
    let addr: SocketAddr = format!("{}:{}", opts.healthz_ip, opts.healthz_port)
        .parse()
        .with_context(|| format!("bad --healthz-ip {:?}", opts.healthz_ip))?;
    let router = kube_common::metrics::health_router(kube_common::metrics::Metrics::new());
    tokio::spawn(async move {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(%addr, "serving healthz");
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "healthz server failed");
                }
            }
            Err(e) => tracing::error!(%addr, error = %e, "cannot listen for healthz"),
        }
    });
    Ok(())
}

/// Runs until SIGTERM/SIGINT (Ok) or the lease is revoked (Err).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let etcd_cfg = opts.etcd_config(|k| std::env::var(k).ok());
    let nl = RtNetlink::connect()?;
    let ext = find_ext_iface(&nl, &opts).await?;
    let public_ip = opts.public_ip.unwrap_or(ext.addr);
    tracing::info!(iface = %ext.name, addr = %ext.addr, %public_ip, mtu = ext.mtu, "Using interface");

    tracing::info!(endpoints = ?etcd_cfg.endpoints, prefix = %etcd_cfg.prefix, "connecting to etcd");
    let mut registry = Registry::connect(&etcd_cfg)
        .await
        .context("connecting to etcd")?;
    let config = wait_for_config(&mut registry).await;
    tracing::info!(network = %config.network, backend = config.backend.type_name(), "Network config");

    let mut backend = Backend::new(nl, &config.backend, ext, public_ip)
        .await
        .context("setting up the backend")?;
    let attrs = backend.lease_attrs();
    let previous = subnet_file::read_previous_subnet(&opts.subnet_file);
    let mut own = loop {
        match registry.acquire_lease(&config, &attrs, previous).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::error!("Failed to acquire lease: {e}");
                sleep(CONFIG_RETRY).await;
            }
        }
    };
    tracing::info!(subnet = %own.subnet, "Acquired lease");
    backend
        .configure(own.subnet)
        .await
        .context("configuring the backend")?;
    if opts.ip_masq {
        masq::ensure(config.enable_nftables, &config.network, &own.subnet)
            .context("setting up masquerade rules")?;
    }
    write_files(&opts, &config, &own.subnet, backend.mtu())?;
    serve_healthz(&opts)?;
    notify::ready();

    let margin = Duration::from_secs(opts.subnet_lease_renew_margin * 60);
    let mut renew_at = renew_deadline(&own, margin);
    let mut resync = tokio::time::interval(RESYNC_PERIOD);
    let shutdown = kube_common::signals::shutdown_signal();
    tokio::pin!(shutdown);

    let result: anyhow::Result<()> = 'outer: loop {
        // (Re-)list, then watch from just after the list.
        let (leases, revision) = match registry.list_subnets().await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("failed to retrieve subnet leases: {e}");
                sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        if !leases.iter().any(|l| l.subnet == own.subnet) {
            break Err(anyhow::anyhow!(
                "Lease has been revoked. Shutting down daemon."
            ));
        }
        if let Err(e) = backend.snapshot(&leases).await {
            tracing::error!(error = %e, "applying subnet list");
        }
        let mut since = revision + 1;
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut stream = match registry.watch_subnets(since).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "etcd watch failed, retrying");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            loop {
                tokio::select! {
                    _ = &mut shutdown => break 'outer Ok(()),
                    _ = tokio::time::sleep_until(renew_at) => {
                        match registry.update_subnet(&own.subnet, &own.attrs, SUBNET_TTL).await {
                            Ok(renewed) => {
                                let old = own.etcd_lease;
                                own = renewed;
                                registry.revoke(old).await;
                                renew_at = renew_deadline(&own, margin);
                                tracing::info!(subnet = %own.subnet, "Lease renewed");
                            }
                            Err(e) => {
                                tracing::error!("Error renewing lease (trying again in 1 min): {e}");
                                renew_at = Instant::now() + Duration::from_secs(60);
                            }
                        }
                    }
                    _ = resync.tick() => {
                        if let Err(e) = backend.resync().await {
                            tracing::warn!(error = %e, "re-checking routes");
                        }
                        if opts.ip_masq {
                            if let Err(e) = masq::ensure(config.enable_nftables, &config.network, &own.subnet) {
                                tracing::warn!(error = %e, "re-checking masquerade rules");
                            }
                        }
                    }
                    msg = stream.message() => {
                        let resp = match msg {
                            Ok(Some(resp)) => resp,
                            Ok(None) => { tracing::warn!(since, "etcd watch closed, reconnecting"); break; }
                            Err(e) => { tracing::warn!(since, error = %e, "etcd watch failed, reconnecting"); break; }
                        };
                        if resp.compact_revision() > 0 {
                            tracing::warn!("etcd watch fell behind compaction, re-listing and resuming");
                            continue 'outer;
                        }
                        if resp.canceled() {
                            tracing::warn!(reason = %resp.cancel_reason(), "etcd watch canceled, re-listing");
                            continue 'outer;
                        }
                        backoff = Duration::from_millis(100);
                        if let Some(h) = resp.header() {
                            if h.revision() > 0 { since = h.revision() + 1; }
                        }
                        for event in resp.events() {
                            let Some(ev) = crate::registry::parse_event(event) else { continue };
                            match &ev {
                                LeaseEvent::Removed(s) if *s == own.subnet => {
                                    break 'outer Err(anyhow::anyhow!("Lease has been revoked. Shutting down daemon."));
                                }
                                LeaseEvent::Added(l) if l.subnet == own.subnet => continue,
                                _ => {}
                            }
                            if let Err(e) = backend.handle(&ev).await {
                                tracing::error!(error = %e, "applying subnet event");
                            }
                        }
                    }
                }
            }
            sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };
    if opts.ip_masq {
        masq::cleanup(config.enable_nftables);
    }
    result
}

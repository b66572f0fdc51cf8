//! The daemon: reflectors for Services, EndpointSlices and Nodes feed a
//! rate-limited sync loop that hands the computed state to a [`ProxyBackend`].

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::Store;
use kube::Api;
use kube_common::informer::reflect_notify;
use kube_common::metrics::{health_router, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;

use crate::backend::{flush_conntrack, NftBackend, ProxyBackend, Runner, SyncConfig};
use crate::iptables::IptablesBackend;
use crate::options::{Options, ProxyMode};
use crate::state::{build_state, node_ips, ProxyState};

/// What the sync loop needs besides the API client and the backend.
#[derive(Debug, Clone)]
pub struct ProxierSettings {
    pub node_name: String,
    pub sync_config: SyncConfig,
    /// `--nodeport-addresses` was empty or `primary`: use this node's addresses
    /// from its Node object when known.
    pub nodeport_primary: bool,
    pub min_sync_period: Duration,
    pub sync_period: Duration,
    /// Where `conntrack` runs (the backend's namespace).
    pub runner: Runner,
}

/// The proxy's Prometheus metrics.
#[derive(Clone)]
pub struct ProxyMetrics {
    pub sync_duration: Histogram,
    pub rules: Gauge,
    pub last_sync: Gauge<f64, AtomicU64>,
    pub sync_errors: Counter,
}

impl ProxyMetrics {
    pub fn register(metrics: &Metrics, mode: &str) -> Self {
        let m = Self {
            sync_duration: Histogram::new([
                0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
                4.096, 8.192, 16.384,
            ]),
            rules: Gauge::default(),
            last_sync: Gauge::default(),
            sync_errors: Counter::default(),
        };
        metrics.register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            m.sync_duration.clone(),
        );
        metrics.register(
            &format!("kubeproxy_sync_proxy_rules_{mode}_total"),
            "Number of proxy rules programmed by the last sync",
            m.rules.clone(),
        );
        metrics.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            m.last_sync.clone(),
        );
        metrics.register(
            "kubeproxy_sync_proxy_rules_errors",
            "Failed rule syncs",
            m.sync_errors.clone(),
        );
        m
    }
}

fn current_state(
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    node_name: &str,
) -> ProxyState {
    let services: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
    let slices: Vec<EndpointSlice> = slices.state().iter().map(|s| (**s).clone()).collect();
    build_state(&services, &slices, node_name)
}

/// Runs the watch + sync loop until `shutdown` completes.
pub async fn run_proxier(
    client: kube::Client,
    backend: Box<dyn ProxyBackend>,
    settings: ProxierSettings,
    metrics: ProxyMetrics,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let notify = Arc::new(Notify::new());
    let services = reflect_notify(Api::<Service>::all(client.clone()), notify.clone());
    let slices = reflect_notify(Api::<EndpointSlice>::all(client.clone()), notify.clone());
    let nodes = reflect_notify(Api::<Node>::all(client), notify.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        ready = async {
            services.wait_until_ready().await?;
            slices.wait_until_ready().await?;
            nodes.wait_until_ready().await
        } => ready.context("waiting for the initial lists")?,
        _ = &mut shutdown => return Ok(()),
    }
    tracing::info!(node = %settings.node_name, mode = backend.mode(), "caches synced, starting rule sync");

    let mut backend = Some(backend);
    let mut last_state: Option<ProxyState> = None;
    let mut last_config: Option<SyncConfig> = None;
    let mut last_sync: Option<Instant> = None;
    let mut force = true;
    let mut last_full = Instant::now();
    loop {
        if let Some(at) = last_sync {
            let elapsed = at.elapsed();
            if elapsed < settings.min_sync_period {
                tokio::select! {
                    _ = tokio::time::sleep(settings.min_sync_period - elapsed) => {}
                    _ = &mut shutdown => return Ok(()),
                }
            }
        }
        let state = current_state(&services, &slices, &settings.node_name);
        let mut config = settings.sync_config.clone();
        if settings.nodeport_primary {
            if let Some(node) = nodes
                .state()
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(settings.node_name.as_str()))
            {
                config.nodeport_addresses = node_ips(node)
                    .into_iter()
                    .map(ipnet::Ipv4Net::from)
                    .collect();
            }
        }
        let changed = last_state.as_ref() != Some(&state) || last_config.as_ref() != Some(&config);
        let mut failed = false;
        if changed || force {
            let Some(mut b) = backend.take() else {
                anyhow::bail!("backend lost after a panicked sync")
            };
            if force {
                b.invalidate();
            }
            let started = Instant::now();
            let (b, result) = {
                let state = state.clone();
                let config = config.clone();
                tokio::task::spawn_blocking(move || {
                    let r = b.sync(&state, &config);
                    (b, r)
                })
                .await
                .context("sync task panicked")?
            };
            backend = Some(b);
            let elapsed = started.elapsed();
            last_sync = Some(Instant::now());
            match result {
                Ok(stats) => {
                    metrics.sync_duration.observe(elapsed.as_secs_f64());
                    metrics
                        .rules
                        .set(i64::try_from(stats.rules).unwrap_or(i64::MAX));
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or_default();
                    metrics.last_sync.set(now);
                    tracing::debug!(rules = stats.rules, ?elapsed, "synced proxy rules");
                    if let Some(old) = &last_state {
                        let runner = settings.runner.clone();
                        let old = old.clone();
                        let new = state.clone();
                        tokio::task::spawn_blocking(move || flush_conntrack(&runner, &old, &new));
                    }
                    last_state = Some(state);
                    last_config = Some(config);
                    if force {
                        last_full = Instant::now();
                    }
                    force = false;
                }
                Err(err) => {
                    metrics.sync_errors.inc();
                    tracing::error!("syncing proxy rules: {err}");
                    force = true;
                    failed = true;
                    last_state = None;
                }
            }
        }
        tokio::select! {
            _ = notify.notified() => {}
            // After a failure, retry (as a full sync) without waiting for a change.
            _ = tokio::time::sleep(settings.min_sync_period.max(Duration::from_secs(1))), if failed => {}
            // Every sync period re-checks the state; a full rewrite happens at most once
            // per FULL_SYNC_PERIOD (upstream `proxyutil.FullSyncPeriod`), or after a failure.
            _ = tokio::time::sleep(settings.sync_period) => force = last_full.elapsed() >= FULL_SYNC_PERIOD,
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Upstream's `proxyutil.FullSyncPeriod`: how often a full resync is forced without
/// a failure. Partial syncs fail when the table was changed from outside (a missing
/// map or chain), which forces a full one sooner.
pub const FULL_SYNC_PERIOD: Duration = Duration::from_secs(3600);

/// The backend for a mode.
pub fn backend_for(mode: ProxyMode, runner: Runner) -> Box<dyn ProxyBackend> {
    match mode {
        ProxyMode::Nftables => Box::new(NftBackend::new(runner)),
        ProxyMode::Iptables => Box::new(IptablesBackend::new(runner)),
    }
}

/// `main`: flags → client, health/metrics servers, proxier.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    if opts.cleanup {
        for mode in [ProxyMode::Nftables, ProxyMode::Iptables] {
            if let Err(err) = backend_for(mode, Runner::host()).cleanup() {
                tracing::warn!("cleaning up {mode:?} rules: {err}");
            }
        }
        return Ok(());
    }
    let sync_config = opts.sync_config()?;
    let settings = ProxierSettings {
        node_name: opts.node_name(),
        nodeport_primary: sync_config.nodeport_addresses.is_empty(),
        sync_config,
        min_sync_period: opts.effective_min_sync_period(),
        sync_period: opts.sync_period,
        runner: Runner::host(),
    };
    let client = opts.client.client("kube-proxy").await?;
    let metrics = Metrics::new();
    let backend = backend_for(opts.proxy_mode, Runner::host());
    // The other mode's leftovers would shadow or duplicate our rules.
    let other = match opts.proxy_mode {
        ProxyMode::Nftables => ProxyMode::Iptables,
        ProxyMode::Iptables => ProxyMode::Nftables,
    };
    if let Err(err) = backend_for(other, Runner::host()).cleanup() {
        tracing::debug!("cleaning up {other:?} rules: {err}");
    }
    let proxy_metrics = ProxyMetrics::register(&metrics, backend.mode());

    let mut addresses = vec![opts.healthz_bind_address];
    if opts.metrics_bind_address != opts.healthz_bind_address {
        addresses.push(opts.metrics_bind_address);
    }
    for address in addresses.into_iter().filter(|a| a.port() != 0) {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let router = health_router(metrics.clone());
        tracing::info!("serving /healthz and /metrics on {address}");
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("health server: {err}");
            }
        });
    }
    run_proxier(
        client,
        backend,
        settings,
        proxy_metrics,
        kube_common::signals::shutdown_signal(),
    )
    .await
}

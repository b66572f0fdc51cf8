//! The daemon: reflectors for Services and EndpointSlices feed the index the DNS
//! handler answers from; DNS on UDP+TCP, `/healthz`, `/readyz`, `/metrics` on HTTP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use hickory_server::Server;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube_common::informer::reflect_notify;
use kube_common::metrics::Metrics;
use tokio::sync::Notify;

use crate::forward::{without_self, Forwarder};
use crate::handler::{DnsHandler, DnsMetrics, DnsState};
use crate::index::ClusterIndex;
use crate::options::{Options, OptionsError};
use crate::resolve::Zone;

/// Bursts of watch events within this interval are folded into one index rebuild.
const MIN_REBUILD_INTERVAL: Duration = Duration::from_millis(100);
/// How long an idle TCP client connection is kept.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Outgoing responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Keeps `state`'s index current with the cluster until `shutdown`.
pub async fn run_indexer(
    client: kube::Client,
    state: Arc<DnsState>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let notify = Arc::new(Notify::new());
    let services = reflect_notify(Api::<Service>::all(client.clone()), notify.clone());
    let slices = reflect_notify(Api::<EndpointSlice>::all(client), notify.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        ready = async {
            services.wait_until_ready().await?;
            slices.wait_until_ready().await
        } => ready.context("waiting for the initial lists")?,
        _ = &mut shutdown => return Ok(()),
    }
    loop {
        let svcs = services.state();
        let eps = slices.state();
        let index = ClusterIndex::build(svcs.iter().map(|s| &**s), eps.iter().map(|s| &**s));
        let first = !state.synced();
        tracing::debug!(services = index.len(), "rebuilt the DNS index");
        state.set_index(index);
        if first {
            tracing::info!("caches synced, serving cluster names");
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = &mut shutdown => return Ok(()),
        }
        tokio::time::sleep(MIN_REBUILD_INTERVAL).await;
    }
}

/// `/healthz`, `/livez` (ok while running), `/readyz` (ok once the caches synced), `/metrics`.
pub fn health_router(metrics: Metrics, state: Arc<DnsState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let synced = state.synced();
                async move {
                    if synced {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.response() }
            }),
        )
}

/// The upstreams from the flags, without ourselves.
fn upstreams(opts: &Options, listen: SocketAddr) -> anyhow::Result<Vec<SocketAddr>> {
    let upstreams = match opts.upstreams() {
        Ok(upstreams) => upstreams,
        Err(err @ OptionsError::ResolvConf { .. }) => {
            tracing::warn!("{err}; names outside the cluster domain will get SERVFAIL");
            Vec::new()
        }
        Err(err) => return Err(err.into()),
    };
    let upstreams = without_self(upstreams, listen);
    if upstreams.is_empty() {
        tracing::warn!("no upstream resolvers: names outside the cluster domain will get SERVFAIL");
    } else {
        tracing::info!(?upstreams, "forwarding names outside the cluster domain");
    }
    Ok(upstreams)
}

/// `main`: flags → client, DNS server, health/metrics server, indexer.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    let domain = opts.domain()?;
    let listen = opts.dns_address();
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let zone = Zone::new(&domain, opts.ttl, serial).context("building the zone")?;
    let forwarder = Forwarder::new(upstreams(&opts, listen)?, opts.upstream_timeout);
    let client = opts.client.client("kube-dns").await?;
    let metrics = Metrics::new();
    let state = Arc::new(DnsState::new(
        zone,
        forwarder,
        DnsMetrics::register(&metrics),
    ));

    let udp = tokio::net::UdpSocket::bind(listen)
        .await
        .with_context(|| format!("binding udp {listen}"))?;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding tcp {listen}"))?;
    let mut server = Server::new(DnsHandler::new(state.clone()));
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    tracing::info!(%listen, domain = %domain, "serving DNS on udp and tcp");

    if let Some(address) = opts.health_address() {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let router = health_router(metrics.clone(), state.clone());
        tracing::info!("serving /healthz, /readyz and /metrics on {address}");
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("health server: {err}");
            }
        });
    }

    run_indexer(client, state, kube_common::signals::shutdown_signal()).await?;
    server
        .shutdown_gracefully()
        .await
        .context("stopping the DNS server")?;
    Ok(())
}

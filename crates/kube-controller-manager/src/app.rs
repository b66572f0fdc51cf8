//! Wiring: client, health/metrics server, leader election, then every enabled
//! controller until a signal (upstream `cmd/kube-controller-manager/app`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use kube_common::metrics::{health_router, Metrics};
use tokio::task::JoinSet;

use crate::context::ControllerContext;
use crate::descriptors;
use crate::options::Options;

const COMPONENT: &str = "kube-controller-manager";

pub async fn run(options: Options) -> anyhow::Result<()> {
    options.logging.init();
    let enabled: Vec<&'static str> =
        descriptors::enabled(descriptors::descriptors(), &options.controllers)?
            .iter()
            .map(|d| d.name)
            .collect();
    let config = options.client.config(COMPONENT).await?;
    let root_ca = kube_common::client::root_ca_pem(&config);
    // With --use-service-account-credentials each controller gets a client of its own
    // built from this configuration (server and CA only).
    let sa_base = options
        .use_service_account_credentials
        .then(|| config.clone());
    let client = kube::Client::try_from(config)?;
    let metrics = Metrics::new();

    if options.health_port() != 0 {
        let addr: SocketAddr = format!("{}:{}", options.bind_address, options.health_port())
            .parse()
            .with_context(|| format!("invalid --bind-address {:?}", options.bind_address))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        tracing::info!(%addr, "serving /healthz and /metrics");
        let router = health_router(metrics.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!("health server: {err}");
            }
        });
    }

    let identity = format!("{}_{}", hostname(), random_suffix());
    let ctx = ControllerContext {
        client: client.clone(),
        options: Arc::new(options.clone()),
        metrics,
        root_ca,
    };
    let run = kube_common::leader::run_leader_elected(
        client,
        &options.leader_election,
        COMPONENT,
        identity,
        move || start_controllers(ctx, enabled, sa_base),
    );
    tokio::select! {
        result = run => result,
        () = kube_common::signals::shutdown_signal() => Ok(()),
    }
}

/// Starts the named controllers and waits; the first one to fail stops the process.
async fn start_controllers(
    ctx: ControllerContext,
    enabled: Vec<&'static str>,
    sa_base: Option<kube::Config>,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for name in enabled {
        let Some(descriptor) = descriptors::lookup(descriptors::descriptors(), name) else {
            continue;
        };
        tracing::info!(controller = name, "starting controller");
        let mut controller_ctx = ctx.clone();
        if let Some(base) = &sa_base {
            let account = crate::credentials::service_account_for(name);
            controller_ctx.client =
                crate::credentials::client_for(&ctx.client, base, account).await?;
        }
        let fut = (descriptor.start)(controller_ctx);
        tasks.spawn(async move { (name, fut.await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok(()))) => tracing::info!(controller = name, "controller stopped"),
            Ok((name, Err(err))) => return Err(err.context(format!("controller {name}"))),
            Err(err) => return Err(anyhow::anyhow!("controller task panicked: {err}")),
        }
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

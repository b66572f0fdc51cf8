//! Wiring: API client, informers, health/metrics server, leader election, and the
//! scheduling thread while leading.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;
use kube::runtime::watcher;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::algorithm::Framework;
use crate::cache::Cache;
use crate::events::EventRecorder;
use crate::handlers::{NamespaceHandler, NodeHandler, PodHandler};
use crate::informer;
use crate::metrics::SchedulerMetrics;
use crate::options::Options;
use crate::queue::SchedulingQueue;
use crate::scheduler::{Binder, Scheduler};

/// The lease name upstream uses.
pub const LEASE_NAME: &str = "kube-scheduler";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

async fn serve_health(
    addr: SocketAddr,
    metrics: kube_common::metrics::Metrics,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, kube_common::metrics::health_router(metrics)).await
        {
            tracing::error!("health server: {err}");
        }
    });
    Ok(())
}

/// Resolves once `flag` turns true.
async fn wait_flag(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|v| *v).await;
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let client = opts.client.client("kube-scheduler").await?;
    let registry = kube_common::metrics::Metrics::new();
    let metrics = SchedulerMetrics::new(&opts.scheduler_name, &registry);
    if opts.secure_port != 0 {
        serve_health(
            SocketAddr::new(opts.bind_address, opts.secure_port),
            registry.clone(),
        )
        .await?;
    }
    if opts.port != 0 {
        serve_health(SocketAddr::new(opts.address, opts.port), registry.clone()).await?;
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        kube_common::signals::shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });

    let cache = Arc::new(Mutex::new(Cache::new()));
    let queue = Arc::new(SchedulingQueue::new(
        Duration::from_secs(opts.pod_initial_backoff_seconds),
        Duration::from_secs(
            opts.pod_max_backoff_seconds
                .max(opts.pod_initial_backoff_seconds),
        ),
    ));
    let (pods_synced, pods_rx) = watch::channel(false);
    let (nodes_synced, nodes_rx) = watch::channel(false);
    let (ns_synced, ns_rx) = watch::channel(false);
    tokio::spawn(informer::run(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
        PodHandler {
            cache: cache.clone(),
            queue: queue.clone(),
            scheduler_name: opts.scheduler_name.clone(),
        },
        pods_synced,
    ));
    tokio::spawn(informer::run(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        NodeHandler {
            cache: cache.clone(),
            queue: queue.clone(),
        },
        nodes_synced,
    ));
    tokio::spawn(informer::run(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        NamespaceHandler {
            cache: cache.clone(),
        },
        ns_synced,
    ));
    {
        let (queue, metrics, cache) = (queue.clone(), metrics.clone(), cache.clone());
        tokio::spawn(async move {
            loop {
                metrics.set_pending(queue.pending());
                let (nodes, pods, assumed) = {
                    let c = cache.lock();
                    (c.node_count(), c.pod_count(), c.assumed_count())
                };
                metrics.set_cache_size(nodes, pods, assumed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    let host = hostname();
    let identity = format!("{host}_{}", uuid::Uuid::new_v4());
    let recorder = EventRecorder::start(
        client.clone(),
        &opts.scheduler_name,
        &format!("{}-{host}", opts.scheduler_name),
    );
    let leading = Arc::new(AtomicBool::new(false));

    let run = {
        let (client, cache, queue, leading, shutdown_rx) = (
            client.clone(),
            cache.clone(),
            queue.clone(),
            leading.clone(),
            shutdown_rx.clone(),
        );
        let percentage = opts.percentage_of_nodes_to_score;
        move || async move {
            leading.store(true, Ordering::SeqCst);
            informer::wait_synced(vec![pods_rx, nodes_rx, ns_rx]).await;
            tracing::info!("caches synced; starting the scheduling loop");
            let binder = Binder::new(
                client,
                queue.clone(),
                cache,
                recorder,
                metrics,
                tokio::runtime::Handle::current(),
            );
            let scheduler = Scheduler::new(Framework::new(percentage), binder);
            let thread = std::thread::Builder::new()
                .name("scheduler".into())
                .spawn(move || scheduler.run())
                .context("starting the scheduling thread")?;
            // Stops the loop when this future ends or is dropped (leadership lost).
            struct CloseOnDrop(Arc<SchedulingQueue>);
            impl Drop for CloseOnDrop {
                fn drop(&mut self) {
                    self.0.close();
                }
            }
            let _close = CloseOnDrop(queue);
            wait_flag(shutdown_rx).await;
            drop(_close);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            Ok(())
        }
    };
    let elected = kube_common::leader::run_leader_elected(
        client,
        &opts.leader_election,
        LEASE_NAME,
        identity,
        run,
    );
    tokio::pin!(elected);
    tokio::select! {
        result = &mut elected => result,
        () = wait_flag(shutdown_rx) => {
            if leading.load(Ordering::SeqCst) {
                // Let the leader's run finish so the lease is released.
                match tokio::time::timeout(Duration::from_secs(5), elected).await {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                }
            } else {
                Ok(())
            }
        }
    }
}

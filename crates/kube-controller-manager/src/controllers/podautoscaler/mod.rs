//! Horizontal pod autoscaler (upstream `pkg/controller/podautoscaler`): every
//! `--horizontal-pod-autoscaler-sync-period` each autoscaling/v2 HPA reads its
//! target's `/scale`, the pods' resource usage from `metrics.k8s.io`, computes
//! the replica count (usage/request ratio with tolerance, missing and unready
//! pods treated conservatively), stabilizes and rate-limits it (`behavior`, or the
//! downscale stabilization flag), rescales and reports status and events.

pub mod metrics;
pub mod normalize;
pub mod replica_calculator;
mod sync;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::{watcher, WatchStreamExt};
use parking_lot::Mutex;

use crate::context::ControllerContext;
use crate::util::events::Recorder;
use crate::util::{informer, key_of};

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub recorder: Recorder,
    pub calc: replica_calculator::Config,
    pub downscale_stabilization: Duration,
    /// Recommendations and scale events per HPA key.
    pub history: Mutex<HashMap<String, normalize::History>>,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

/// Keeps a reflector's store fed (its trigger stream must be drained).
fn drain<S: futures::Stream + Send + 'static>(stream: S) {
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let o = &ctx.options;
    let (pods, pod_stream) = informer::spawn(
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    let (hpas, hpa_stream) = informer::spawn(
        watcher(
            Api::<HorizontalPodAutoscaler>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    );
    drain(pod_stream);
    drain(hpa_stream);
    pods.wait_until_ready().await?;
    hpas.wait_until_ready().await?;
    let state = Arc::new(Ctx {
        client: client.clone(),
        pods,
        recorder: Recorder::new(client, "horizontal-pod-autoscaler"),
        calc: replica_calculator::Config {
            tolerance: o.horizontal_pod_autoscaler_tolerance,
            cpu_initialization_period_ms: i64::try_from(
                o.horizontal_pod_autoscaler_cpu_initialization_period
                    .as_millis(),
            )
            .unwrap_or(i64::MAX),
            delay_of_initial_readiness_ms: i64::try_from(
                o.horizontal_pod_autoscaler_initial_readiness_delay
                    .as_millis(),
            )
            .unwrap_or(i64::MAX),
        },
        downscale_stabilization: o.horizontal_pod_autoscaler_downscale_stabilization,
        history: Mutex::new(HashMap::new()),
    });
    let period = o
        .horizontal_pod_autoscaler_sync_period
        .max(Duration::from_millis(100));
    let workers = usize::from(o.concurrent_horizontal_pod_autoscaler_syncs.max(1));
    tracing::info!(?period, "starting the horizontal pod autoscaler");
    // Upstream enqueues each HPA at most once per sync period; a fixed tick over
    // the cache does the same without a queue.
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let all = hpas.state();
        let live: HashSet<String> = all.iter().map(|h| key_of(&h.metadata)).collect();
        state.history.lock().retain(|k, _| live.contains(k));
        futures::stream::iter(all)
            .for_each_concurrent(workers, |hpa| {
                let state = state.clone();
                async move {
                    if hpa.metadata.deletion_timestamp.is_some() {
                        return;
                    }
                    if let Err(err) = sync::sync_hpa(&hpa, &state).await {
                        tracing::warn!(hpa = %key_of(&hpa.metadata), "sync failed: {err}");
                    }
                }
            })
            .await;
    }
}

//! Pod start latency through the kubelet against raw CRI, run by
//! `scripts/bench-kubelet.sh` (as root, with containerd). Measures in one run:
//! - raw CRI: RunPodSandbox + CreateContainer + StartContainer of the same
//!   configs the kubelet builds, 30 times one after the other;
//! - API create → status Running seen by a watch, 30 pre-bound pods one at a time;
//! - 30 pods created at once → all Running;
//! - kubelet RSS with 30 pods running.
//!
//! Last line: `RESULT pod_start_p50_ms=N pod_start_p99_ms=N raw_cri_p50_ms=N
//! overhead_p50_ms=N burst30_all_running_ms=N kubelet_rss_mb=N`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{busybox, phase, pod, Cluster};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kubelet::cri::{RemoteRuntime, RuntimeService};
use kubelet::pod::spec::{container_config, sandbox_config, SpecSettings};
use parking_lot::Mutex;
use tokio::sync::Notify;

const PODS: usize = 30;

/// When each pod was first seen Running by a watch.
#[derive(Default)]
struct Seen {
    running: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

impl Seen {
    async fn wait(&self, names: &[String], timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let running = self.running.lock();
                if names.iter().all(|n| running.contains_key(n)) {
                    return names.iter().filter_map(|n| running.get(n).copied()).max();
                }
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}

fn bench_pod(name: &str, node: &str) -> Pod {
    let mut p = pod(
        name,
        node,
        "Always",
        serde_json::json!([busybox("main", "exec sleep 3600")]),
    );
    if let Some(spec) = p.spec.as_mut() {
        spec.termination_grace_period_seconds = Some(1);
    }
    p
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

async fn raw_cri(cri: &RemoteRuntime, node: &str, log_dir: &std::path::Path) -> Vec<u128> {
    let settings = SpecSettings {
        pod_logs_dir: log_dir.into(),
        cluster_dns: Vec::new(),
        cluster_domain: "cluster.local".into(),
    };
    let mut samples = Vec::new();
    let mut sandboxes = Vec::new();
    for i in 0..PODS {
        let mut p = bench_pod(&format!("raw-{i}"), node);
        p.metadata.uid = Some(format!("raw-uid-{i}-{}", std::process::id()));
        let config = sandbox_config(&p, 0, &settings);
        std::fs::create_dir_all(&config.log_directory).expect("log dir");
        let container = p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .expect("container");
        let started = Instant::now();
        let sandbox = cri
            .run_pod_sandbox(config.clone(), String::new())
            .await
            .expect("RunPodSandbox");
        let id = cri
            .create_container(
                &sandbox,
                container_config(&p, &container, 0, Vec::new(), Vec::new()),
                config,
            )
            .await
            .expect("CreateContainer");
        cri.start_container(&id).await.expect("StartContainer");
        samples.push(ms(started.elapsed()));
        sandboxes.push(sandbox);
    }
    for sandbox in sandboxes {
        let _ = cri.stop_pod_sandbox(&sandbox).await;
        let _ = cri.remove_pod_sandbox(&sandbox).await;
    }
    samples
}

async fn delete_all(pods: &Api<Pod>, names: &[String], cri: &RemoteRuntime) {
    for name in names {
        pods.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    common::wait_for(
        Duration::from_secs(120),
        "pods and sandboxes gone",
        || async {
            let left = pods.list(&Default::default()).await.ok()?.items.len();
            let sandboxes = cri.list_pod_sandbox(None).await.ok()?.len();
            (left == 0 && sandboxes == 0).then_some(())
        },
    )
    .await;
}

fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    kib.div_ceil(1024)
}

#[tokio::main]
async fn main() {
    if !common::can_run_containers() {
        std::process::exit(1);
    }
    let cluster = Cluster::start(false).await;
    cluster.wait_node_ready().await;
    let cri = RemoteRuntime::connect(&cluster.containerd.endpoint())
        .await
        .expect("cri");
    let pods = cluster.pods();

    let seen = Arc::new(Seen::default());
    let watch_seen = seen.clone();
    let watch_api = pods.clone();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            if let Ok(Event::Apply(p) | Event::InitApply(p)) = event {
                if phase(&p) == "Running" {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    watch_seen
                        .running
                        .lock()
                        .entry(name)
                        .or_insert_with(Instant::now);
                    watch_seen.changed.notify_waiters();
                }
            }
        }
    });

    // Warm up (image and first sandbox), not measured.
    let warm = vec!["warmup".to_string()];
    pods.create(&PostParams::default(), &bench_pod("warmup", &cluster.node))
        .await
        .expect("create");
    seen.wait(&warm, Duration::from_secs(60))
        .await
        .expect("warm-up pod Running");
    delete_all(&pods, &warm, &cri).await;

    let log_dir = tempfile::tempdir().expect("tempdir");
    let mut raw = raw_cri(&cri, &cluster.node, log_dir.path()).await;
    raw.sort_unstable();
    eprintln!("raw CRI sandbox+create+start ms: {raw:?}");

    let mut sequential = Vec::new();
    let mut names = Vec::new();
    for i in 0..PODS {
        let name = format!("seq-{i}");
        let created = Instant::now();
        pods.create(&PostParams::default(), &bench_pod(&name, &cluster.node))
            .await
            .expect("create");
        let running = seen
            .wait(std::slice::from_ref(&name), Duration::from_secs(60))
            .await
            .expect("pod Running");
        sequential.push(ms(running.duration_since(created)));
        names.push(name);
    }
    sequential.sort_unstable();
    eprintln!("API create → Running seen by a watch, ms: {sequential:?}");
    delete_all(&pods, &names, &cri).await;

    let burst: Vec<String> = (0..PODS).map(|i| format!("burst-{i}")).collect();
    let started = Instant::now();
    let creates = burst.iter().map(|name| {
        let pods = pods.clone();
        let p = bench_pod(name, &cluster.node);
        async move {
            pods.create(&PostParams::default(), &p)
                .await
                .expect("create")
        }
    });
    futures::future::join_all(creates).await;
    let all_running = seen
        .wait(&burst, Duration::from_secs(180))
        .await
        .expect("burst pods Running");
    let burst_ms = ms(all_running.duration_since(started));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = cluster.kubelet_pid().map_or(0, rss_mb);
    delete_all(&pods, &burst, &cri).await;

    let (p50, p99, raw50) = (
        percentile(&sequential, 0.5),
        percentile(&sequential, 0.99),
        percentile(&raw, 0.5),
    );
    println!(
        "RESULT pod_start_p50_ms={p50} pod_start_p99_ms={p99} raw_cri_p50_ms={raw50} overhead_p50_ms={} burst30_all_running_ms={burst_ms} kubelet_rss_mb={rss}",
        p50.saturating_sub(raw50)
    );
}

//! `scripts/bench-scheduler.sh` runs this: real etcd, our apiserver and our scheduler
//! (release builds); 5 000 nodes created through the API, then 10 000 pause pods
//! (upstream scheduler_perf's `pod-default.yaml`: 100m cpu, 500Mi memory) created
//! concurrently. Throughput is pods bound per second from the first create to the
//! last bind (seen through a watch); bind latency is from a pod's create response to
//! its binding arriving on the watch. Compared against scheduler_perf's SchedulingBasic
//! floor for 5 000 nodes / 10 000 pods (270 pods/s). Last line:
//! `RESULT nodes=5000 pods=10000 pods_per_s=N bind_p99_ms=N vs_upstream_floor=R`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use parking_lot::Mutex;
use serde_json::{json, Value};
use test_support::{ApiServer, Etcd};

const NODES: usize = 5_000;
const PODS: usize = 10_000;
const CONCURRENCY: usize = 32;
const UPSTREAM_FLOOR_PODS_PER_S: f64 = 270.0;
const APISERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/release/kube-apiserver"
);

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node like scheduler_perf's `node-default.yaml`, with the labels a real one has.
fn node(i: usize) -> Value {
    let name = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "n1-standard-4",
            "topology.kubernetes.io/region": "region-1",
            "topology.kubernetes.io/zone": format!("zone-{}", i % 10)
        }},
        "spec": {},
        "status": {
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "containerRuntimeVersion": "containerd://1.6.20", "operatingSystem": "linux", "architecture": "amd64",
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "", "kubeProxyVersion": ""}
        }
    })
}

fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": "bench"},
        "spec": {"containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "100m", "memory": "500Mi"}, "requests": {"cpu": "100m", "memory": "500Mi"}}
        }]}
    })
}

async fn post(client: &HttpClient, url: &str, body: Bytes) -> u16 {
    let Ok(req) = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
    else {
        return 0;
    };
    match client.request(req).await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            code
        }
        Err(_) => 0,
    }
}

async fn get_json(client: &HttpClient, url: &str) -> Value {
    let req = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client.request(req).await.expect("get");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// Runs `f(i)` for i in 0..n with `CONCURRENCY` workers; panics on any non-201.
async fn create_all<F>(n: usize, f: F)
where
    F: Fn(usize) -> (String, Bytes, Option<Arc<Mutex<HashMap<String, Instant>>>>)
        + Send
        + Sync
        + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, f, client) = (next.clone(), f.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (url, body, created) = f(i);
                // Throttled (429): retry after a second, as client-go does.
                let mut code = post(&client, &url, body.clone()).await;
                for _ in 0..10 {
                    if code != 429 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    code = post(&client, &url, body.clone()).await;
                }
                assert_eq!(code, 201, "create #{i} at {url}");
                if let Some(created) = created {
                    created.lock().insert(format!("pod-{i}"), Instant::now());
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`: utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        Path::new(APISERVER).exists(),
        "{APISERVER} is missing: run `cargo build --release -p kube-apiserver` first"
    );
    let etcd = Etcd::start()?;
    let apiserver = ApiServer::start(
        Path::new(APISERVER),
        &etcd,
        &["--disable-admission-plugins=ServiceAccount"],
    )?;
    let base = apiserver.url();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let health_port = test_support::free_port();
    let log_dir = tempfile::tempdir()?;
    let log_path = log_dir.path().join("kube-scheduler.log");
    let log = std::fs::File::create(&log_path)?;
    let scheduler = Killed(
        Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
            .arg(format!("--master={base}"))
            .arg(format!("--secure-port={health_port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    );

    let code = post(
        &client,
        &format!("{base}/api/v1/namespaces"),
        Bytes::from(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
                .to_string(),
        ),
    )
    .await;
    anyhow::ensure!(code == 201, "creating namespace bench: {code}");

    let t = Instant::now();
    let nodes_url = format!("{base}/api/v1/nodes");
    create_all(NODES, move |i| {
        (nodes_url.clone(), Bytes::from(node(i).to_string()), None)
    })
    .await;
    println!("created {NODES} nodes in {:.1}s", t.elapsed().as_secs_f64());

    // Wait until the scheduler's cache has every node.
    let metrics_url = format!("http://127.0.0.1:{health_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = test_support::http_get(&metrics_url)
            .map(|r| r.body)
            .unwrap_or_default();
        if text.contains(&format!("scheduler_cache_size{{type=\"nodes\"}} {NODES}")) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "scheduler did not see {NODES} nodes; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Watch bench pods from now on; record when each pod's binding arrives.
    let list = get_json(
        &client,
        &format!("{base}/api/v1/namespaces/bench/pods?limit=1"),
    )
    .await;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .to_string();
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let watcher = {
        let (client, bound, url) = (
            client.clone(),
            bound.clone(),
            format!("{base}/api/v1/namespaces/bench/pods?watch=1&resourceVersion={rv}"),
        );
        tokio::spawn(async move {
            let req = hyper::Request::get(&url)
                .body(Full::new(Bytes::new()))
                .expect("request");
            let resp = client.request(req).await.expect("watch");
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    let node = ev
                        .pointer("/object/spec/nodeName")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if node.is_empty() {
                        continue;
                    }
                    let name = ev
                        .pointer("/object/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let mut b = bound.lock();
                    b.entry(name).or_insert_with(Instant::now);
                    if b.len() >= PODS {
                        return;
                    }
                }
            }
        })
    };

    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let pids = [
        ("kube-apiserver", apiserver.pid()),
        ("etcd", etcd.pid()),
        ("kube-scheduler", scheduler.0.id()),
        ("bench client", std::process::id()),
    ];
    let cpu_before: Vec<f64> = pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
    let start = Instant::now();
    let pods_url = format!("{base}/api/v1/namespaces/bench/pods");
    let created2 = created.clone();
    create_all(PODS, move |i| {
        (
            pods_url.clone(),
            Bytes::from(pod(i).to_string()),
            Some(created2.clone()),
        )
    })
    .await;
    let create_secs = start.elapsed().as_secs_f64();
    println!(
        "created {PODS} pods in {create_secs:.1}s ({:.0}/s)",
        PODS as f64 / create_secs
    );

    if tokio::time::timeout(Duration::from_secs(600), watcher)
        .await
        .is_err()
    {
        anyhow::bail!(
            "only {} of {PODS} pods bound; scheduler log:\n{}",
            bound.lock().len(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }
    let cpu: Vec<String> = pids
        .iter()
        .zip(&cpu_before)
        .map(|((name, pid), before)| format!("{name} {:.1}s", cpu_seconds(*pid) - before))
        .collect();
    println!("cpu during the run: {}", cpu.join(", "));
    let bound = bound.lock().clone();
    let created = created.lock().clone();
    let last_bind = bound.values().max().copied().unwrap_or(start);
    let total = last_bind.duration_since(start).as_secs_f64();
    let mut lats: Vec<f64> = bound
        .iter()
        .filter_map(|(name, b)| {
            created
                .get(name)
                .map(|c| b.saturating_duration_since(*c).as_secs_f64() * 1000.0)
        })
        .collect();
    lats.sort_by(|a, b| a.total_cmp(b));
    let pods_per_s = PODS as f64 / total;
    println!(
        "bound {} pods in {total:.2}s; bind latency p50 {:.1}ms p90 {:.1}ms p99 {:.1}ms",
        bound.len(),
        percentile(&lats, 0.5),
        percentile(&lats, 0.9),
        percentile(&lats, 0.99)
    );
    drop(scheduler);
    println!(
        "RESULT nodes={NODES} pods={PODS} pods_per_s={pods_per_s:.0} bind_p99_ms={:.0} vs_upstream_floor={:.2}",
        percentile(&lats, 0.99),
        pods_per_s / UPSTREAM_FLOOR_PODS_PER_S
    );
    Ok(())
}

//! `scripts/bench-apiserver.sh` runs this: it starts a real etcd and our apiserver and
//! measures, in one run, API pod creates/s against raw etcd create-if-absent txns of the
//! same bytes at the same concurrency, the latency of listing 10 000 pods, and watch
//! event delivery latency to 100 watchers. Last line:
//! `RESULT api_creates_per_s=N raw_etcd_creates_per_s=N ratio=R list_10k_ms=N watch_p99_ms=N`.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{json, Value};
use test_support::{ApiServer, Etcd};

const CONCURRENCY: usize = 32;
const CREATES: usize = 10_000;
/// The raw and API creates run in alternating rounds of `CREATES / ROUNDS` (the side
/// that goes first alternating too), so that a slow spell of the (shared, virtual)
/// machine falls on both sides alike.
const ROUNDS: usize = 10;
const WATCHERS: usize = 100;
const WATCH_EVENTS: usize = 200;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A realistic ~2 KiB pod.
fn pod(name: &str) -> Value {
    let mut env = Vec::new();
    for i in 0..24 {
        env.push(json!({"name": format!("SETTING_{i}"), "value": format!("value-of-setting-number-{i}")}));
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": "bench", "tier": "web", "release": "stable"},
            "annotations": {"example.com/owner": "team-a", "example.com/description": "a pod of realistic size for the benchmark"}},
        "spec": {
            "containers": [{
                "name": "web", "image": "docker.io/library/busybox:latest", "command": ["sh", "-c", "httpd -f -p 8080"],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "env": env,
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "restartPolicy": "Always"
        }
    })
}

async fn post(client: &HttpClient, url: &str, body: Bytes) -> u16 {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body));
    let Ok(req) = req else { return 0 };
    match client.request(req).await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            code
        }
        Err(_) => 0,
    }
}

async fn get_bytes(client: &HttpClient, url: &str) -> Vec<u8> {
    let req = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client.request(req).await.expect("GET");
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the bench client, etcd and the apiserver.
fn cpu_now(etcd: &Etcd, api: &ApiServer) -> [f64; 3] {
    [
        cpu_seconds("self"),
        cpu_seconds(&etcd.pid().to_string()),
        cpu_seconds(&api.pid().to_string()),
    ]
}

/// Runs `CONCURRENCY` workers made by `worker` (each gets the shared counter of claimed
/// items, starting at `first`, see [`claim`]) and returns the wall time until all are
/// done.
async fn run_workers<W, Fut>(first: usize, worker: W) -> Duration
where
    W: Fn(Arc<AtomicUsize>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(first));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| tokio::spawn(worker(next.clone())))
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

#[derive(Clone, Copy)]
enum Side {
    Raw,
    Api,
}

/// The next of `n` items for a worker to do, `None` when all are claimed.
fn claim(next: &AtomicUsize, n: usize) -> Option<usize> {
    let i = next.fetch_add(1, Ordering::Relaxed);
    (i < n).then_some(i)
}

/// One keep-alive HTTP/1.1 client connection: writes a prepared request and reads the
/// response head (parsed with `httparse`) and its `Content-Length` body.
struct Http1Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Http1Conn {
    async fn connect(authority: &str) -> Http1Conn {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Http1Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `request` and returns the response status once the whole body is read.
    async fn round_trip(&mut self, request: &[u8]) -> u16 {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await.expect("write request");
        self.buf.clear();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) =
                resp.parse(&self.buf).expect("response head")
            {
                let code = resp.code.expect("status code");
                let body_len = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .expect("a Content-Length response");
                while self.buf.len() < head_len + body_len {
                    self.read_more().await;
                }
                assert_eq!(self.buf.len(), head_len + body_len, "no pipelined bytes");
                return code;
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .expect("read response");
        assert!(n > 0, "connection closed mid-response");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let etcd = Etcd::start()?;
    // KUBE_APISERVER_BIN runs another build (e.g. to compare two in alternating runs).
    let bin = std::env::var_os("KUBE_APISERVER_BIN").map_or_else(
        || Path::new(env!("CARGO_BIN_EXE_kube-apiserver")).to_path_buf(),
        Into::into,
    );
    let api = ApiServer::start(
        &bin,
        &etcd,
        &[
            "--disable-admission-plugins=ServiceAccount",
            "--max-requests-inflight=1000",
            "--max-mutating-requests-inflight=1000",
        ],
    )?;
    let base = api.url();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build_http();
    let code = post(
        &client,
        &format!("{base}/api/v1/namespaces"),
        Bytes::from(
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}).to_string(),
        ),
    )
    .await;
    assert_eq!(code, 201, "namespace create");

    // The raw side: its own etcd client and the same bytes as the API body.
    let etcd_client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    let sample = Bytes::from(serde_json::to_vec(&pod("sample"))?);
    println!("pod body: {} bytes", sample.len());
    // API creates at the same concurrency. The requests are built before the clock
    // starts, as the raw txns' value is. Each client has its own keep-alive HTTP/1.1
    // connection, driven as load generators such as wrk drive theirs (one write of the
    // prepared request, the response read by its Content-Length): the raw txns go
    // straight onto etcd's gRPC channel, and the bench's own CPU per request should be
    // as small on both sides, for it shares the cores with the servers measured.
    let authority = base.trim_start_matches("http://").to_string();
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..CREATES)
            .map(|i| {
                let body = serde_json::to_vec(&pod(&format!("pod-{i}"))).expect("json");
                let mut r = format!(
                    "POST /api/v1/namespaces/bench/pods HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body);
                r
            })
            .collect(),
    );
    // CPU seconds by process [bench, etcd, apiserver], summed over the rounds.
    let (mut raw_cpu, mut api_cpu) = ([0.0; 3], [0.0; 3]);
    let (mut raw, mut api_time) = (Duration::ZERO, Duration::ZERO);
    let (mut round_ratios, mut round_cpu) = (Vec::new(), Vec::new());
    let per_round = CREATES / ROUNDS;
    for round in 0..ROUNDS {
        let (first, end) = (round * per_round, (round + 1) * per_round);
        // Raw etcd: create-if-absent txns of the same bytes at the same concurrency.
        let raw_side = || {
            run_workers(first, |next| {
                let (c, body) = (etcd_client.clone(), sample.clone());
                async move {
                    while let Some(i) = claim(&next, end) {
                        let mut kv = c.kv_client();
                        let key = format!("/bench-raw/pods/bench/raw-{i}");
                        let txn = etcd_client::Txn::new()
                            .when([etcd_client::Compare::create_revision(
                                key.clone(),
                                etcd_client::CompareOp::Equal,
                                0,
                            )])
                            .and_then([etcd_client::TxnOp::put(key, body.to_vec(), None)]);
                        let r = kv.txn(txn).await.expect("raw txn");
                        assert!(r.succeeded());
                    }
                }
            })
        };
        let api_side = || {
            run_workers(first, |next| {
                let (requests, authority) = (requests.clone(), authority.clone());
                async move {
                    let mut conn = Http1Conn::connect(&authority).await;
                    while let Some(i) = claim(&next, end) {
                        let code = conn.round_trip(&requests[i]).await;
                        assert_eq!(code, 201, "create pod-{i}");
                    }
                }
            })
        };
        // Each side's wall time and CPU seconds by process.
        let (etcd, api, raw_side, api_side) = (&etcd, &api, &raw_side, &api_side);
        let timed = move |side: Side| async move {
            let before = cpu_now(etcd, api);
            let wall = match side {
                Side::Raw => raw_side().await,
                Side::Api => api_side().await,
            };
            let after = cpu_now(etcd, api);
            (
                wall,
                std::array::from_fn::<f64, 3, _>(|p| after[p] - before[p]),
            )
        };
        // The sides take turns at going first, so that neither always follows the
        // other (and pays for its leftovers, such as etcd's garbage collection).
        let ((raw_round, raw_d), (api_round, api_d)) = if round % 2 == 0 {
            let r = timed(Side::Raw).await;
            (r, timed(Side::Api).await)
        } else {
            let a = timed(Side::Api).await;
            (timed(Side::Raw).await, a)
        };
        for p in 0..3 {
            raw_cpu[p] += raw_d[p];
            api_cpu[p] += api_d[p];
        }
        raw += raw_round;
        api_time += api_round;
        round_ratios.push(format!(
            "{:.2}",
            raw_round.as_secs_f64() / api_round.as_secs_f64()
        ));
        let per = |cpu: f64| cpu * 1e6 / per_round as f64;
        round_cpu.push(format!(
            "{:.0}+{:.0}/{:.0}+{:.0}+{:.0}",
            per(raw_d[0]),
            per(raw_d[1]),
            per(api_d[0]),
            per(api_d[1]),
            per(api_d[2])
        ));
    }
    println!("ratio by round: {}", round_ratios.join(" "));
    // Per round, CPU µs per create: raw client+etcd / api client+etcd+apiserver.
    println!("cpu by round: {}", round_cpu.join(" "));
    let raw_per_s = CREATES as f64 / raw.as_secs_f64();
    let api_per_s = CREATES as f64 / api_time.as_secs_f64();
    // CPU microseconds per create, by process: on a small machine the three share the
    // cores, so these explain the throughput figures better than wall time alone.
    let per = |cpu: f64| cpu * 1e6 / CREATES as f64;
    println!(
        "cpu us/create: raw: client={:.0} etcd={:.0}; api: client={:.0} etcd={:.0} apiserver={:.0}",
        per(raw_cpu[0]),
        per(raw_cpu[1]),
        per(api_cpu[0]),
        per(api_cpu[1]),
        per(api_cpu[2])
    );

    // Watch delivery: 100 watchers from the current revision; 200 more pods created
    // one every 5 ms; latency = arrival at a watcher - just before the POST.
    let watch_latencies = Arc::new(parking_lot::Mutex::new(Vec::<f64>::new()));
    let sent_at = Arc::new(parking_lot::Mutex::new(std::collections::HashMap::<
        String,
        Instant,
    >::new()));
    let list_rv = {
        let b = get_bytes(
            &client,
            &format!("{base}/api/v1/namespaces/bench/pods?limit=1"),
        )
        .await;
        let v: Value = serde_json::from_slice(&b)?;
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string()
    };
    let mut watch_tasks = Vec::new();
    for _ in 0..WATCHERS {
        let url = format!("{base}/api/v1/namespaces/bench/pods?watch=1&resourceVersion={list_rv}");
        let client = client.clone();
        let lat = watch_latencies.clone();
        let sent = sent_at.clone();
        watch_tasks.push(tokio::spawn(async move {
            let req = hyper::Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("request");
            let resp = client.request(req).await.expect("watch");
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut seen = 0;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                let now = Instant::now();
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(ev) = serde_json::from_slice::<Value>(&line) {
                        if let Some(name) = ev["object"]["metadata"]["name"].as_str() {
                            if let Some(t) = sent.lock().get(name) {
                                lat.lock()
                                    .push(now.duration_since(*t).as_secs_f64() * 1000.0);
                            }
                        }
                    }
                    seen += 1;
                }
                if seen >= WATCH_EVENTS {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..WATCH_EVENTS {
        let name = format!("watched-{i}");
        let body = Bytes::from(serde_json::to_vec(&pod(&name))?);
        sent_at.lock().insert(name, Instant::now());
        assert_eq!(
            post(
                &client,
                &format!("{base}/api/v1/namespaces/bench/pods"),
                body
            )
            .await,
            201
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in watch_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
    }
    let mut lats = watch_latencies.lock().clone();
    lats.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let p99 = if lats.is_empty() {
        f64::NAN
    } else {
        lats[(lats.len() * 99 / 100).min(lats.len() - 1)]
    };

    // List latency of the 10 000 (+200) pods (median of 5 full lists).
    let mut list_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let b = get_bytes(&client, &format!("{base}/api/v1/namespaces/bench/pods")).await;
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let v: Value = serde_json::from_slice(&b)?;
        assert_eq!(
            v["items"].as_array().map(Vec::len),
            Some(CREATES + WATCH_EVENTS)
        );
    }
    list_ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));

    // Resident memory of the apiserver holding the 10 000 (+200) pods in its cache.
    let rss_mib = std::fs::read_to_string(format!("/proc/{}/status", api.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0);
    println!(
        "apiserver resident memory with {} pods cached: {rss_mib:.0} MiB",
        CREATES + WATCH_EVENTS
    );
    println!("raw etcd: {CREATES} creates in {:.2}s; api: {CREATES} creates in {:.2}s; watch samples: {}", raw.as_secs_f64(), api_time.as_secs_f64(), lats.len());
    println!(
        "RESULT api_creates_per_s={:.0} raw_etcd_creates_per_s={:.0} ratio={:.2} list_10k_ms={:.0} watch_p99_ms={:.1}",
        api_per_s,
        raw_per_s,
        api_per_s / raw_per_s,
        list_ms[list_ms.len() / 2],
        p99
    );
    drop(api);
    drop(etcd);
    Ok(())
}

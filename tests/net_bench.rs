//! Pod-to-pod TCP throughput and latency across minions of the netns cluster
//! (scripts/netns-cluster.sh) with flannel's vxlan and host-gw backends, against
//! the same measure between two bare network namespaces on a bridge (no
//! component of ours), in one run. Run by `scripts/bench-net.sh` as root. The
//! measuring program is this binary itself, re-executed inside the pods' network
//! namespaces (`nsenter --net=/proc/<pid>/ns/net`), so both sides use the same
//! code. Last line: `RESULT vxlan_vs_bare=R hostgw_vs_bare=R` (throughput ratios).

#[path = "multinode/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 5201;
const BYTES: usize = 512 << 20;
const ROUND_TRIPS: usize = 5000;

/// `--serve`: accept connections; a connection starting with b'T' is a sink for
/// throughput, b'L' an echo for latency.
fn serve() {
    let listener = TcpListener::bind(("0.0.0.0", PORT)).expect("bind");
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let mut kind = [0u8; 1];
            if conn.read_exact(&mut kind).is_err() {
                return;
            }
            let mut buf = vec![0u8; 1 << 16];
            if kind[0] == b'T' {
                let mut total = 0usize;
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let _ = conn.write_all(&(total as u64).to_be_bytes());
            } else {
                let mut byte = [0u8; 1];
                while conn.read_exact(&mut byte).is_ok() {
                    if conn.write_all(&byte).is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// `--client ADDR`: prints `gbps=<throughput> p50_us=<latency> p99_us=<latency>`.
fn client(addr: &str) {
    let connect = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match TcpStream::connect((addr, PORT)) {
                Ok(s) => return s,
                Err(e) if Instant::now() > deadline => panic!("connect {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    };
    let mut conn = connect();
    conn.write_all(b"T").expect("write");
    let chunk = vec![7u8; 1 << 16];
    let start = Instant::now();
    let mut sent = 0;
    while sent < BYTES {
        conn.write_all(&chunk).expect("send");
        sent += chunk.len();
    }
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut total = [0u8; 8];
    conn.read_exact(&mut total).expect("server total");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        u64::from_be_bytes(total),
        sent as u64,
        "the server got fewer bytes"
    );
    let gbps = sent as f64 * 8.0 / secs / 1e9;

    let mut conn = connect();
    conn.set_nodelay(true).expect("nodelay");
    conn.write_all(b"L").expect("write");
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    let mut byte = [1u8; 1];
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        conn.write_all(&byte).expect("ping");
        conn.read_exact(&mut byte).expect("pong");
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    println!(
        "gbps={gbps:.3} p50_us={:.1} p99_us={:.1}",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
}

struct Measure {
    gbps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn parse(out: &str) -> Measure {
    let field = |k: &str| -> f64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {out:?}"))
    };
    Measure {
        gbps: field("gbps="),
        p50_us: field("p50_us="),
        p99_us: field("p99_us="),
    }
}

/// Runs a server in `server_ns` and the client in `client_ns` (both `nsenter
/// --net=` targets) against `server_ip`; best throughput of 3 runs.
fn measure(server_ns: &str, client_ns: &str, server_ip: &str) -> Measure {
    let me = std::env::current_exe().expect("current exe");
    let mut server: Child = Command::new("nsenter")
        .arg(format!("--net={server_ns}"))
        .arg(&me)
        .arg("--serve")
        .stdout(Stdio::null())
        .spawn()
        .expect("server");
    let mut best: Option<Measure> = None;
    for _ in 0..3 {
        let out = Command::new("nsenter")
            .arg(format!("--net={client_ns}"))
            .arg(&me)
            .args(["--client", server_ip])
            .output()
            .expect("client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = parse(&text);
        if best.as_ref().is_none_or(|b| m.gbps > b.gbps) {
            best = Some(m);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    best.expect("a measure")
}

fn run(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{args:?} failed");
}

/// Two bare network namespaces on a bridge, as the netns cluster's hosts are.
fn bare() -> Measure {
    let cleanup = || {
        for ns in ["nb-a", "nb-b"] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", "nb-br0"])
            .stderr(Stdio::null())
            .status();
    };
    cleanup();
    run(&["ip", "link", "add", "nb-br0", "type", "bridge"]);
    run(&["ip", "link", "set", "nb-br0", "up"]);
    for (ns, ip) in [("nb-a", "10.241.0.1/24"), ("nb-b", "10.241.0.2/24")] {
        run(&["ip", "netns", "add", ns]);
        let veth = format!("{ns}-h");
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        run(&["ip", "link", "set", &veth, "master", "nb-br0", "up"]);
        run(&[
            "ip", "netns", "exec", ns, "ip", "addr", "add", ip, "dev", "eth0",
        ]);
        run(&["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"]);
        run(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    }
    let m = measure("/run/netns/nb-a", "/run/netns/nb-b", "10.241.0.1");
    cleanup();
    m
}

/// The PID of the pod's first container on its minion (for its network namespace).
fn pod_pid(c: &cluster::Cluster, pod: &str, minion: &str) -> u32 {
    let v = c.get_json(&["pod", pod]);
    let id = v["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .expect("containerID")
        .trim_start_matches("containerd://")
        .to_string();
    let sock = c.dir().join(minion).join("containerd/containerd.sock");
    let out = Command::new("ctr")
        .arg("--address")
        .arg(&sock)
        .args(["-n", "k8s.io", "tasks", "ls"])
        .output()
        .expect("ctr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no task for {pod} ({id})"))
}

fn pods_across(backend: &str) -> Measure {
    let mut c = cluster::Cluster::up_with(backend, "nftables", &[]);
    for (pod, node) in [("bench-server", "minion1"), ("bench-client", "minion2")] {
        c.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}}}\nspec:\n  nodeSelector: {{kubernetes.io/hostname: {node}}}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - {{name: c, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}\n"
        ));
    }
    let server_ip = c.wait_pod_ready("bench-server");
    c.wait_pod_ready("bench-client");
    let server_ns = format!("/proc/{}/ns/net", pod_pid(&c, "bench-server", "minion1"));
    let client_ns = format!("/proc/{}/ns/net", pod_pid(&c, "bench-client", "minion2"));
    let m = measure(&server_ns, &client_ns, &server_ip);
    c.down();
    m
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve") {
        serve();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--client") {
        client(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let bare = bare();
    println!(
        "bare:    gbps={:.3} p50_us={:.1} p99_us={:.1}",
        bare.gbps, bare.p50_us, bare.p99_us
    );
    let vxlan = pods_across("vxlan");
    println!(
        "vxlan:   gbps={:.3} p50_us={:.1} p99_us={:.1}",
        vxlan.gbps, vxlan.p50_us, vxlan.p99_us
    );
    let hostgw = pods_across("host-gw");
    println!(
        "host-gw: gbps={:.3} p50_us={:.1} p99_us={:.1}",
        hostgw.gbps, hostgw.p50_us, hostgw.p99_us
    );
    println!(
        "RESULT vxlan_vs_bare={:.2} hostgw_vs_bare={:.2} vxlan_p50_us={:.1} hostgw_p50_us={:.1} bare_p50_us={:.1}",
        vxlan.gbps / bare.gbps,
        hostgw.gbps / bare.gbps,
        vxlan.p50_us,
        hostgw.p50_us,
        bare.p50_us
    );
}

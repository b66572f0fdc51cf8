//! Integration tests in fresh network namespaces (run as root): the generated
//! rulesets load into the kernel, a real TCP connection reaches an endpoint through
//! a ClusterIP, and Services/EndpointSlices from a real apiserver become rules.
//!
//! Topology per test: namespace `<tag>n` (the "node", where kube-proxy's rules
//! live) joined by a veth pair to `<tag>p` (a "pod" at 10.99.0.2 running a busybox
//! nc listener). Neither namespace has a default route, so nothing can leave.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_proxy::backend::{NftBackend, ProxyBackend, Runner, SyncConfig};
use kube_proxy::iptables::IptablesBackend;
use kube_proxy::state::{Endpoint, Protocol, ProxyState, ServicePort};

const POD_IP: &str = "10.99.0.2";
const SERVICE_IP: &str = "10.254.77.7";

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Topology {
    node: Netns,
    _pod: Netns,
    _listener: Proc,
}

impl Topology {
    fn new() -> Topology {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "kp{}x{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let node = Netns(format!("{tag}n"));
        run(&["ip", "netns", "add", &node.0]);
        let pod = Netns(format!("{tag}p"));
        run(&["ip", "netns", "add", &pod.0]);
        let (veth_node, veth_pod) = (format!("{tag}a"), format!("{tag}b"));
        run(&[
            "ip", "link", "add", &veth_node, "netns", &node.0, "type", "veth", "peer", "name",
            &veth_pod, "netns", &pod.0,
        ]);
        for (ns, dev, addr) in [
            (&node.0, &veth_node, "10.99.0.1/24"),
            (&pod.0, &veth_pod, "10.99.0.2/24"),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        // The service range is routed into the veth, as the node's dummy device would.
        run(&[
            "ip",
            "-n",
            &node.0,
            "route",
            "add",
            "10.254.0.0/16",
            "dev",
            &veth_node,
        ]);
        let listener = Command::new("ip")
            .args([
                "netns", "exec", &pod.0, "busybox", "nc", "-ll", "-p", "8080", "-e", "busybox",
                "echo", "hello",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn listener");
        let topology = Topology {
            node,
            _pod: pod,
            _listener: Proc(listener),
        };
        // Wait for the listener to answer directly.
        let deadline = Instant::now() + Duration::from_secs(5);
        while topology.connect(POD_IP, 8080).as_deref() != Some("hello") {
            assert!(
                Instant::now() < deadline,
                "listener in the pod namespace did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        topology
    }

    /// Connects from the node namespace; the first line received, if any.
    fn connect(&self, ip: &str, port: u16) -> Option<String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node.0,
                "busybox",
                "timeout",
                "3",
                "busybox",
                "nc",
                "-w",
                "2",
                ip,
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    fn nft_table(&self) -> String {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node.0,
                "nft",
                "list",
                "table",
                "ip",
                "kube-proxy",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

fn service(name: &str, endpoints: &[(&str, u16)]) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Some(SERVICE_IP.parse().unwrap()),
        port: 80,
        node_port: None,
        external_ips: vec![],
        affinity_timeout: None,
        external_policy_local: false,
        internal_policy_local: false,
        endpoints: endpoints
            .iter()
            .map(|(ip, port)| Endpoint {
                ip: ip.parse().unwrap(),
                port: *port,
                local: false,
            })
            .collect(),
    }
}

/// Services exercising every rule shape, so the kernel parses all of them.
fn feature_services() -> Vec<ServicePort> {
    let mut affinity = service("affinity", &[("10.99.0.20", 80), ("10.99.0.21", 80)]);
    affinity.cluster_ip = Some("10.254.1.1".parse().unwrap());
    affinity.affinity_timeout = Some(600);
    let mut nodeport = service("nodeport", &[("10.99.0.22", 80)]);
    nodeport.cluster_ip = Some("10.254.1.2".parse().unwrap());
    nodeport.node_port = Some(30080);
    nodeport.external_ips = vec!["10.98.0.1".parse().unwrap()];
    let mut local = service("local", &[("10.99.0.23", 80), ("10.99.0.24", 80)]);
    local.cluster_ip = Some("10.254.1.3".parse().unwrap());
    local.node_port = Some(30081);
    local.external_policy_local = true;
    local.endpoints[1].local = true;
    let mut empty = service("empty", &[]);
    empty.cluster_ip = Some("10.254.1.4".parse().unwrap());
    empty.node_port = Some(30082);
    empty.protocol = Protocol::Udp;
    vec![affinity, nodeport, local, empty]
}

#[test]
fn nft_backend_programs_connects_and_removes_in_netns() {
    let topo = Topology::new();
    let mut backend = NftBackend::new(Runner::in_netns(&topo.node.0));
    let config = SyncConfig {
        cluster_cidr: Some("10.99.0.0/16".parse().unwrap()),
        ..Default::default()
    };

    let mut services = feature_services();
    services.push(service("web", &[(POD_IP, 8080)]));
    let stats = backend
        .sync(&ProxyState { services }, &config)
        .expect("nft sync");
    assert!(stats.rules > 20);
    let table = topo.nft_table();
    assert!(
        table.contains(&format!("{SERVICE_IP} . tcp . 80 : goto service-")),
        "{table}"
    );
    assert!(table.contains(&format!("dnat to {POD_IP}:8080")), "{table}");
    assert!(
        table.contains("10.254.1.4 . udp . 80 : goto reject-chain"),
        "{table}"
    );
    assert!(table.contains("tcp . 30080 : goto external-"), "{table}");
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "ClusterIP connection through nft DNAT"
    );

    // A partial sync adding a second (unreachable) endpoint and dropping the feature
    // services keeps the table consistent.
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080), ("10.99.0.50", 8080)])],
            },
            &config,
        )
        .expect("partial nft sync");
    let table = topo.nft_table();
    assert!(
        table.contains("numgen random mod 2 0 goto endpoint-"),
        "{table}"
    );
    assert!(
        !table.contains("10.254.1.") && !table.contains("affinity-"),
        "{table}"
    );
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080)])],
            },
            &config,
        )
        .expect("partial nft sync");
    assert!(!topo.nft_table().contains("10.99.0.50"));
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "connection after partial syncs"
    );

    // The table deleted from outside comes back with the next full sync.
    run(&[
        "ip",
        "netns",
        "exec",
        &topo.node.0,
        "nft",
        "delete",
        "table",
        "ip",
        "kube-proxy",
    ]);
    backend.invalidate();
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080)])],
            },
            &config,
        )
        .expect("full nft sync");
    assert!(topo.nft_table().contains(&format!("dnat to {POD_IP}:8080")));

    // Endpoint gone: the service is rejected, so the connection fails.
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[])],
            },
            &config,
        )
        .expect("nft sync");
    let table = topo.nft_table();
    assert!(!table.contains("dnat to"), "{table}");
    assert!(
        table.contains(&format!("{SERVICE_IP} . tcp . 80 : goto reject-chain")),
        "{table}"
    );
    assert_eq!(topo.connect(SERVICE_IP, 80), None);

    // Service deleted: nothing mentions it any more.
    backend
        .sync(&ProxyState::default(), &config)
        .expect("nft sync");
    let table = topo.nft_table();
    assert!(
        !table.contains(SERVICE_IP) && !table.contains("default/web"),
        "{table}"
    );

    backend.cleanup().expect("cleanup");
    assert_eq!(topo.nft_table(), "");
}

/// Partial syncs go to nf_tables over netlink (no `nft -f`): creating every rule
/// shape that way must give the same table, as `nft` lists it, as a full `nft -f`
/// sync of the same state, and traffic must flow through it.
#[test]
fn nft_netlink_partial_sync_matches_full_sync_in_netns() {
    let topo = Topology::new();
    let mut backend = NftBackend::new(Runner::in_netns(&topo.node.0));
    let config = SyncConfig {
        cluster_cidr: Some("10.99.0.0/16".parse().unwrap()),
        ..Default::default()
    };
    backend
        .sync(&ProxyState::default(), &config)
        .expect("initial full sync");
    let mut services = feature_services();
    let mut web = service(
        "web",
        &[(POD_IP, 8080), ("10.99.0.51", 8080), ("10.99.0.52", 8080)],
    );
    web.node_port = Some(30090);
    services.push(web);
    // Sorted by id as build_state sorts them, so both syncs create chains in one order.
    services.sort_by_key(|s| s.id());
    let state = ProxyState { services };
    backend
        .sync(&state, &config)
        .expect("partial sync over netlink");
    let partial = topo.nft_table();
    assert!(
        partial.contains("numgen random mod 3 0 goto endpoint-"),
        "{partial}"
    );
    assert!(partial.contains("update @affinity-"), "{partial}");
    backend.invalidate();
    backend.sync(&state, &config).expect("full sync");
    let full = topo.nft_table();
    assert_eq!(partial, full);

    // Only the reachable endpoint left, changed over netlink: connections work.
    let web = service("web", &[(POD_IP, 8080)]);
    backend
        .sync(
            &ProxyState {
                services: vec![web],
            },
            &config,
        )
        .expect("partial sync");
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "ClusterIP connection after a netlink partial sync"
    );
    backend.cleanup().expect("cleanup");
}

#[test]
fn iptables_backend_programs_connects_and_removes_in_netns() {
    let topo = Topology::new();
    let runner = Runner::in_netns(&topo.node.0);
    let mut backend = IptablesBackend::new(runner.clone());
    let config = SyncConfig::default();
    let save = || {
        runner
            .run("iptables-save", &[], None)
            .expect("iptables-save")
    };

    let mut services = feature_services();
    services.push(service("web", &[(POD_IP, 8080)]));
    backend
        .sync(&ProxyState { services }, &config)
        .expect("iptables sync");
    let rules = save();
    assert!(
        rules.contains(&format!("-A KUBE-SERVICES -d {SERVICE_IP}/32 -p tcp")),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("--to-destination {POD_IP}:8080")),
        "{rules}"
    );
    assert!(rules.contains("-A PREROUTING -j KUBE-SERVICES"), "{rules}");
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "ClusterIP connection through iptables DNAT"
    );

    // Second sync is idempotent (no duplicated jumps), then removal deletes chains.
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080)])],
            },
            &config,
        )
        .expect("iptables sync");
    assert_eq!(save().matches("-A PREROUTING -j KUBE-SERVICES").count(), 1);

    // Partial syncs (only changed chains rewritten): an endpoint moves away and
    // back, a service appears; the result equals a full rewrite of the same state.
    let moved = ProxyState {
        services: vec![service("web", &[("10.99.0.60", 8080)])],
    };
    backend
        .sync(&moved, &config)
        .expect("partial iptables sync");
    assert!(!save().contains(&format!("--to-destination {POD_IP}:8080")));
    let mut services = feature_services();
    services.push(service("web", &[(POD_IP, 8080), ("10.99.0.61", 8080)]));
    services.sort_by_key(|s| s.id());
    let state = ProxyState { services };
    backend
        .sync(&state, &config)
        .expect("partial iptables sync");
    let without_comments = |text: String| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let partial = without_comments(save());
    backend.invalidate();
    backend.sync(&state, &config).expect("full iptables sync");
    assert_eq!(partial, without_comments(save()));
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080)])],
            },
            &config,
        )
        .expect("partial iptables sync");
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "ClusterIP connection after partial iptables syncs"
    );

    backend
        .sync(&ProxyState::default(), &config)
        .expect("iptables sync");
    let rules = save();
    assert!(
        !rules.contains("KUBE-SVC-") && !rules.contains("KUBE-SEP-"),
        "{rules}"
    );
    assert_eq!(topo.connect(SERVICE_IP, 80), None);

    backend.cleanup().expect("cleanup");
    assert!(!save().contains("KUBE-"), "{}", save());
}

const WEB_YAML: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.254.77.7
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.99.0.2]
  conditions: {ready: true}
- addresses: [10.99.0.77]
  conditions: {ready: false, serving: false}
ports: [{name: http, port: 8080, protocol: TCP}]
";

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn apiserver_service_and_endpointslice_become_nft_rules_in_netns() {
    use kube_proxy::server::{run_proxier, ProxierSettings, ProxyMetrics};
    use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

    let topo = Topology::new();
    let etcd = Etcd::start().expect("etcd");
    let binary = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/debug/kube-apiserver"
    );
    let server = ApiServer::start(std::path::Path::new(binary), &etcd, &[]).expect("apiserver");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = kube_common::metrics::Metrics::new();
    let proxy_metrics = ProxyMetrics::register(&metrics, "nftables");
    let settings = ProxierSettings {
        node_name: "minion1".into(),
        sync_config: SyncConfig::default(),
        nodeport_primary: false,
        min_sync_period: Duration::from_millis(100),
        sync_period: Duration::from_secs(30),
        runner: Runner::in_netns(&topo.node.0),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let url = server.url();
    let proxier = rt.spawn(async move {
        let client = kube_common::client::build_client(Some(&url), None, "kube-proxy-test").await?;
        let backend = Box::new(NftBackend::new(settings.runner.clone()));
        run_proxier(client, backend, settings, proxy_metrics, async {
            let _ = stopped.await;
        })
        .await
    });

    // The initial sync creates the (empty) table.
    wait_for("the kube-proxy table", || {
        topo.nft_table().contains("map service-ips")
    });

    kubectl_stdin(&server, &["apply", "-f", "-"], WEB_YAML).assert_success();
    wait_for("the service rules", || {
        topo.nft_table().contains("dnat to 10.99.0.2:8080")
    });
    let table = topo.nft_table();
    assert!(
        table.contains("10.254.77.7 . tcp . 80 : goto service-"),
        "{table}"
    );
    assert!(table.contains("default/web/tcp/http"), "{table}");
    assert!(
        !table.contains("10.99.0.77"),
        "a not-ready, not-serving endpoint must not be used: {table}"
    );
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "ClusterIP connection"
    );
    let rendered = metrics.render();
    assert!(
        rendered.contains("kubeproxy_sync_proxy_rules_duration_seconds_count"),
        "{rendered}"
    );
    assert!(
        rendered.contains("kubeproxy_sync_proxy_rules_nftables_total"),
        "{rendered}"
    );

    kubectl(&server, &["delete", "service", "web"]).assert_success();
    kubectl(&server, &["delete", "endpointslice", "web-abc"]).assert_success();
    wait_for("the service rules to go", || {
        let table = topo.nft_table();
        table.contains("map service-ips")
            && !table.contains("10.254.77.7")
            && !table.contains("dnat to 10.99.0.2:")
    });

    let _ = stop.send(());
    let result = rt.block_on(proxier).expect("proxier task");
    assert!(result.is_ok(), "proxier: {result:?}");
}

#[test]
fn binary_cleanup_with_classic_flags_removes_rules_in_netns() {
    let topo = Topology::new();
    let mut backend = NftBackend::new(Runner::in_netns(&topo.node.0));
    backend
        .sync(
            &ProxyState {
                services: vec![service("web", &[(POD_IP, 8080)])],
            },
            &SyncConfig::default(),
        )
        .expect("nft sync");
    assert!(topo.nft_table().contains("dnat to"));
    let status = Command::new("ip")
        .args([
            "netns",
            "exec",
            &topo.node.0,
            env!("CARGO_BIN_EXE_kube-proxy"),
        ])
        .args([
            "--logtostderr=true",
            "--v=0",
            "--master=http://127.0.0.1:8080",
            "--proxy-mode=nftables",
            "--cleanup",
        ])
        .status()
        .expect("run kube-proxy");
    assert!(status.success());
    assert_eq!(
        topo.nft_table(),
        "",
        "kube-proxy --cleanup must delete the table"
    );
}

#[test]
fn binary_serves_healthz_and_metrics_in_netns() {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let ns = Netns(format!(
        "kp{}h{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    run(&["ip", "netns", "add", &ns.0]);
    run(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
    // The master is unreachable inside the namespace (nothing listens there, and
    // there is no route out), so the proxier keeps waiting for its lists while the
    // health server answers.
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_kube-proxy")])
        .args([
            "--master=http://127.0.0.1:1",
            "--healthz-bind-address=127.0.0.1",
            "--metrics-bind-address=127.0.0.1:10249",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kube-proxy");
    let _proxy = Proc(child);
    // (busybox wget crashes here; a raw HTTP/1.0 request through nc does not.)
    let get = |port: u16, path: &str| -> String {
        let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | busybox timeout 3 busybox nc 127.0.0.1 {port}");
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "sh", "-c", &script])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    wait_for("/healthz", || {
        let response = get(10256, "/healthz");
        response.starts_with("HTTP/1.0 200") && response.ends_with("ok")
    });
    // The metrics listener is a second server; it may bind a moment after /healthz.
    wait_for("/metrics", || {
        get(10249, "/metrics").contains("kubeproxy_sync_proxy_rules_duration_seconds")
    });
    let metrics = get(10249, "/metrics");
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_duration_seconds"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubeproxy_sync_proxy_rules_nftables_total"),
        "{metrics}"
    );
}

//! Integration tests in fresh network namespaces (run as root): the generated
//! rulesets load into the kernel, a real TCP connection reaches an endpoint through
//! a ClusterIP, and Services/EndpointSlices from a real apiserver become rules.
//! The namespaces and helpers are in `common`.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kube_proxy::backend::{NftBackend, ProxyBackend, Runner, SyncConfig};
use kube_proxy::iptables::IptablesBackend;
use kube_proxy::nft_rule::{endpoint_map, endpoint_shard};
use kube_proxy::state::{Protocol, ProxyState};

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
    assert!(table.contains(&format!(": {POD_IP} . 8080")), "{table}");
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
        table.contains("dnat ip to numgen random mod 2 offset "),
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
    assert!(topo.nft_table().contains(&format!(": {POD_IP} . 8080")));

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
    assert!(
        !table.contains("dnat ip to") && !table.contains(POD_IP),
        "{table}"
    );
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
        partial.contains("dnat ip to numgen random mod 3 offset "),
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

/// A UDP and a TCP service on one ClusterIP and port (as DNS has) pick their
/// endpoints from the one shared endpoint map: both answer after a partial sync
/// that replaced their endpoints (slot elements only) over netlink.
#[test]
fn nft_udp_and_tcp_services_on_one_port_after_partial_sync_in_netns() {
    let topo = Topology::new();
    let _echo = UdpEcho::start(&topo.pod.0, 8080);
    assert_eq!(
        udp_ask(&topo.pod.0, POD_IP, 8080).as_deref(),
        Some("udp-hello"),
        "UDP echo answers directly"
    );
    let mut backend = NftBackend::new(Runner::in_netns(&topo.node.0));
    let config = SyncConfig {
        cluster_cidr: Some("10.99.0.0/16".parse().unwrap()),
        ..Default::default()
    };
    let state = |tcp_endpoint: &str, udp_endpoint: &str| {
        let tcp = service("web", &[(tcp_endpoint, 8080)]);
        let mut udp = service("dns", &[(udp_endpoint, 8080)]);
        udp.protocol = Protocol::Udp;
        ProxyState {
            services: vec![udp, tcp],
        }
    };
    // First both point at addresses nobody has.
    backend
        .sync(&state("10.99.0.52", "10.99.0.53"), &config)
        .expect("full sync");
    let table = topo.nft_table();
    assert!(
        // (nft leaves out `offset 0`.)
        table.contains("meta l4proto udp dnat ip to numgen random mod 1 map @endpoints-0")
            && table.contains(&format!(
                "meta l4proto tcp dnat ip to numgen random mod 1 offset 1 map @{}",
                endpoint_map(endpoint_shard(1))
            )),
        "{table}"
    );
    // Then both move to the pod: the same slots get new elements.
    backend
        .sync(&state(POD_IP, POD_IP), &config)
        .expect("partial sync");
    let table = topo.nft_table();
    assert!(
        table.contains(&format!("0 : {POD_IP} . 8080"))
            && table.contains(&format!("1 : {POD_IP} . 8080"))
            && !table.contains("10.99.0.5"),
        "{table}"
    );
    assert_eq!(
        topo.connect(SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "TCP ClusterIP after the partial sync"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answer = None;
    while answer.is_none() && Instant::now() < deadline {
        answer = udp_ask(&topo.node.0, SERVICE_IP, 80);
    }
    assert_eq!(
        answer.as_deref(),
        Some("udp-hello"),
        "UDP ClusterIP on the same port after the partial sync"
    );
    backend.cleanup().expect("cleanup");
}

/// An endpoint reaching itself through its own Service (hairpin) works only when
/// masqueraded: the kernel drops a packet arriving with its own address as
/// source. Checked after a full sync and after partial syncs that took the
/// address out of the shared hairpin set and put it back over netlink.
#[test]
fn nft_hairpin_endpoint_reaches_itself_through_its_service_in_netns() {
    let topo = Topology::new();
    // The pod reaches the service range through the node, which routes it back.
    run(&[
        "ip",
        "netns",
        "exec",
        &topo.node.0,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    run(&[
        "ip",
        "-n",
        &topo.pod.0,
        "route",
        "add",
        "10.254.0.0/16",
        "via",
        "10.99.0.1",
    ]);
    let mut backend = NftBackend::new(Runner::in_netns(&topo.node.0));
    let config = SyncConfig {
        cluster_cidr: Some("10.99.0.0/16".parse().unwrap()),
        ..Default::default()
    };
    let web = |ip: &str| ProxyState {
        services: vec![service("web", &[(ip, 8080)])],
    };
    backend.sync(&web(POD_IP), &config).expect("full sync");
    assert!(
        topo.nft_table()
            .contains(&format!("elements = {{ {POD_IP} . {POD_IP} }}")),
        "{}",
        topo.nft_table()
    );
    assert_eq!(
        connect_from(&topo.pod.0, SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "hairpin after a full sync"
    );
    backend
        .sync(&web("10.99.0.50"), &config)
        .expect("partial sync");
    assert!(!topo.nft_table().contains(&format!("{POD_IP} . {POD_IP}")));
    backend.sync(&web(POD_IP), &config).expect("partial sync");
    assert_eq!(
        connect_from(&topo.pod.0, SERVICE_IP, 80).as_deref(),
        Some("hello"),
        "hairpin after partial syncs"
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
        topo.nft_table().contains(": 10.99.0.2 . 8080")
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
            && !table.contains(": 10.99.0.2 . 8080")
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
    assert!(topo.nft_table().contains("dnat ip to"));
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

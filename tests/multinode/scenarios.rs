//! The scenario list every multinode test runs, whatever its flannel backend and
//! kube-proxy mode: one cluster per test, brought up once, the scenarios in order
//! on the same pods, the third minion joining last.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::cluster::{self, http_from_machine, try_wait_for, wait_for, Cluster};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Vxlan,
    HostGw,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    Nftables,
    Iptables,
}

impl ProxyMode {
    fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
        }
    }
}

/// What a test varies: the flannel backend, the proxy mode, and whether etcd
/// serves only TLS with client certificates (`netns-cluster.sh up --etcd-tls`).
pub struct Plan {
    pub backend: Backend,
    pub proxy_mode: ProxyMode,
    pub etcd_tls: bool,
}

/// The pods the scenarios share and their IPs.
struct Pods {
    /// minion1, app=front (behind Service `front`).
    client: String,
    /// minion2, app=web (behind NodePort Service `web`).
    web_a: String,
    /// minion2, app=web.
    web_b: String,
    /// minion1, app=loner: the only endpoint of Service `loner` (hairpin).
    loner: String,
}

/// Brings the cluster up with the plan's parameters and runs every scenario.
pub fn run(plan: &Plan) {
    let started = Instant::now();
    let extra: &[&str] = if plan.etcd_tls { &["--etcd-tls"] } else { &[] };
    let mut c = step("cluster up", || {
        Cluster::up_with(plan.backend.as_str(), plan.proxy_mode.as_str(), extra)
    });
    assert_eq!(c.node_ready_names(), ["minion1", "minion2"]);
    step("backend routes", || backend_routes(&c, plan.backend));
    let pods = step("workload", || start_workload(&c));
    step("pod to pod across minions", || pod_to_pod(&c, &pods));
    let web_ip = cluster_ip(&c, "web");
    step(
        "ClusterIP with endpoints on the other minion, spread",
        || cluster_ip_spread(&c, &web_ip),
    );
    let node_port = node_port(&c, "web");
    step("NodePort on every minion", || {
        node_port_everywhere(&c, node_port, "hello from web-")
    });
    step("hairpin", || hairpin(&c, &pods));
    step("readiness failure leaves the rotation", || {
        readiness(&c, &web_ip)
    });
    step("DNS across minions", || {
        dns(&c, "web-b", "front", "hello from client\n")
    });
    step("Service deletion removes its rules", || {
        delete_service(&c, plan.proxy_mode, &web_ip, node_port)
    });
    step("flanneld killed and restarted", || {
        flanneld_restart(&c, &pods)
    });
    if plan.etcd_tls {
        step("etcd TLS", || etcd_tls(&c));
    }
    step("third minion joins", || {
        third_minion(&c, plan.backend, &pods)
    });
    step("cluster down", || c.down());
    eprintln!(
        "[multinode] {} + {}: all scenarios in {:?}",
        plan.backend.as_str(),
        plan.proxy_mode.as_str(),
        started.elapsed()
    );
}

fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    eprintln!("[multinode] {name} ...");
    let v = f();
    eprintln!("[multinode] {name}: ok in {:.1?}", t.elapsed());
    v
}

/// A busybox pod pinned to `node` serving `hello from <pod>` on :8000 and the
/// client's address at /cgi-bin/ip; Ready while /tmp/ready exists.
fn web_pod(name: &str, app: &str, node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {app}}}
spec:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      echo hello from $(hostname) > /www/index.html
      printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n' > /www/cgi-bin/ip
      chmod +x /www/cgi-bin/ip
      touch /tmp/ready
      exec httpd -f -p 8000 -h /www
    ports: [{{containerPort: 8000, name: http}}]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
      failureThreshold: 1
"#
    )
}

fn service(name: &str, app: &str, node_port: bool) -> String {
    let type_ = if node_port { "NodePort" } else { "ClusterIP" };
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: {type_}
  selector: {{app: {app}}}
  ports: [{{name: http, port: 8000, targetPort: http}}]
"#
    )
}

fn cluster_ip(c: &Cluster, svc: &str) -> String {
    c.get_json(&["service", svc])["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string()
}

fn node_port(c: &Cluster, svc: &str) -> i64 {
    c.get_json(&["service", svc])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort")
}

fn minion_ip(minion: &str) -> String {
    let n: u8 = minion
        .trim_start_matches("minion")
        .parse()
        .expect("minionN");
    format!("10.240.0.{}", 10 + n)
}

/// `10.1.94.1/24` → (`10.1.94.0/24`, `10.1.94.0`, `10.1.94.1`): the subnet, its
/// network address and the address flannel gives the node (cni0's).
fn subnet_parts(flannel_subnet: &str) -> (String, Ipv4Addr, Ipv4Addr) {
    let (addr, len) = flannel_subnet.split_once('/').expect("a/len");
    let addr: Ipv4Addr = addr.parse().expect("FLANNEL_SUBNET address");
    let len: u32 = len.trim().parse().expect("FLANNEL_SUBNET length");
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    (format!("{net}/{len}"), net, addr)
}

/// Whether `ip` lies in `subnet` (`a.b.c.d/len`).
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let len = subnet.rsplit('/').next().unwrap_or("32");
    subnet_parts(&format!("{ip}/{len}")).0 == subnet_parts(subnet).0
}

/// The `hello from X` answers of `n` requests to `url` from `pod`.
fn backends_seen(c: &Cluster, pod: &str, url: &str, n: usize) -> BTreeSet<String> {
    let (_, out) = c.exec(
        pod,
        &format!("for i in $(seq {n}); do timeout 5 wget -qO- {url}; done"),
    );
    out.lines()
        .filter_map(|l| l.strip_prefix("hello from "))
        .map(str::to_string)
        .collect()
}

/// The client address the server pod at `url`'s /cgi-bin/ip saw.
fn peer_seen(c: &Cluster, from: &str, base_url: &str) -> String {
    let seen = c
        .http_from_pod(from, &format!("{base_url}/cgi-bin/ip"))
        .unwrap_or_default();
    // busybox httpd listens on IPv6 too and reports v4 peers as [::ffff:a.b.c.d].
    seen.trim()
        .trim_start_matches("[::ffff:")
        .trim_end_matches(']')
        .to_string()
}

/// An `ip route` line without its `proto`/`metric` attributes, single-spaced.
fn route_essentials(line: &str) -> String {
    let mut out = Vec::new();
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "proto" || w == "metric" {
            words.next();
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

/// Every minion routes every other minion's subnet the backend's way: vxlan via
/// the subnet's address on flannel.1 (onlink), host-gw via the minion's address
/// on eth0 with no overlay device.
fn backend_routes(c: &Cluster, backend: Backend) {
    let minions = c.minions();
    for m in &minions {
        let want: Vec<String> = minions
            .iter()
            .filter(|o| *o != m)
            .map(|o| {
                let (subnet, net, _) = subnet_parts(&c.flannel_subnet(o));
                match backend {
                    Backend::Vxlan => format!("{subnet} via {net} dev flannel.1 onlink"),
                    Backend::HostGw => format!("{subnet} via {} dev eth0", minion_ip(o)),
                }
            })
            .collect();
        let ok = try_wait_for(Duration::from_secs(20), || {
            let routes = c.routes(m);
            let have: Vec<String> = routes.lines().map(route_essentials).collect();
            want.iter().all(|w| have.contains(w)).then_some(())
        });
        assert!(
            ok.is_some(),
            "{m}: want routes {want:#?}, have:\n{}",
            c.routes(m)
        );
        let link = c.on_host(m, &["ip", "-d", "link", "show", "flannel.1"]);
        let link_text = String::from_utf8_lossy(&link.stdout);
        match backend {
            Backend::Vxlan => assert!(
                link.status.success()
                    && link_text.contains("vxlan id 1 ")
                    && link_text.contains("dstport 8472"),
                "{m}: flannel.1 is not VNI 1 on UDP 8472:\n{link_text}"
            ),
            Backend::HostGw => assert!(
                !link.status.success(),
                "{m}: host-gw with a flannel.1 device:\n{link_text}"
            ),
        }
    }
}

/// client + loner on minion1, web-a + web-b on minion2; Services web (NodePort),
/// front and loner.
fn start_workload(c: &Cluster) -> Pods {
    c.apply(&web_pod("client", "front", "minion1"));
    c.apply(&web_pod("loner", "loner", "minion1"));
    c.apply(&web_pod("web-a", "web", "minion2"));
    c.apply(&web_pod("web-b", "web", "minion2"));
    c.apply(&service("web", "web", true));
    c.apply(&service("front", "front", false));
    c.apply(&service("loner", "loner", false));
    let pods = Pods {
        client: c.wait_pod_ready("client"),
        web_a: c.wait_pod_ready("web-a"),
        web_b: c.wait_pod_ready("web-b"),
        loner: c.wait_pod_ready("loner"),
    };
    let (subnet1, _, _) = subnet_parts(&c.flannel_subnet("minion1"));
    let (subnet2, _, _) = subnet_parts(&c.flannel_subnet("minion2"));
    assert_ne!(subnet1, subnet2, "both minions got the same subnet");
    for (ip, subnet) in [
        (&pods.client, &subnet1),
        (&pods.loner, &subnet1),
        (&pods.web_a, &subnet2),
        (&pods.web_b, &subnet2),
    ] {
        assert!(
            in_subnet(ip, subnet),
            "pod IP {ip} is outside its node's flannel subnet {subnet}"
        );
    }
    pods
}

/// Pod on minion1 ↔ pod on minion2 by pod IP, both ways, without NAT: the
/// server sees the client's pod IP.
fn pod_to_pod(c: &Cluster, pods: &Pods) {
    let web_a = format!("http://{}:8000", pods.web_a);
    assert_eq!(
        c.http_from_pod("client", &format!("{web_a}/")).as_deref(),
        Some("hello from web-a\n")
    );
    let seen = peer_seen(c, "client", &web_a);
    assert_eq!(
        seen, pods.client,
        "web-a saw {seen:?}, not client's pod IP (NAT between pods?)"
    );
    let client = format!("http://{}:8000", pods.client);
    assert_eq!(
        c.http_from_pod("web-b", &format!("{client}/")).as_deref(),
        Some("hello from client\n")
    );
    let seen = peer_seen(c, "web-b", &client);
    assert_eq!(
        seen, pods.web_b,
        "client saw {seen:?}, not web-b's pod IP (NAT between pods?)"
    );
}

/// ClusterIP of `web` from minion1, whose endpoints are both on minion2: every
/// answer from an endpoint, and both endpoints answer.
fn cluster_ip_spread(c: &Cluster, web_ip: &str) {
    let url = format!("http://{web_ip}:8000/");
    let seen = try_wait_for(Duration::from_secs(30), || {
        let seen = backends_seen(c, "client", &url, 16);
        (seen.len() >= 2).then_some(seen)
    });
    assert_eq!(
        seen,
        Some(BTreeSet::from(["web-a".to_string(), "web-b".to_string()])),
        "answers through {url}"
    );
}

/// The NodePort answers on every minion's address, from the machine itself.
fn node_port_everywhere(c: &Cluster, node_port: i64, want_prefix: &str) {
    for minion in c.minions() {
        let ip = minion_ip(&minion);
        let body = wait_for(
            &format!("NodePort {node_port} on {minion} ({ip})"),
            Duration::from_secs(20),
            || http_from_machine(&format!("http://{ip}:{node_port}/")),
        );
        assert!(
            body.starts_with(want_prefix),
            "NodePort on {ip} answered {body:?}"
        );
    }
}

/// A pod reaching a ClusterIP whose only endpoint is itself gets its own answer
/// (the bridge reflects the packet with hairpinMode; kube-proxy masquerades it,
/// so the pod sees the node's cni0 address, not its own).
fn hairpin(c: &Cluster, pods: &Pods) {
    let ip = cluster_ip(c, "loner");
    let url = format!("http://{ip}:8000");
    let body = wait_for(
        &format!("loner answering itself through {url}"),
        Duration::from_secs(30),
        || c.http_from_pod("loner", &format!("{url}/")),
    );
    assert_eq!(body, "hello from loner\n");
    let seen = peer_seen(c, "loner", &url);
    let (_, _, gateway) = subnet_parts(&c.flannel_subnet("minion1"));
    assert_ne!(
        seen, pods.loner,
        "hairpin traffic reached the pod with its own address (not masqueraded)"
    );
    assert_eq!(
        seen,
        gateway.to_string(),
        "hairpin traffic should be masqueraded to minion1's cni0 address"
    );
}

/// A pod whose readiness probe fails leaves the Service's rotation, and comes
/// back when it passes again.
fn readiness(c: &Cluster, web_ip: &str) {
    let url = format!("http://{web_ip}:8000/");
    let (code, _) = c.exec("web-a", "rm /tmp/ready");
    assert_eq!(code, 0);
    wait_for("only web-b answering", Duration::from_secs(30), || {
        (backends_seen(c, "client", &url, 12) == BTreeSet::from(["web-b".to_string()]))
            .then_some(())
    });
    // Stays out: a second round of requests still reaches only web-b.
    assert_eq!(
        backends_seen(c, "client", &url, 12),
        BTreeSet::from(["web-b".to_string()])
    );
    let (code, _) = c.exec("web-a", "touch /tmp/ready");
    assert_eq!(code, 0);
    wait_for("web-a back in rotation", Duration::from_secs(30), || {
        (backends_seen(c, "client", &url, 16).len() == 2).then_some(())
    });
}

/// From `pod`, the Service `svc` (whose pod is on another minion) resolves by
/// name through cluster DNS and answers `want` by short and full name.
fn dns(c: &Cluster, pod: &str, svc: &str, want: &str) {
    let ip = cluster_ip(c, svc);
    let fqdn = format!("{svc}.default.svc.cluster.local");
    let answer = try_wait_for(Duration::from_secs(30), || {
        let (code, out) = c.exec(pod, &format!("nslookup {fqdn}"));
        (code == 0 && out.contains(&ip)).then_some(out)
    });
    assert!(
        answer.is_some(),
        "{fqdn} did not resolve to {ip} from {pod}: {:?}",
        c.exec(pod, &format!("nslookup {fqdn}"))
    );
    for name in [svc, fqdn.as_str()] {
        let body = wait_for(
            &format!("wget http://{name}:8000/ from {pod}"),
            Duration::from_secs(20),
            || c.http_from_pod(pod, &format!("http://{name}:8000/")),
        );
        assert_eq!(body, want);
    }
}

/// The proxy's rules on a minion (nft table or iptables nat table) and the
/// pattern a ClusterIP takes in them.
fn proxy_rules(c: &Cluster, minion: &str, mode: ProxyMode) -> String {
    let out = match mode {
        ProxyMode::Nftables => c.on_host(minion, &["nft", "list", "table", "ip", "kube-proxy"]),
        ProxyMode::Iptables => c.on_host(minion, &["iptables-save", "-t", "nat"]),
    };
    assert!(
        out.status.success(),
        "{minion}: listing {} rules: {}",
        mode.as_str(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a TCP ClusterIP and a NodePort show in the rules of each mode.
fn rule_patterns(mode: ProxyMode, ip: &str, node_port: i64) -> [String; 2] {
    match mode {
        ProxyMode::Nftables => [
            format!("{ip} . tcp . 8000 : "),
            format!("tcp . {node_port} : "),
        ],
        ProxyMode::Iptables => [format!("-d {ip}/32 "), format!("--dport {node_port} -j ")],
    }
}

/// Deleting a Service removes its rules on every minion; neither its ClusterIP
/// nor its NodePort answers any more.
fn delete_service(c: &Cluster, mode: ProxyMode, web_ip: &str, node_port: i64) {
    let patterns = rule_patterns(mode, web_ip, node_port);
    let minions = c.minions();
    for minion in &minions {
        let rules = proxy_rules(c, minion, mode);
        for p in &patterns {
            assert!(
                rules.contains(p),
                "{minion}: no {p:?} in the {} rules before deletion:\n{rules}",
                mode.as_str()
            );
        }
    }
    c.kubectl_ok(&["delete", "service", "web"]);
    for minion in &minions {
        let gone = try_wait_for(Duration::from_secs(20), || {
            let rules = proxy_rules(c, minion, mode);
            patterns.iter().all(|p| !rules.contains(p)).then_some(())
        });
        assert!(
            gone.is_some(),
            "{minion}: {patterns:?} still in the rules:\n{}",
            proxy_rules(c, minion, mode)
        );
    }
    assert_eq!(
        c.http_from_pod("client", &format!("http://{web_ip}:8000/")),
        None,
        "a deleted Service still answers"
    );
    for minion in &minions {
        let ip = minion_ip(minion);
        assert_eq!(
            http_from_machine(&format!("http://{ip}:{node_port}/")),
            None,
            "deleted NodePort still answers on {ip}"
        );
    }
}

fn flanneld_healthy(c: &Cluster, minion: &str) -> bool {
    let url = format!("http://{}:8471/healthz", minion_ip(minion));
    c.on_host(minion, &["curl", "-fsS", "--max-time", "1", &url])
        .status
        .success()
}

/// flanneld on minion1 killed (SIGKILL, no cleanup) and started again: the
/// datapath keeps working meanwhile, and the new flanneld takes the same subnet
/// back, with the same routes on every minion.
fn flanneld_restart(c: &Cluster, pods: &Pods) {
    let subnet_before = c.flannel_subnet("minion1");
    let routes1 = c.routes("minion1");
    let routes2 = c.routes("minion2");
    let pid = c
        .unit_pid("minion1", "flanneld")
        .expect("flanneld pid file on minion1");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid}");
    wait_for("flanneld on minion1 gone", Duration::from_secs(10), || {
        (!flanneld_healthy(c, "minion1")).then_some(())
    });
    // No flanneld: the kernel's routes still carry pod traffic.
    assert_eq!(
        c.http_from_pod("client", &format!("http://{}:8000/", pods.web_a))
            .as_deref(),
        Some("hello from web-a\n")
    );

    c.script_ok(&["restart", "minion1", "flanneld"]);
    wait_for(
        "flanneld on minion1 healthy again",
        Duration::from_secs(20),
        || flanneld_healthy(c, "minion1").then_some(()),
    );
    assert_eq!(
        c.flannel_subnet("minion1"),
        subnet_before,
        "minion1 lost its subnet across a flanneld restart"
    );
    let same = try_wait_for(Duration::from_secs(10), || {
        (c.routes("minion1") == routes1).then_some(())
    });
    assert!(
        same.is_some(),
        "minion1's routes changed:\nbefore:\n{routes1}\nafter:\n{}",
        c.routes("minion1")
    );
    assert_eq!(
        c.routes("minion2"),
        routes2,
        "minion2's routes changed when minion1's flanneld restarted"
    );
    for (from, to, want) in [
        ("client", &pods.web_a, "hello from web-a\n"),
        ("web-a", &pods.client, "hello from client\n"),
    ] {
        let body = wait_for(
            &format!("{from} → {to} after the restart"),
            Duration::from_secs(20),
            || c.http_from_pod(from, &format!("http://{to}:8000/")),
        );
        assert_eq!(body, want);
    }
}

/// etcd serves only TLS with client certs: plain HTTP and cert-less clients are
/// refused, and an apiserver trusting the wrong CA for etcd never gets ready.
fn etcd_tls(c: &Cluster) {
    let pki = c.dir().join("pki/pki");
    let plain = c.on_host(
        "master",
        &[
            "etcdctl",
            "--endpoints=http://10.240.0.10:2379",
            "--dial-timeout=2s",
            "get",
            "/atomic.io/network/config",
        ],
    );
    assert!(!plain.status.success(), "etcd answered plain HTTP");
    let ca = pki.join("etcd/ca.crt").display().to_string();
    let no_cert = c.on_host(
        "master",
        &[
            "etcdctl",
            "--endpoints=https://10.240.0.10:2379",
            "--dial-timeout=2s",
            "--command-timeout=3s",
            "--cacert",
            &ca,
            "get",
            "/atomic.io/network/config",
        ],
    );
    assert!(
        !no_cert.status.success(),
        "etcd answered a client without a certificate"
    );
    let bin = cluster::repo_root().join("target/debug/kube-apiserver");
    let log_path = c.dir().join("wrong-ca-apiserver.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut wrong = std::process::Command::new("nsenter")
        .arg("--net=/run/netns/nc-master")
        .arg(&bin)
        .args([
            "--etcd-servers=https://127.0.0.1:2379",
            "--insecure-port=8090",
            "--secure-port=6490",
        ])
        .arg(format!(
            "--cert-dir={}",
            c.dir().join("wrong-certs").display()
        ))
        .arg(format!("--etcd-cafile={}", pki.join("ca.crt").display()))
        .arg(format!(
            "--etcd-certfile={}",
            pki.join("apiserver-etcd-client.crt").display()
        ))
        .arg(format!(
            "--etcd-keyfile={}",
            pki.join("apiserver-etcd-client.key").display()
        ))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("second apiserver");
    // It gives up (exits) or keeps retrying etcd, on a certificate error, and
    // never gets ready.
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let refused = try_wait_for(Duration::from_secs(30), || {
        let exited = matches!(wrong.try_wait(), Ok(Some(_)));
        (exited || log_text().matches("cannot reach etcd").count() >= 2).then_some(())
    });
    let readyz = c.on_host(
        "master",
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            "http://127.0.0.1:8090/readyz",
        ],
    );
    let _ = wrong.kill();
    let _ = wrong.wait();
    let text = log_text();
    assert!(refused.is_some(), "the apiserver with the wrong etcd CA neither exited nor reported etcd unreachable:\n{text}");
    assert!(
        text.contains("UnknownIssuer") || text.to_lowercase().contains("certificate"),
        "no certificate error in its log:\n{text}"
    );
    let code = String::from_utf8_lossy(&readyz.stdout).trim().to_string();
    assert_ne!(
        code, "200",
        "an apiserver with the wrong etcd CA became ready"
    );
}

/// A third minion joining later gets an unused subnet, routes to and from every
/// minion, and full connectivity: pod IPs both ways, a ClusterIP and DNS name
/// whose endpoint is on minion1, and its own NodePort Service on every minion.
fn third_minion(c: &Cluster, backend: Backend, pods: &Pods) {
    c.script_ok(&["add-minion", "minion3"]);
    assert_eq!(c.node_ready_names(), ["minion1", "minion2", "minion3"]);
    let subnet3 = c.flannel_subnet("minion3");
    for other in ["minion1", "minion2"] {
        assert_ne!(
            subnet_parts(&subnet3).0,
            subnet_parts(&c.flannel_subnet(other)).0,
            "minion3 got {other}'s subnet"
        );
    }
    backend_routes(c, backend);
    c.apply(&web_pod("late", "late", "minion3"));
    c.apply(&service("late", "late", true));
    let late = c.wait_pod_ready("late");
    assert!(
        in_subnet(&late, &subnet3),
        "late's IP {late} is outside minion3's subnet {subnet3}"
    );
    for (from, to, want) in [
        ("client", late.as_str(), "hello from late\n"),
        ("web-b", late.as_str(), "hello from late\n"),
        ("late", pods.web_a.as_str(), "hello from web-a\n"),
        ("late", pods.client.as_str(), "hello from client\n"),
    ] {
        let body = wait_for(&format!("{from} → {to}"), Duration::from_secs(20), || {
            c.http_from_pod(from, &format!("http://{to}:8000/"))
        });
        assert_eq!(body, want, "{from} → {to}");
    }
    let seen = peer_seen(c, "late", &format!("http://{}:8000", pods.web_a));
    assert_eq!(seen, late, "web-a saw {seen:?}, not late's pod IP");
    dns(c, "late", "front", "hello from client\n");
    node_port_everywhere(c, node_port(c, "late"), "hello from late");
}

//! The classic master + two minions cluster (scripts/netns-cluster.sh), each host
//! in its own network namespace with real etcd, containerd, flanneld, kubelet
//! and kube-proxy, driven by the upstream kubectl. Needs root and the workspace
//! binaries in target/debug (scripts/test.sh builds them first).

mod cluster;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster::{http_from_machine, wait_for, Cluster};

/// A busybox pod serving `hello from <pod>` on :8000, pinned to `node`, Ready
/// while /tmp/ready exists.
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
    command: ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && touch /tmp/ready && exec httpd -f -p 8000 -h /www"]
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
    c.get_json(&["service", svc])["spec"]["clusterIP"].as_str().expect("clusterIP").to_string()
}

/// The set of `hello from X` answers of `n` requests to `url` from `pod`.
fn backends_seen(c: &Cluster, pod: &str, url: &str, n: usize) -> BTreeSet<String> {
    let (_, out) = c.exec(pod, &format!("for i in $(seq {n}); do timeout 5 wget -qO- {url}; done"));
    out.lines().filter_map(|l| l.strip_prefix("hello from ")).map(str::to_string).collect()
}

fn subnet_of(c: &Cluster, minion: &str) -> String {
    let env = std::fs::read_to_string(c.dir().join(minion).join("run/flannel/subnet.env")).expect("subnet.env");
    env.lines().find_map(|l| l.strip_prefix("FLANNEL_SUBNET=")).expect("FLANNEL_SUBNET").to_string()
}

/// Pod to pod across nodes, Service ClusterIP across nodes with load spread, and
/// NodePort on both minions from outside.
fn check_core_paths(c: &Cluster) -> (String, String) {
    assert_eq!(c.node_ready_names(), ["minion1", "minion2"]);
    c.apply(&web_pod("client", "front", "minion1"));
    c.apply(&web_pod("web-a", "web", "minion2"));
    c.apply(&web_pod("web-b", "web", "minion2"));
    c.apply(&service("web", "web", true));
    let client_ip = c.wait_pod_ready("client");
    let web_a_ip = c.wait_pod_ready("web-a");
    c.wait_pod_ready("web-b");
    assert_ne!(client_ip.rsplit_once('.').map(|x| x.0), web_a_ip.rsplit_once('.').map(|x| x.0), "pods on different minions share a subnet");

    // Pod on minion1 → pod on minion2 by pod IP, no NAT: the server sees the client's IP.
    assert_eq!(c.http_from_pod("client", &format!("http://{web_a_ip}:8000/")).as_deref(), Some("hello from web-a\n"));
    c.apply(&web_pod("echo-ip", "none", "minion2"));
    let echo_ip = c.wait_pod_ready("echo-ip");
    let (code, _) = c.exec("echo-ip", "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/ip.cgi; mkdir -p /www/cgi-bin; mv /www/ip.cgi /www/cgi-bin/ip; chmod +x /www/cgi-bin/ip");
    assert_eq!(code, 0);
    let seen = c.http_from_pod("client", &format!("http://{echo_ip}:8000/cgi-bin/ip")).unwrap_or_default();
    // busybox httpd listens on IPv6 too and reports v4 peers as [::ffff:a.b.c.d].
    let seen_ip = seen.trim().trim_start_matches("[::ffff:").trim_end_matches(']');
    assert_eq!(seen_ip, client_ip, "the server saw {seen:?}, not the client's pod IP (NAT between pods?)");

    // ClusterIP whose endpoints are all on the other node; spread over both.
    let ip = cluster_ip(c, "web");
    let url = format!("http://{ip}:8000/");
    let seen = wait_for("both web pods answering the ClusterIP", Duration::from_secs(30), || {
        let seen = backends_seen(c, "client", &url, 16);
        (seen.len() == 2).then_some(seen)
    });
    assert_eq!(seen, BTreeSet::from(["web-a".to_string(), "web-b".to_string()]));

    // NodePort from outside the cluster on both minions' addresses.
    let node_port = c.get_json(&["service", "web"])["spec"]["ports"][0]["nodePort"].as_i64().expect("nodePort");
    for node_ip in ["10.240.0.11", "10.240.0.12"] {
        let body = wait_for(&format!("NodePort on {node_ip}"), Duration::from_secs(20), || {
            http_from_machine(&format!("http://{node_ip}:{node_port}/"))
        });
        assert!(body.starts_with("hello from web-"), "{body}");
    }
    (ip, client_ip)
}

#[test]
fn vxlan_with_nftables_proxy() {
    let mut c = Cluster::up("vxlan", "nftables");
    let (web_ip, _) = check_core_paths(&c);
    let url = format!("http://{web_ip}:8000/");

    // A pod failing readiness leaves the rotation, and comes back.
    let (code, _) = c.exec("web-a", "rm /tmp/ready");
    assert_eq!(code, 0);
    wait_for("only web-b answering", Duration::from_secs(30), || {
        (backends_seen(&c, "client", &url, 12) == BTreeSet::from(["web-b".to_string()])).then_some(())
    });
    c.exec("web-a", "touch /tmp/ready");
    wait_for("web-a back in rotation", Duration::from_secs(30), || {
        (backends_seen(&c, "client", &url, 16).len() == 2).then_some(())
    });

    // Cluster DNS: a pod on minion2 finds a Service whose pod is on minion1 by name.
    c.apply(&service("front", "front", false));
    let front_ip = cluster_ip(&c, "front");
    let answer = wait_for("front.default.svc.cluster.local resolving", Duration::from_secs(30), || {
        let (code, out) = c.exec("web-b", "nslookup front.default.svc.cluster.local");
        (code == 0 && out.contains(&front_ip)).then_some(out)
    });
    assert!(answer.contains(&front_ip), "{answer}");
    for name in ["front", "front.default.svc.cluster.local"] {
        let body = wait_for(&format!("wget http://{name}:8000/"), Duration::from_secs(20), || {
            c.http_from_pod("web-b", &format!("http://{name}:8000/"))
        });
        assert_eq!(body, "hello from client\n");
    }

    // Deleting the Service removes its rules on every minion.
    c.kubectl_ok(&["delete", "service", "web"]);
    for minion in ["minion1", "minion2"] {
        wait_for(&format!("{web_ip} gone from {minion}'s nftables"), Duration::from_secs(20), || {
            let out = c.on_host(minion, &["nft", "list", "table", "ip", "kube-proxy"]);
            (out.status.success() && !String::from_utf8_lossy(&out.stdout).contains(&web_ip)).then_some(())
        });
    }
    assert_eq!(c.http_from_pod("client", &url), None, "a deleted Service still answers");

    // flanneld restarted on minion1 keeps its subnet and routes.
    let subnet_before = subnet_of(&c, "minion1");
    let routes_before = String::from_utf8_lossy(&c.on_host("minion2", &["ip", "route"]).stdout).into_owned();
    c.script_ok(&["stop", "minion1", "flanneld"]);
    c.script_ok(&["restart", "minion1", "flanneld"]);
    wait_for("flanneld on minion1 healthy", Duration::from_secs(20), || {
        let out = c.on_host("minion1", &["curl", "-fsS", "--max-time", "1", "http://10.240.0.11:8471/healthz"]);
        out.status.success().then_some(())
    });
    assert_eq!(subnet_of(&c, "minion1"), subnet_before);
    let routes_after = String::from_utf8_lossy(&c.on_host("minion2", &["ip", "route"]).stdout).into_owned();
    assert_eq!(routes_after, routes_before);
    let web_a_ip = c.wait_pod_ready("web-a");
    assert_eq!(c.http_from_pod("client", &format!("http://{web_a_ip}:8000/")).as_deref(), Some("hello from web-a\n"));

    // A third minion joining later gets its own subnet and full connectivity.
    c.script_ok(&["add-minion", "minion3"]);
    assert_eq!(c.node_ready_names(), ["minion1", "minion2", "minion3"]);
    let subnet3 = subnet_of(&c, "minion3");
    assert!(subnet3 != subnet_of(&c, "minion1") && subnet3 != subnet_of(&c, "minion2"), "minion3 got a used subnet {subnet3}");
    c.apply(&web_pod("late", "late", "minion3"));
    let late_ip = c.wait_pod_ready("late");
    assert_eq!(c.http_from_pod("client", &format!("http://{late_ip}:8000/")).as_deref(), Some("hello from late\n"));
    assert_eq!(c.http_from_pod("late", &format!("http://{web_a_ip}:8000/")).as_deref(), Some("hello from web-a\n"));

    c.down();
}

/// host-gw routing, the iptables proxy, and etcd served only over TLS with client
/// certs: the apiserver and both flanneld connect with --etcd-cafile/certfile/keyfile.
#[test]
fn host_gw_with_iptables_proxy_and_etcd_tls() {
    let mut c = Cluster::up_with("host-gw", "iptables", &["--etcd-tls"]);
    // host-gw: routes to the other minion's subnet via its address, no overlay device.
    let routes = String::from_utf8_lossy(&c.on_host("minion1", &["ip", "route"]).stdout).into_owned();
    assert!(routes.contains("via 10.240.0.12 dev eth0"), "{routes}");
    check_core_paths(&c);

    // etcd refuses plain HTTP and clients without a cert of its CA.
    let pki = c.dir().join("pki/pki");
    let plain = c.on_host("master", &["etcdctl", "--endpoints=http://10.240.0.10:2379", "--dial-timeout=2s", "get", "/atomic.io/network/config"]);
    assert!(!plain.status.success(), "etcd answered plain HTTP");
    let no_cert = c.on_host("master", &["etcdctl", "--endpoints=https://10.240.0.10:2379", "--dial-timeout=2s", "--command-timeout=3s", "--cacert", &pki.join("etcd/ca.crt").display().to_string(), "get", "/atomic.io/network/config"]);
    assert!(!no_cert.status.success(), "etcd answered a client without a certificate");
    // An apiserver trusting the wrong CA for etcd never becomes ready.
    let bin = cluster::repo_root().join("target/debug/kube-apiserver");
    let mut wrong = std::process::Command::new("nsenter")
        .arg("--net=/run/netns/nc-master")
        .arg(&bin)
        .args(["--etcd-servers=https://127.0.0.1:2379", "--insecure-port=8090", "--secure-port=6490"])
        .arg(format!("--cert-dir={}", c.dir().join("wrong-certs").display()))
        .arg(format!("--etcd-cafile={}", pki.join("ca.crt").display()))
        .arg(format!("--etcd-certfile={}", pki.join("apiserver-etcd-client.crt").display()))
        .arg(format!("--etcd-keyfile={}", pki.join("apiserver-etcd-client.key").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("second apiserver");
    std::thread::sleep(Duration::from_secs(6));
    let ready = c.on_host("master", &["curl", "-fsS", "--max-time", "2", "http://127.0.0.1:8090/readyz"]);
    let _ = wrong.kill();
    let _ = wrong.wait();
    assert!(!ready.status.success(), "an apiserver with the wrong etcd CA became ready");
    c.down();
}

//! Two flanneld processes, each in its own network namespace, joined by a bridge
//! in a third namespace that also runs etcd. Nothing here touches the host's
//! network: every address lives in namespaces the test creates and removes.
//!
//! Needs root (CI runs as root); skipped with a message otherwise.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HUB_IP: &str = "192.168.213.254";
const NODE_IPS: [&str; 2] = ["192.168.213.1", "192.168.213.2"];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Network namespaces (and everything in them) removed on drop, even on panic.
struct Topology {
    hub: String,
    nodes: [String; 2],
    dir: tempfile::TempDir,
}

impl Topology {
    fn new(tag: &str) -> Topology {
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let topo = Topology {
            hub: format!("flh-{id}"),
            nodes: [format!("fla-{id}"), format!("flb-{id}")],
            dir: tempfile::Builder::new()
                .prefix("flanneld-it-")
                .tempdir()
                .expect("tempdir"),
        };
        must(&["ip", "netns", "add", &topo.hub]);
        let hub = topo.hub.clone();
        let x = |ns: &str, args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns];
            v.extend_from_slice(args);
            must(&v);
        };
        x(&hub, &["ip", "link", "set", "lo", "up"]);
        x(&hub, &["ip", "link", "add", "br0", "type", "bridge"]);
        x(
            &hub,
            &["ip", "addr", "add", &format!("{HUB_IP}/24"), "dev", "br0"],
        );
        x(&hub, &["ip", "link", "set", "br0", "up"]);
        for (i, node) in topo.nodes.iter().enumerate() {
            must(&["ip", "netns", "add", node]);
            // Created inside the hub so nothing ever appears in the host namespace.
            let peer = format!("p{i}");
            x(
                &hub,
                &[
                    "ip", "link", "add", &peer, "type", "veth", "peer", "name", "eth0", "netns",
                    node,
                ],
            );
            x(&hub, &["ip", "link", "set", &peer, "master", "br0", "up"]);
            x(node, &["ip", "link", "set", "lo", "up"]);
            x(
                node,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{}/24", NODE_IPS[i]),
                    "dev",
                    "eth0",
                ],
            );
            x(node, &["ip", "link", "set", "eth0", "up"]);
        }
        topo
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        sh(&v)
    }

    fn exec_ok(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        must(&v)
    }

    fn etcdctl(&self, args: &[&str]) -> String {
        let ep = format!("--endpoints=http://{HUB_IP}:2379");
        let mut v = vec!["env", "ETCDCTL_API=3", "etcdctl", ep.as_str()];
        v.extend_from_slice(args);
        self.exec_ok(&self.hub, &v)
    }

    fn start_etcd(&self) -> Proc {
        let data = self.dir.path().join("etcd-data");
        let client = format!("http://{HUB_IP}:2379");
        let peer = format!("http://{HUB_IP}:2380");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hub, "etcd", "--name=hub"])
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=hub={peer}"))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let p = Proc::spawn("etcd", cmd, &self.dir.path().join("etcd.log"));
        wait_for("etcd healthy", Duration::from_secs(30), || {
            self.exec(
                &self.hub,
                &[
                    "env",
                    "ETCDCTL_API=3",
                    "etcdctl",
                    &format!("--endpoints=http://{HUB_IP}:2379"),
                    "endpoint",
                    "health",
                ],
            )
            .status
            .success()
        });
        p
    }

    fn subnet_file(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("node{node}/subnet.env"))
    }

    fn cni_dir(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("node{node}/cni"))
    }

    fn start_flanneld(&self, node: usize, extra: &[&str]) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.nodes[node],
            env!("CARGO_BIN_EXE_flanneld"),
        ])
        .arg(format!("-etcd-endpoints=http://{HUB_IP}:2379"))
        .arg("-etcd-prefix=/atomic.io/network")
        .arg("--iface=eth0")
        .arg(format!(
            "--subnet-file={}",
            self.subnet_file(node).display()
        ))
        .arg(format!("--cni-conf-dir={}", self.cni_dir(node).display()))
        .args(extra);
        let log = self
            .dir
            .path()
            .join(format!("flanneld{node}-{}.log", now_ms()));
        Proc::spawn(&format!("flanneld{node}"), cmd, &log)
    }

    /// FLANNEL_SUBNET of a node, once written.
    fn wait_subnet(&self, node: usize, proc: &mut Proc) -> String {
        let path = self.subnet_file(node);
        wait_for_proc(proc, "subnet file", Duration::from_secs(20), || {
            std::fs::read_to_string(&path).is_ok_and(|t| t.contains("FLANNEL_SUBNET="))
        });
        let text = std::fs::read_to_string(&path).expect("subnet file");
        text.lines()
            .find_map(|l| l.strip_prefix("FLANNEL_SUBNET="))
            .expect("FLANNEL_SUBNET")
            .to_string()
    }

    fn routes(&self, node: usize) -> String {
        self.exec_ok(&self.nodes[node], &["ip", "route"])
    }

    /// Whether node's routing table has `<dst> via <via> dev <dev>` (plus `onlink` if asked).
    fn has_route(&self, node: usize, dst: &str, via: &str, dev: &str, onlink: bool) -> bool {
        self.routes(node).lines().any(|l| {
            l.starts_with(&format!("{dst} via {via} dev {dev} "))
                && (!onlink || l.contains(" onlink"))
        })
    }

    /// A "pod" address: FLANNEL_SUBNET's .1 on a `cni0` bridge, as the CNI bridge plugin makes it.
    fn add_pod_addr(&self, node: usize, cidr: &str) {
        let ns = &self.nodes[node];
        let _ = self.exec(ns, &["ip", "link", "del", "cni0"]);
        self.exec_ok(ns, &["ip", "link", "add", "cni0", "type", "bridge"]);
        self.exec_ok(ns, &["ip", "addr", "add", cidr, "dev", "cni0"]);
        self.exec_ok(ns, &["ip", "link", "set", "cni0", "up"]);
    }

    fn ping(&self, node: usize, from: &str, to: &str) -> bool {
        // Debian's busybox-static (installed for the test images) has ping; iputils may not be there.
        let ping: &[&str] =
            if Path::new("/usr/bin/ping").exists() || Path::new("/bin/ping").exists() {
                &["ping"]
            } else {
                &["busybox", "ping"]
            };
        let mut args = ping.to_vec();
        args.extend_from_slice(&["-c", "1", "-W", "2", "-I", from, to]);
        self.exec(&self.nodes[node], &args).status.success()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A child killed on drop; its log is printed when the test panics.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let f = File::create(log).expect("log file");
        let f2 = f.try_clone().expect("clone");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} log -----\n{}\n----- end -----",
                self.name,
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_proc(p: &mut Proc, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if let Some(status) = p.exited() {
            panic!("{} exited ({status}) while waiting for {what}", p.name);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `10.1.94.1/24` -> (`10.1.94.0/24`, `10.1.94.0`, `10.1.94.1`).
fn split_subnet(flannel_subnet: &str) -> (String, String, String) {
    let (ip, len) = flannel_subnet.split_once('/').expect("cidr");
    let octets: Vec<&str> = ip.split('.').collect();
    let base = format!("{}.{}.{}.0", octets[0], octets[1], octets[2]);
    (format!("{base}/{len}"), base, ip.to_string())
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipping: needs root for network namespaces");
            return;
        }
    };
}

#[test]
fn vxlan_two_nodes_routes_ping_restart_and_lease_removal() {
    require_root!();
    let topo = Topology::new("v");
    let _etcd = topo.start_etcd();
    topo.etcdctl(&[
        "put",
        "/atomic.io/network/config",
        r#"{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}"#,
    ]);

    let mut a = topo.start_flanneld(0, &["--ip-masq"]);
    let mut b = topo.start_flanneld(1, &[]);
    let sub_a = topo.wait_subnet(0, &mut a);
    let sub_b = topo.wait_subnet(1, &mut b);
    assert_ne!(sub_a, sub_b, "nodes got the same subnet");
    let (net_a, base_a, gw_a) = split_subnet(&sub_a);
    let (net_b, base_b, gw_b) = split_subnet(&sub_b);
    assert!(
        net_a.starts_with("10.1.") && net_a.ends_with("/24"),
        "{net_a}"
    );

    // subnet.env and the CNI conflist.
    let env_a = std::fs::read_to_string(topo.subnet_file(0)).expect("env");
    assert_eq!(env_a, format!("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET={sub_a}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"));
    let cni: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(topo.cni_dir(0).join("10-flannel.conflist")).expect("conflist"),
    )
    .expect("json");
    assert_eq!(
        cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        net_a.as_str()
    );
    assert_eq!(cni["plugins"][0]["mtu"], 1450);

    // The lease in etcd.
    let key_b = format!("/atomic.io/network/subnets/{}", net_b.replace('/', "-"));
    let value = topo.etcdctl(&["get", "--print-value-only", &key_b]);
    let lease: serde_json::Value = serde_json::from_str(value.trim()).expect("lease json");
    assert_eq!(lease["PublicIP"], NODE_IPS[1]);
    assert_eq!(lease["BackendType"], "vxlan");
    assert_eq!(lease["BackendData"]["VNI"], 1);
    let mac_b = lease["BackendData"]["VtepMAC"]
        .as_str()
        .expect("mac")
        .to_string();
    let ttl = topo.etcdctl(&["get", "-w", "json", &key_b]);
    assert!(
        ttl.contains("\"lease\":"),
        "key not attached to a lease: {ttl}"
    );

    // The vxlan device and per-remote state on node A.
    let link = topo.exec_ok(&topo.nodes[0], &["ip", "-d", "link", "show", "flannel.1"]);
    assert!(
        link.contains("vxlan id 1") && link.contains("dstport 8472"),
        "{link}"
    );
    assert!(link.contains(&format!("local {}", NODE_IPS[0])), "{link}");
    assert!(link.contains("mtu 1450"), "{link}");
    wait_for_proc(&mut a, "route to B", Duration::from_secs(10), || {
        topo.has_route(0, &net_b, &base_b, "flannel.1", true)
    });
    let fdb = topo.exec_ok(
        &topo.nodes[0],
        &["bridge", "fdb", "show", "dev", "flannel.1"],
    );
    assert!(
        fdb.contains(&format!("{mac_b} dst {}", NODE_IPS[1])),
        "{fdb}"
    );
    let neigh = topo.exec_ok(&topo.nodes[0], &["ip", "neigh", "show", "dev", "flannel.1"]);
    assert!(
        neigh.contains(&format!("{base_b} lladdr {mac_b} PERMANENT")),
        "{neigh}"
    );
    let addr = topo.exec_ok(
        &topo.nodes[0],
        &["ip", "-4", "addr", "show", "dev", "flannel.1"],
    );
    assert!(addr.contains(&format!("{base_a}/32")), "{addr}");
    wait_for_proc(&mut b, "route to A", Duration::from_secs(10), || {
        topo.has_route(1, &net_a, &base_a, "flannel.1", true)
    });

    // Masquerade rules (iptables mode by default, as upstream).
    let masq = topo.exec_ok(
        &topo.nodes[0],
        &["iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"],
    );
    assert!(masq.contains("-s 10.1.0.0/16 ! -d 224.0.0.0/4"), "{masq}");
    let post = topo.exec_ok(
        &topo.nodes[0],
        &["iptables", "-t", "nat", "-S", "POSTROUTING"],
    );
    assert_eq!(post.matches("-j FLANNEL-POSTRTG").count(), 1, "{post}");

    // Pod-to-pod over vxlan.
    topo.add_pod_addr(0, &sub_a);
    topo.add_pod_addr(1, &sub_b);
    wait_for("ping A->B over vxlan", Duration::from_secs(10), || {
        topo.ping(0, &gw_a, &gw_b)
    });
    assert!(topo.ping(1, &gw_b, &gw_a), "ping B->A");

    // Stop B, delete its lease: A removes route, fdb and neigh.
    b.stop();
    topo.etcdctl(&["del", &key_b]);
    wait_for_proc(&mut a, "route removal", Duration::from_secs(10), || {
        !topo.routes(0).contains(&net_b)
    });
    let fdb = topo.exec_ok(
        &topo.nodes[0],
        &["bridge", "fdb", "show", "dev", "flannel.1"],
    );
    assert!(!fdb.contains(&mac_b), "fdb entry left: {fdb}");
    let neigh = topo.exec_ok(&topo.nodes[0], &["ip", "neigh", "show", "dev", "flannel.1"]);
    assert!(!neigh.contains(&base_b), "neigh entry left: {neigh}");

    // B restarts and gets its previous subnet back from the subnet file.
    std::fs::write(topo.subnet_file(1), format!("FLANNEL_SUBNET={sub_b}\n"))
        .expect("keep only the subnet");
    let mut b = topo.start_flanneld(1, &[]);
    wait_for_proc(
        &mut b,
        "B's full subnet file",
        Duration::from_secs(20),
        || std::fs::read_to_string(topo.subnet_file(1)).is_ok_and(|t| t.contains("FLANNEL_MTU")),
    );
    assert_eq!(
        topo.wait_subnet(1, &mut b),
        sub_b,
        "restart did not keep the subnet"
    );
    wait_for_proc(&mut a, "route to B again", Duration::from_secs(10), || {
        topo.has_route(0, &net_b, &base_b, "flannel.1", true)
    });
    wait_for("ping A->B after restart", Duration::from_secs(10), || {
        topo.ping(0, &gw_a, &gw_b)
    });

    // Restart with the lease still present: reused by public IP.
    b.stop();
    let mut b = topo.start_flanneld(1, &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(topo.wait_subnet(1, &mut b), sub_b);
    assert!(b.log().contains("reusing"), "{}", b.log());

    // Deleting our own lease stops the daemon, as upstream.
    let key_a = format!("/atomic.io/network/subnets/{}", net_a.replace('/', "-"));
    topo.etcdctl(&["del", &key_a]);
    wait_for(
        "A exits after its lease is revoked",
        Duration::from_secs(10),
        || a.exited().is_some(),
    );
    assert!(a.log().contains("Lease has been revoked"), "{}", a.log());
}

#[test]
fn host_gw_waits_for_config_then_routes_via_public_ip() {
    require_root!();
    let topo = Topology::new("h");
    let _etcd = topo.start_etcd();

    // Started before the config exists: retries with upstream's message.
    let mut a = topo.start_flanneld(0, &["--ip-masq", "--healthz-port=9999"]);
    let log_a = a.log.clone();
    wait_for_proc(
        &mut a,
        "config-not-found message",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log_a).unwrap_or_default().contains(
            "flannel config not found in etcd store. Did you create your config using etcdv3 API?",
        )
        },
    );
    topo.etcdctl(&[
        "put",
        "/atomic.io/network/config",
        r#"{"network":"10.1.0.0/16","subnetlen":24,"backend":{"type":"host-gw"},"EnableNFTables":true}"#,
    ]);
    let mut b = topo.start_flanneld(1, &[]);
    let sub_a = topo.wait_subnet(0, &mut a);
    let sub_b = topo.wait_subnet(1, &mut b);
    assert_ne!(sub_a, sub_b);
    let (net_a, _, gw_a) = split_subnet(&sub_a);
    let (net_b, _, gw_b) = split_subnet(&sub_b);
    let env_a = std::fs::read_to_string(topo.subnet_file(0)).expect("env");
    assert!(env_a.contains("FLANNEL_MTU=1500\n"), "{env_a}");

    wait_for_proc(
        &mut a,
        "host-gw route to B",
        Duration::from_secs(10),
        || topo.has_route(0, &net_b, NODE_IPS[1], "eth0", false),
    );
    wait_for_proc(
        &mut b,
        "host-gw route to A",
        Duration::from_secs(10),
        || topo.has_route(1, &net_a, NODE_IPS[0], "eth0", false),
    );
    assert!(
        !topo
            .exec(&topo.nodes[0], &["ip", "link", "show", "flannel.1"])
            .status
            .success(),
        "host-gw must not create a vxlan device"
    );

    // nftables masquerade (EnableNFTables).
    let nft = topo.exec_ok(
        &topo.nodes[0],
        &["nft", "list", "table", "ip", "flannel-ipv4"],
    );
    assert!(nft.contains("masquerade"), "{nft}");
    assert!(
        nft.contains(&format!("ip saddr {net_a} ip daddr 10.1.0.0/16 return")),
        "{nft}"
    );

    // healthz, fetched inside A's namespace with bash's /dev/tcp.
    let out = topo.exec_ok(
        &topo.nodes[0],
        &["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9999; printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"],
    );
    assert!(
        out.starts_with("HTTP/1.0 200") && out.ends_with("ok"),
        "{out}"
    );

    topo.add_pod_addr(0, &sub_a);
    topo.add_pod_addr(1, &sub_b);
    wait_for("ping A->B over host-gw", Duration::from_secs(10), || {
        topo.ping(0, &gw_a, &gw_b)
    });

    // A route removed by hand comes back on the periodic re-check.
    topo.exec_ok(&topo.nodes[0], &["ip", "route", "del", &net_b]);
    wait_for_proc(&mut a, "route re-added", Duration::from_secs(15), || {
        topo.routes(0).contains(&net_b)
    });

    // Deleting B's lease removes A's route.
    b.stop();
    topo.etcdctl(&[
        "del",
        &format!("/atomic.io/network/subnets/{}", net_b.replace('/', "-")),
    ]);
    wait_for_proc(&mut a, "route removal", Duration::from_secs(10), || {
        !topo.routes(0).contains(&net_b)
    });
}

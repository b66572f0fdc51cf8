//! Helpers of the network namespace tests: a node and a pod namespace joined by a
//! veth pair, commands and sockets inside them, and service port fixtures.
//!
//! Topology per test: namespace `<tag>n` (the "node", where kube-proxy's rules
//! live) joined by a veth pair to `<tag>p` (a "pod" at 10.99.0.2 running a busybox
//! nc listener). Neither namespace has a default route, so nothing can leave.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_proxy::state::{Endpoint, Protocol, ServicePort};

pub const POD_IP: &str = "10.99.0.2";
pub const SERVICE_IP: &str = "10.254.77.7";

pub fn run(args: &[&str]) -> String {
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
pub struct Netns(pub String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Topology {
    pub node: Netns,
    pub pod: Netns,
    _listener: Proc,
}

impl Topology {
    pub fn new() -> Topology {
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
            pod,
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
    pub fn connect(&self, ip: &str, port: u16) -> Option<String> {
        connect_from(&self.node.0, ip, port)
    }

    pub fn nft_table(&self) -> String {
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

/// Connects from namespace `netns` with busybox nc; the first line received, if any.
pub fn connect_from(netns: &str, ip: &str, port: u16) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
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

/// Runs `f` on a thread that joined network namespace `netns`.
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("open netns");
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A UDP server answering every datagram with `udp-hello`, in a namespace.
pub struct UdpEcho {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl UdpEcho {
    pub fn start(netns: &str, port: u16) -> UdpEcho {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let socket = in_netns(netns, move || {
            std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind udp")
        });
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(b"udp-hello", from);
                }
            }
        });
        UdpEcho { stop }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Sends one datagram from `netns` to `ip:port` (a fresh socket each time, so
/// no conntrack entry of an earlier try is reused); the answer, if any.
pub fn udp_ask(netns: &str, ip: &str, port: u16) -> Option<String> {
    let target = format!("{ip}:{port}");
    in_netns(netns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        socket.send_to(b"ping", &target).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

pub fn service(name: &str, endpoints: &[(&str, u16)]) -> ServicePort {
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
pub fn feature_services() -> Vec<ServicePort> {
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

//! kube-dns against a real etcd + apiserver: the binary on 127.0.0.1:<free port>
//! answers for Services created with kubectl, follows changes, and forwards other
//! names to a fake upstream DNS server running in this test on loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use test_support::{free_port, http_get, kubectl, kubectl_stdin, ApiServer, Etcd};

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn apiserver(etcd: &Etcd) -> ApiServer {
    let binary = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/debug/kube-apiserver"
    );
    assert!(
        Path::new(binary).exists(),
        "build it first: cargo build -p kube-apiserver --bin kube-apiserver"
    );
    ApiServer::start(Path::new(binary), etcd, &[]).expect("apiserver")
}

/// Starts kube-dns and waits for /readyz (caches synced).
fn start_kube_dns(server: &ApiServer, upstream: SocketAddr) -> (Proc, SocketAddr, u16) {
    let dns_port = free_port();
    let health_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kube-dns"))
        .args([
            &format!("--master={}", server.url()),
            "--dns-bind-address=127.0.0.1",
            &format!("--dns_port={dns_port}"),
            &format!("--health-port={health_port}"),
            &format!("--upstream={upstream}"),
            "--upstream-timeout=300ms",
            "--v=2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn kube-dns");
    let proc = Proc(child);
    wait_for("kube-dns /readyz", || {
        http_get(&format!("http://127.0.0.1:{health_port}/readyz")).is_ok_and(|r| r.status == 200)
    });
    (
        proc,
        SocketAddr::from((Ipv4Addr::LOCALHOST, dns_port)),
        health_port,
    )
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn query_message(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

/// One query over UDP (or TCP), with a 3 s timeout.
fn query(server: SocketAddr, name: &str, qtype: RecordType, tcp: bool) -> Message {
    let request = query_message(name, qtype);
    let bytes = request.to_vec().unwrap();
    let reply = if tcp {
        let mut stream = TcpStream::connect(server).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).expect("tcp reply length");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).expect("tcp reply");
        buf
    } else {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket.send_to(&bytes, server).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = socket.recv(&mut buf).expect("udp reply");
        buf.truncate(n);
        buf
    };
    let reply = Message::from_vec(&reply).expect("decodable reply");
    assert_eq!(reply.metadata.id, request.metadata.id);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    reply
}

fn answers(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

fn lookup(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    query(server, name, qtype, false)
}

/// A fake upstream resolver on loopback (UDP and TCP): `example.test` has
/// A 192.0.2.7 (TTL 60), `blackhole.test` is never answered, everything else
/// is NXDOMAIN. Records every name it was asked.
struct FakeUpstream {
    address: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

fn fake_reply(request: &[u8], asked: &Mutex<Vec<String>>) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    let query = request.queries.first()?.clone();
    let name = query.name().to_ascii().to_ascii_lowercase();
    asked.lock().unwrap().push(name.clone());
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    reply.add_query(query.clone());
    match name.as_str() {
        "blackhole.test." => return None,
        "example.test." if query.query_type() == RecordType::A => {
            reply.add_answer(Record::from_rdata(
                query.name().clone(),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
            ));
        }
        "example.test." => {}
        _ => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply.to_vec().ok()
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (udp, tcp) = loop {
            let port = free_port();
            let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) else {
                continue;
            };
            let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
                continue;
            };
            break (udp, tcp);
        };
        let address = udp.local_addr().unwrap();
        let udp_asked = asked.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(reply) = fake_reply(&buf[..n], &udp_asked) {
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let tcp_asked = asked.clone();
        std::thread::spawn(move || {
            for mut stream in tcp.incoming().flatten() {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut buf).is_err() {
                    continue;
                }
                if let Some(reply) = fake_reply(&buf, &tcp_asked) {
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    let _ = stream.write_all(&framed);
                }
            }
        });
        FakeUpstream { address, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

const CLUSTER_YAML: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-abc
  namespace: prod
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
endpoints:
- addresses: [10.1.0.5]
  hostname: db-0
  conditions: {ready: true}
- addresses: [10.1.0.6]
  conditions: {ready: true}
- addresses: [10.1.0.7]
  conditions: {ready: false}
ports: [{name: pg, port: 5432, protocol: TCP}]
";

#[test]
fn cluster_names_follow_the_apiserver() {
    let etcd = Etcd::start().expect("etcd");
    let server = apiserver(&etcd);
    let upstream = FakeUpstream::start();
    kubectl_stdin(&server, &["apply", "-f", "-"], CLUSTER_YAML).assert_success();
    let (_dns, dns, health_port) = start_kube_dns(&server, upstream.address);

    let out = kubectl(
        &server,
        &["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"],
    );
    out.assert_success();
    let web_ip = out.stdout.trim().to_string();
    assert!(web_ip.starts_with("10.254."), "{web_ip}");

    // The Services existed before kube-dns started; poll anyway in case the
    // first index lags /readyz by a rebuild.
    wait_for("web's A record", || {
        answers(&lookup(
            dns,
            "web.default.svc.cluster.local.",
            RecordType::A,
        )) == [web_ip.clone()]
    });
    let a = lookup(dns, "web.default.svc.cluster.local.", RecordType::A);
    assert!(a.metadata.authoritative);
    assert_eq!(a.answers[0].ttl, 5);
    // The same over TCP.
    let a = query(dns, "web.default.svc.cluster.local.", RecordType::A, true);
    assert_eq!(answers(&a), [web_ip.as_str()]);

    // AAAA of an IPv4-only service: NOERROR, no answers, SOA in authority.
    let aaaa = lookup(dns, "web.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    assert_eq!(aaaa.authorities[0].record_type(), RecordType::SOA);

    let srv = lookup(
        dns,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(answers(&srv), ["0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(
        srv.additionals
            .iter()
            .map(|r| r.data.to_string())
            .collect::<Vec<_>>(),
        [web_ip.as_str()]
    );

    let octets: Vec<&str> = web_ip.split('.').rev().collect();
    let ptr = lookup(
        dns,
        &format!("{}.in-addr.arpa.", octets.join(".")),
        RecordType::PTR,
    );
    assert_eq!(answers(&ptr), ["web.default.svc.cluster.local."]);

    // Headless: the ready endpoints, by service and by endpoint name.
    let db = lookup(dns, "db.prod.svc.cluster.local.", RecordType::A);
    let mut ips = answers(&db);
    ips.sort();
    assert_eq!(ips, ["10.1.0.5", "10.1.0.6"]);
    assert_eq!(
        answers(&lookup(
            dns,
            "db-0.db.prod.svc.cluster.local.",
            RecordType::A
        )),
        ["10.1.0.5"]
    );
    let srv = lookup(dns, "_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV);
    let mut targets = answers(&srv);
    targets.sort();
    assert_eq!(
        targets,
        [
            "0 50 5432 10-1-0-6.db.prod.svc.cluster.local.",
            "0 50 5432 db-0.db.prod.svc.cluster.local."
        ]
    );

    assert_eq!(
        answers(&lookup(
            dns,
            "10-1-2-3.default.pod.cluster.local.",
            RecordType::A
        )),
        ["10.1.2.3"]
    );

    let nx = lookup(dns, "nope.default.svc.cluster.local.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.answers.is_empty());
    assert_eq!(
        nx.authorities
            .iter()
            .map(|r| r.record_type())
            .collect::<Vec<_>>(),
        [RecordType::SOA]
    );

    // 60 endpoints do not fit a 512-byte UDP reply: truncated (TC), complete over TCP.
    let mut many = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: default}\nspec: {clusterIP: None}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: many-1, namespace: default, \
         labels: {kubernetes.io/service-name: many}}\naddressType: IPv4\nendpoints:\n",
    );
    for i in 1..=60 {
        many.push_str(&format!("- addresses: [10.2.0.{i}]\n"));
    }
    kubectl_stdin(&server, &["apply", "-f", "-"], &many).assert_success();
    wait_for("the 60 endpoints over TCP", || {
        query(dns, "many.default.svc.cluster.local.", RecordType::A, true)
            .answers
            .len()
            == 60
    });
    let udp = lookup(dns, "many.default.svc.cluster.local.", RecordType::A);
    assert!(
        udp.metadata.truncation,
        "no TC bit with {} answers",
        udp.answers.len()
    );
    assert!(udp.answers.len() < 60);
    // With EDNS(0) advertising 4096 bytes it fits, and the reply carries an OPT.
    let mut request = query_message("many.default.svc.cluster.local.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    request.set_edns(edns);
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send_to(&request.to_vec().unwrap(), dns).unwrap();
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).expect("udp reply");
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 60);
    assert!(reply.edns.is_some(), "an EDNS query gets an OPT back");

    // A Service created now appears; deleted, it disappears.
    kubectl(
        &server,
        &["create", "service", "clusterip", "late", "--tcp=8080:8080"],
    )
    .assert_success();
    let out = kubectl(
        &server,
        &["get", "service", "late", "-o", "jsonpath={.spec.clusterIP}"],
    );
    let late_ip = out.stdout.trim().to_string();
    let created = Instant::now();
    wait_for("the new service", || {
        answers(&lookup(
            dns,
            "late.default.svc.cluster.local.",
            RecordType::A,
        )) == [late_ip.clone()]
    });
    assert!(
        created.elapsed() < Duration::from_secs(3),
        "took {:?}",
        created.elapsed()
    );
    kubectl(&server, &["delete", "service", "late"]).assert_success();
    let deleted = Instant::now();
    wait_for("the deleted service to go", || {
        lookup(dns, "late.default.svc.cluster.local.", RecordType::A)
            .metadata
            .response_code
            == ResponseCode::NXDomain
    });
    assert!(
        deleted.elapsed() < Duration::from_secs(3),
        "took {:?}",
        deleted.elapsed()
    );

    // None of the cluster names went upstream.
    let asked = upstream.asked();
    assert!(
        !asked
            .iter()
            .any(|n| n.ends_with("cluster.local.") || n.ends_with("in-addr.arpa.")),
        "{asked:?}"
    );

    let metrics = http_get(&format!("http://127.0.0.1:{health_port}/metrics"))
        .unwrap()
        .body;
    assert!(
        metrics.contains("coredns_dns_requests_total{proto=\"udp\",type=\"A\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coredns_dns_responses_total{rcode=\"NXDOMAIN\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coredns_dns_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{health_port}/healthz"))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn other_names_are_forwarded_upstream() {
    let etcd = Etcd::start().expect("etcd");
    let server = apiserver(&etcd);
    let upstream = FakeUpstream::start();
    kubectl_stdin(
        &server,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\nspec: {type: ExternalName, externalName: example.test}\n",
    )
    .assert_success();
    let (_dns, dns, _) = start_kube_dns(&server, upstream.address);

    for tcp in [false, true] {
        let a = query(dns, "example.test.", RecordType::A, tcp);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&a), ["192.0.2.7"], "tcp={tcp}");
        assert_eq!(a.answers[0].ttl, 60, "the upstream's TTL is kept");
        assert!(!a.metadata.authoritative);
    }
    // The upstream's NXDOMAIN is passed on.
    let nx = lookup(dns, "unknown.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    // An upstream that does not answer: SERVFAIL after the timeout.
    let started = Instant::now();
    let fail = lookup(dns, "blackhole.test.", RecordType::A);
    assert_eq!(fail.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(3));

    // ExternalName: CNAME, with the target's address chased upstream.
    wait_for("the ExternalName service", || {
        !lookup(dns, "ext.default.svc.cluster.local.", RecordType::A)
            .answers
            .is_empty()
    });
    let ext = lookup(dns, "ext.default.svc.cluster.local.", RecordType::A);
    assert_eq!(ext.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        ext.answers
            .iter()
            .map(|r| r.record_type())
            .collect::<Vec<_>>(),
        [RecordType::CNAME, RecordType::A]
    );
    assert_eq!(answers(&ext), ["example.test.", "192.0.2.7"]);

    let asked = upstream.asked();
    for name in ["example.test.", "unknown.test.", "blackhole.test."] {
        assert!(
            asked.iter().any(|n| n == name),
            "{name} not forwarded: {asked:?}"
        );
    }
}

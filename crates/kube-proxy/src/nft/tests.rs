use super::*;
use crate::state::Protocol;

pub(crate) fn sp(eps: &[(&str, u16)]) -> ServicePort {
    ServicePort {
        namespace: "ns1".into(),
        name: "svc1".into(),
        port_name: "p80".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Some("172.30.0.41".parse().unwrap()),
        port: 80,
        node_port: None,
        external_ips: vec![],
        affinity_timeout: None,
        external_policy_local: false,
        internal_policy_local: false,
        endpoints: eps
            .iter()
            .map(|(ip, port)| Endpoint {
                ip: ip.parse().unwrap(),
                port: *port,
                local: false,
            })
            .collect(),
    }
}

fn service_lines(text: &str) -> Vec<&str> {
    // Everything after the fixed preamble (the first service-related line).
    let start = text
        .lines()
        .position(|l| l.contains("ns1/svc1"))
        .unwrap_or(text.lines().count());
    text.lines().skip(start).collect()
}

#[test]
fn fixed_preamble() {
    let r = ruleset(&ProxyState::default(), &SyncConfig::default());
    let expected = "\
add table ip kube-proxy { comment \"rules for kube-proxy\" ; }
delete table ip kube-proxy
add table ip kube-proxy { comment \"rules for kube-proxy\" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP and ExternalIP traffic\" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }
ENDPOINT_MAPS
add set ip kube-proxy hairpin { type ipv4_addr . ipv4_addr ; comment \"endpoints reaching themselves through a service\" ; }
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain
add chain ip kube-proxy services
add chain ip kube-proxy masquerading
add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy filter-prerouting ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
";
    let maps: Vec<String> = (0..64)
        .map(|i| format!("add map ip kube-proxy endpoints-{i} {{ typeof numgen random mod 1 : ip daddr . th dport ; comment \"endpoint address and port by slot\" ; }}"))
        .collect();
    assert_eq!(r.text, expected.replace("ENDPOINT_MAPS", &maps.join("\n")));
    assert_eq!(r.rules, 17);
}

#[test]
fn cluster_ip_with_two_endpoints() {
    let state = ProxyState {
        services: vec![
            sp(&[("10.180.0.1", 8080), ("10.180.0.2", 8080)]),
            ServicePort {
                name: "svc2".into(),
                protocol: Protocol::Udp,
                ..sp(&[("10.180.0.3", 53)])
            },
        ],
    };
    let config = SyncConfig {
        cluster_cidr: Some("10.0.0.0/8".parse().unwrap()),
        ..Default::default()
    };
    let r = ruleset(&state, &config);
    let svc = service_chain(&state.services[0]);
    let svc2 = service_chain(&state.services[1]);
    assert!(
        svc.starts_with("service-") && svc.ends_with("-ns1/svc1/tcp/p80"),
        "{svc}"
    );
    // Slots 0-1 for the first service, 2 for the second (in the endpoint maps
    // their first slots hash to); the hairpin set gets every endpoint address.
    let (map0, map2) = (endpoint_map(0), endpoint_map(endpoint_shard(2)));
    assert_ne!(map0, map2);
    let expected = format!(
        "\
add chain ip kube-proxy {svc}
add rule ip kube-proxy {svc} ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy {svc} meta l4proto tcp dnat ip to numgen random mod 2 offset 0 map @{map0}
add chain ip kube-proxy {svc2}
add rule ip kube-proxy {svc2} ip daddr 172.30.0.41 udp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy {svc2} meta l4proto udp dnat ip to numgen random mod 1 offset 2 map @{map2}
add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {svc}, 172.30.0.41 . udp . 80 : goto {svc2} }}
add element ip kube-proxy {map0} {{ 0 : 10.180.0.1 . 8080, 1 : 10.180.0.2 . 8080 }}
add element ip kube-proxy {map2} {{ 2 : 10.180.0.3 . 53 }}
add element ip kube-proxy hairpin {{ 10.180.0.1 . 10.180.0.1, 10.180.0.2 . 10.180.0.2, 10.180.0.3 . 10.180.0.3 }}"
    );
    assert_eq!(service_lines(&r.text).join("\n"), expected);
    assert_eq!(r.rules, 17 + 4);
}

#[test]
fn slot_ranges_kept_while_endpoint_count_stays() {
    let config = SyncConfig::default();
    let mut slots = SlotAllocator::default();
    let two = sp(&[("10.180.0.1", 8080), ("10.180.0.2", 8080)]);
    let first = service_fragment(&two, &config, &mut slots, None);
    let chain = service_chain(&two);
    assert_eq!(first.balancer(&chain), Some((0, 2)));
    // Another endpoint in place of the second: same range, one slot differs.
    let replaced = sp(&[("10.180.0.1", 8080), ("10.180.0.9", 8080)]);
    let second = service_fragment(&replaced, &config, &mut slots, Some(&first));
    assert_eq!(second.balancer(&chain), Some((0, 2)));
    assert_eq!(second.slots[0], first.slots[0]);
    assert_eq!(
        second.slots[1].ip,
        "10.180.0.9".parse::<Ipv4Addr>().unwrap()
    );
    // A third endpoint: a fresh range after everything handed out.
    let three = sp(&[
        ("10.180.0.1", 8080),
        ("10.180.0.2", 8080),
        ("10.180.0.3", 8080),
    ]);
    let third = service_fragment(&three, &config, &mut slots, Some(&second));
    assert_eq!(third.balancer(&chain), Some((2, 3)));
    assert_eq!(
        third.slots.iter().map(|s| s.key).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(!slots.exhausted());
}

#[test]
fn no_endpoints_rejected_including_nodeport() {
    let mut s = sp(&[]);
    s.node_port = Some(30080);
    let r = ruleset(&ProxyState { services: vec![s] }, &SyncConfig::default());
    let tail: Vec<&str> = r
        .text
        .lines()
        .skip_while(|l| !l.starts_with("add element"))
        .collect();
    assert_eq!(
        tail,
        vec![
            "add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 : goto reject-chain }",
            "add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 : goto reject-chain }",
        ]
    );
    assert!(
        !r.text.contains("add element ip kube-proxy service-ips"),
        "no service-ips element without endpoints"
    );
}

#[test]
fn nodeport_external_ip_and_masquerade_all() {
    let mut s = sp(&[("10.180.0.1", 8080)]);
    s.node_port = Some(30080);
    s.external_ips = vec!["192.0.2.7".parse().unwrap()];
    let config = SyncConfig {
        masquerade_all: true,
        nodeport_addresses: vec!["192.168.50.0/24".parse().unwrap()],
        ..Default::default()
    };
    let r = ruleset(
        &ProxyState {
            services: vec![s.clone()],
        },
        &config,
    );
    let svc = service_chain(&s);
    let ext = external_chain(&s);
    assert!(r.text.contains(&format!(
        "add rule ip kube-proxy {svc} ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade\n"
    )));
    assert!(r.text.contains(&format!("add rule ip kube-proxy {ext} jump mark-for-masquerade\nadd rule ip kube-proxy {ext} goto {svc}\n")));
    assert!(r.text.contains(&format!(
        "add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {svc}, 192.0.2.7 . tcp . 80 : goto {ext} }}"
    )));
    assert!(r.text.contains(&format!(
        "add element ip kube-proxy service-nodeports {{ tcp . 30080 : goto {ext} }}"
    )));
    assert!(r.text.contains("add rule ip kube-proxy services ip daddr { 192.168.50.0/24 } meta l4proto . th dport vmap @service-nodeports\n"));
}

#[test]
fn session_affinity_sets_and_lookups() {
    let mut s = sp(&[("10.180.0.1", 8080)]);
    s.affinity_timeout = Some(600);
    let r = ruleset(
        &ProxyState {
            services: vec![s.clone()],
        },
        &SyncConfig::default(),
    );
    let ep = endpoint_chain(&s, &s.endpoints[0]);
    let set = affinity_set(&s, &s.endpoints[0]);
    let svc = service_chain(&s);
    let expected = format!(
        "\
add set ip kube-proxy {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; }}
add chain ip kube-proxy {svc}
add chain ip kube-proxy {ep}
add rule ip kube-proxy {svc} ip saddr @{set} goto {ep}
add rule ip kube-proxy {svc} goto {ep}
add rule ip kube-proxy {ep} ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy {ep} update @{set} {{ ip saddr }}
add rule ip kube-proxy {ep} meta l4proto tcp dnat to 10.180.0.1:8080
"
    );
    assert!(r.text.contains(&expected), "{}", r.text);
}

#[test]
fn external_policy_local_uses_only_local_endpoints() {
    let mut s = sp(&[("10.180.0.1", 8080), ("10.180.0.2", 8080)]);
    s.endpoints[1].local = true;
    s.node_port = Some(30080);
    s.external_policy_local = true;
    let r = ruleset(
        &ProxyState {
            services: vec![s.clone()],
        },
        &SyncConfig::default(),
    );
    let ext = external_chain(&s);
    // Cluster traffic uses slots 0-1, external traffic only the local endpoint.
    assert!(
        r.text.contains(&format!(
            "add rule ip kube-proxy {ext} meta l4proto tcp dnat ip to numgen random mod 1 offset 2 map @endpoints-{}\n",
            endpoint_shard(2)
        )),
        "{}",
        r.text
    );
    assert!(r.text.contains("2 : 10.180.0.2 . 8080 }"), "{}", r.text);
    assert!(!r.text.contains(&format!(
        "add rule ip kube-proxy {ext} jump mark-for-masquerade"
    )));
}

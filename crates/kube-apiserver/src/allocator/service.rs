//! What a Service asks of the allocators: its cluster IP request and the node ports to
//! take, keep or free (upstream `pkg/registry/core/service/storage/alloc.go`).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::cidr::PortRange;

fn spec(svc: &Value) -> Option<&Value> {
    svc.get("spec")
}

fn spec_mut(svc: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let obj = svc.as_object_mut()?;
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    spec.as_object_mut()
}

fn str_field<'a>(svc: &'a Value, field: &str) -> &'a str {
    spec(svc)
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn svc_type(svc: &Value) -> &str {
    match str_field(svc, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

pub fn needs_cluster_ip(svc: &Value) -> bool {
    svc_type(svc) != "ExternalName"
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(svc_type(svc), "NodePort" | "LoadBalancer")
}

/// LoadBalancers may opt out of node ports (`allocateLoadBalancerNodePorts: false`).
fn should_allocate_node_ports(svc: &Value) -> bool {
    match svc_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            spec(svc)
                .and_then(|s| s.get("allocateLoadBalancerNodePorts"))
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

fn needs_health_check_port(svc: &Value) -> bool {
    svc_type(svc) == "LoadBalancer" && str_field(svc, "externalTrafficPolicy") == "Local"
}

/// The requested cluster IPs: `spec.clusterIPs`, else `[spec.clusterIP]`, else none.
pub fn requested_cluster_ips(svc: &Value) -> Vec<String> {
    let ips: Vec<String> = spec(svc)
        .and_then(|s| s.get("clusterIPs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    match str_field(svc, "clusterIP") {
        "" => Vec::new(),
        ip => vec![ip.to_string()],
    }
}

pub fn set_cluster_ip(svc: &mut Value, ip: &str) {
    if let Some(s) = spec_mut(svc) {
        s.insert("clusterIP".into(), json!(ip));
        s.insert("clusterIPs".into(), json!([ip]));
    }
}

/// The allocated IPv4 cluster IP, if any (not for headless or ExternalName Services).
pub fn real_cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    if !needs_cluster_ip(svc) {
        return None;
    }
    str_field(svc, "clusterIP").parse().ok()
}

/// Single-stack IPv4, as upstream defaults a Service on an IPv4 cluster.
pub fn default_ip_families(svc: &mut Value) {
    if let Some(s) = spec_mut(svc) {
        if s.get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            s.insert("ipFamilies".into(), json!(["IPv4"]));
        }
        if s.get("ipFamilyPolicy").is_none_or(Value::is_null) {
            s.insert("ipFamilyPolicy".into(), json!("SingleStack"));
        }
    }
}

fn port_list(svc: &Value) -> &[Value] {
    spec(svc)
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn node_port(p: &Value) -> i64 {
    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0)
}

fn health_check_port(svc: &Value) -> i64 {
    spec(svc)
        .and_then(|s| s.get("healthCheckNodePort"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Every node port a Service holds (ports and health check).
pub fn node_ports_of(svc: &Value) -> BTreeSet<i64> {
    let mut out: BTreeSet<i64> = port_list(svc)
        .iter()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect();
    let hc = health_check_port(svc);
    if hc != 0 {
        out.insert(hc);
    }
    out
}

/// Keeps an update from dropping allocated values the client did not send
/// (upstream `patchAllocatedValues`): node ports by port name, the health check port.
fn patch_from_old(svc: &mut Value, old: &Value) {
    if needs_node_ports(old) && needs_node_ports(svc) {
        let new_ports: BTreeSet<i64> = port_list(svc).iter().map(node_port).collect();
        let used: BTreeSet<i64> = node_ports_of(old)
            .intersection(&new_ports)
            .copied()
            .collect();
        let by_name: HashMap<String, i64> = port_list(old)
            .iter()
            .map(|p| {
                (
                    p.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    node_port(p),
                )
            })
            .collect();
        if let Some(ports) = spec_mut(svc)
            .and_then(|s| s.get_mut("ports"))
            .and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter(|p| node_port(p) == 0) {
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(&np) = by_name.get(&name) {
                    if np != 0 && !used.contains(&np) {
                        if let Some(o) = p.as_object_mut() {
                            o.insert("nodePort".into(), json!(np));
                        }
                    }
                }
            }
        }
    }
    if needs_health_check_port(old) && needs_health_check_port(svc) && health_check_port(svc) == 0 {
        let hc = health_check_port(old);
        if let (Some(s), true) = (spec_mut(svc), hc != 0) {
            s.insert("healthCheckNodePort".into(), json!(hc));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Port(usize),
    HealthCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Fixed(i64),
    Random(usize),
}

/// The node port work for one write.
#[derive(Debug, Default)]
pub struct NodePortPlan {
    /// Explicit ports not held before: (field path, port).
    pub specific: Vec<(String, i64)>,
    /// How many random ports to pick.
    pub random: usize,
    /// Ports held before and no longer used.
    pub release: BTreeSet<i64>,
    assign: Vec<(Target, Pick)>,
}

impl NodePortPlan {
    pub fn is_empty(&self) -> bool {
        self.specific.is_empty()
            && self.random == 0
            && self.release.is_empty()
            && self.assign.is_empty()
    }

    /// Writes the chosen ports into the Service.
    pub fn fill(&self, svc: &mut Value, picked: &[i64]) {
        for (target, pick) in &self.assign {
            let value = match pick {
                Pick::Fixed(p) => *p,
                Pick::Random(i) => picked.get(*i).copied().unwrap_or(0),
            };
            let Some(s) = spec_mut(svc) else { return };
            match target {
                Target::HealthCheck => {
                    s.insert("healthCheckNodePort".into(), json!(value));
                }
                Target::Port(i) => {
                    if let Some(p) = s
                        .get_mut("ports")
                        .and_then(Value::as_array_mut)
                        .and_then(|a| a.get_mut(*i))
                        .and_then(Value::as_object_mut)
                    {
                        p.insert("nodePort".into(), json!(value));
                    }
                }
            }
        }
    }
}

/// Works out which node ports `svc` takes, keeps and frees relative to `old_ports`.
/// Ports with the same number (TCP and UDP 53) share one node port, as upstream.
/// Fails with (field, port) for a requested port outside `range`.
pub fn plan_node_ports(
    svc: &mut Value,
    old: Option<&Value>,
    old_ports: &BTreeSet<i64>,
    range: &PortRange,
) -> Result<NodePortPlan, (String, i64)> {
    if let Some(old) = old {
        patch_from_old(svc, old);
    }
    let mut plan = NodePortPlan::default();
    let mut held = BTreeSet::new();
    let mut take =
        |plan: &mut NodePortPlan, field: String, port: i64| -> Result<(), (String, i64)> {
            if range.offset_of(port).is_none() {
                return Err((field, port));
            }
            if held.insert(port) && !old_ports.contains(&port) {
                plan.specific.push((field, port));
            }
            Ok(())
        };
    if needs_node_ports(svc) {
        let allocate = should_allocate_node_ports(svc);
        let ports = port_list(svc).to_vec();
        let number = |p: &Value| p.get("port").and_then(Value::as_i64).unwrap_or(0);
        let mut explicit: HashMap<i64, i64> = HashMap::new();
        for p in &ports {
            if node_port(p) != 0 {
                explicit.entry(number(p)).or_insert(node_port(p));
            }
        }
        let mut random_by_number: HashMap<i64, usize> = HashMap::new();
        for (i, p) in ports.iter().enumerate() {
            let np = node_port(p);
            if np != 0 {
                take(&mut plan, format!("spec.ports[{i}].nodePort"), np)?;
            } else if allocate {
                let pick = match explicit.get(&number(p)) {
                    Some(&shared) => Pick::Fixed(shared),
                    None => {
                        let next = plan.random;
                        let idx = *random_by_number.entry(number(p)).or_insert(next);
                        if idx == next {
                            plan.random += 1;
                        }
                        Pick::Random(idx)
                    }
                };
                plan.assign.push((Target::Port(i), pick));
            }
        }
    }
    if needs_health_check_port(svc) {
        let hc = health_check_port(svc);
        if hc != 0 {
            take(&mut plan, "spec.healthCheckNodePort".into(), hc)?;
        } else {
            plan.assign
                .push((Target::HealthCheck, Pick::Random(plan.random)));
            plan.random += 1;
        }
    }
    plan.release = old_ports.difference(&held).copied().collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> PortRange {
        PortRange::parse("30000-32767").expect("valid")
    }

    #[test]
    fn cluster_ip_requests() {
        let svc = json!({"spec": {"clusterIP": "10.254.0.10"}});
        assert_eq!(requested_cluster_ips(&svc), vec!["10.254.0.10"]);
        let svc = json!({"spec": {"clusterIP": "", "clusterIPs": ["10.254.0.11"]}});
        assert_eq!(requested_cluster_ips(&svc), vec!["10.254.0.11"]);
        assert!(requested_cluster_ips(&json!({"spec": {}})).is_empty());
        let mut svc = json!({"spec": {"type": "NodePort"}});
        set_cluster_ip(&mut svc, "10.254.3.4");
        default_ip_families(&mut svc);
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.254.3.4"]));
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(real_cluster_ip(&svc), Some(Ipv4Addr::new(10, 254, 3, 4)));
        assert_eq!(
            real_cluster_ip(&json!({"spec": {"clusterIP": "None"}})),
            None
        );
        assert!(!needs_cluster_ip(
            &json!({"spec": {"type": "ExternalName"}})
        ));
    }

    #[test]
    fn plans_random_and_requested_ports() {
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"},
            {"name": "web", "port": 80, "nodePort": 30080}
        ]}});
        let plan = plan_node_ports(&mut svc, None, &BTreeSet::new(), &range()).expect("in range");
        assert_eq!(
            plan.specific,
            vec![("spec.ports[2].nodePort".to_string(), 30080)]
        );
        assert_eq!(plan.random, 1, "TCP and UDP 53 share one node port");
        plan.fill(&mut svc, &[31000]);
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 31000);
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 31000);
        assert_eq!(svc["spec"]["ports"][2]["nodePort"], 30080);

        let mut bad =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}});
        assert_eq!(
            plan_node_ports(&mut bad, None, &BTreeSet::new(), &range()).err(),
            Some(("spec.ports[0].nodePort".to_string(), 80))
        );

        let mut cip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        assert!(plan_node_ports(&mut cip, None, &BTreeSet::new(), &range())
            .map(|p| p.is_empty())
            .unwrap_or(false));
    }

    #[test]
    fn updates_keep_patch_and_release() {
        let old = json!({"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81, "nodePort": 30002}]}});
        let old_ports = node_ports_of(&old);
        // The client resent the Service without node ports and dropped port b.
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}]}});
        let plan = plan_node_ports(&mut new, Some(&old), &old_ports, &range()).expect("in range");
        assert_eq!(
            new["spec"]["ports"][0]["nodePort"], 30001,
            "patched from the old object"
        );
        assert!(plan.specific.is_empty());
        assert_eq!(plan.random, 0);
        assert_eq!(
            plan.release.iter().copied().collect::<Vec<_>>(),
            vec![30002]
        );

        // NodePort -> ClusterIP frees everything.
        let mut cip = json!({"spec": {"type": "ClusterIP", "ports": [{"name": "a", "port": 80}]}});
        let plan = plan_node_ports(&mut cip, Some(&old), &old_ports, &range()).expect("ok");
        assert_eq!(plan.release.len(), 2);

        // ClusterIP -> NodePort allocates.
        let was = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let mut np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let plan = plan_node_ports(&mut np, Some(&was), &BTreeSet::new(), &range()).expect("ok");
        assert_eq!(plan.random, 1);
    }

    #[test]
    fn load_balancer_health_check_port() {
        let mut lb = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}});
        let plan = plan_node_ports(&mut lb, None, &BTreeSet::new(), &range()).expect("ok");
        assert_eq!(plan.random, 1, "only the health check port");
        plan.fill(&mut lb, &[32000]);
        assert_eq!(lb["spec"]["healthCheckNodePort"], 32000);
        assert!(lb["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(
            node_ports_of(&lb).into_iter().collect::<Vec<_>>(),
            vec![32000]
        );
    }
}

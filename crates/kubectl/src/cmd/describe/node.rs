//! Upstream's `NodeDescriber`: the node, its Lease, the non-terminated pods bound
//! to it with their requests/limits as a share of the allocatable resources, and
//! its events.

use std::collections::BTreeMap;

use api_types::quantity::{format_bytes, Format, ParsedQuantity};
use serde_json::Value;

use super::pod::rfc1123z;
use super::template::{annotations_multiline, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1};
use crate::context::Context;
use crate::errors::Result;
use crate::resource::ApiResource;

const NANO: i128 = 1_000_000_000;

/// A quantity sum as upstream's `Quantity.Add` keeps it: the value, and the
/// format of the first quantity added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qty {
    nanos: i128,
    binary: bool,
}

impl Qty {
    pub fn parse(text: &str) -> Option<Qty> {
        let q = ParsedQuantity::parse(text).ok()?;
        // milli precision is what upstream's describer reads back
        let nanos = i128::from(q.milli_value()) * 1_000_000;
        Some(Qty {
            nanos,
            binary: q.format() == Format::BinarySI,
        })
    }

    fn add(self, other: Qty) -> Qty {
        Qty {
            nanos: self.nanos + other.nanos,
            binary: self.binary,
        }
    }

    /// `MilliValue()`: rounded up.
    pub fn milli(&self) -> i64 {
        i64::try_from(div_ceil(self.nanos, 1_000_000)).unwrap_or(i64::MAX)
    }

    /// `Value()`: rounded up.
    pub fn value(&self) -> i64 {
        i64::try_from(div_ceil(self.nanos, NANO)).unwrap_or(i64::MAX)
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    if a >= 0 {
        (a + b - 1) / b
    } else {
        a / b
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let text = if self.binary && self.nanos % NANO == 0 {
            format_bytes(i64::try_from(self.nanos / NANO).unwrap_or(i64::MAX))
        } else {
            ParsedQuantity::parse(&format!("{}n", self.nanos))
                .map(|q| q.canonical())
                .unwrap_or_default()
        };
        f.write_str(&text)
    }
}

type Resources = BTreeMap<String, Qty>;

fn resource_list(v: &Value) -> Resources {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Qty::parse(v.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn add_list(into: &mut Resources, list: &Resources) {
    for (k, q) in list {
        let sum = match into.get(k) {
            Some(have) => have.add(*q),
            None => *q,
        };
        into.insert(k.clone(), sum);
    }
}

fn max_list(into: &mut Resources, list: &Resources) {
    for (k, q) in list {
        match into.get(k) {
            Some(have) if have.nanos >= q.nanos => {}
            _ => {
                into.insert(k.clone(), *q);
            }
        }
    }
}

/// `resourcehelper.PodRequestsAndLimits`: the containers' sum (sidecar init
/// containers included), at least the largest init container (plus the
/// sidecars started before it), plus the pod overhead.
pub fn pod_requests_and_limits(pod: &Value) -> (Resources, Resources) {
    let spec = &pod["spec"];
    let mut out = Vec::new();
    for which in ["requests", "limits"] {
        let mut sum = Resources::new();
        for c in spec["containers"].as_array().into_iter().flatten() {
            add_list(&mut sum, &resource_list(&c["resources"][which]));
        }
        let mut sidecars = Resources::new();
        let mut init_max = Resources::new();
        for c in spec["initContainers"].as_array().into_iter().flatten() {
            let list = resource_list(&c["resources"][which]);
            if c["restartPolicy"] == "Always" {
                add_list(&mut sum, &list);
                add_list(&mut sidecars, &list);
            } else {
                let mut with_sidecars = list;
                add_list(&mut with_sidecars, &sidecars);
                max_list(&mut init_max, &with_sidecars);
            }
        }
        max_list(&mut sum, &init_max);
        let overhead = resource_list(&spec["overhead"]);
        if which == "requests" || !sum.is_empty() {
            add_list(&mut sum, &overhead);
        }
        out.push(sum);
    }
    let limits = out.pop().unwrap_or_default();
    let requests = out.pop().unwrap_or_default();
    (requests, limits)
}

/// `findNodeRoles`: `node-role.kubernetes.io/ROLE` labels and `kubernetes.io/role`.
pub fn node_roles(labels: &Value) -> Vec<String> {
    let mut roles: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().filter(|r| !r.is_empty()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    roles
}

fn percent(part: i64, whole: i64) -> i64 {
    if whole == 0 {
        0
    } else {
        (part as f64 / whole as f64 * 100.0) as i64
    }
}

fn taints_multiline(w: &mut PrefixWriter, taints: &Value) {
    w.write(LEVEL_0, "Taints:\t");
    let mut taints = taints.as_array().cloned().unwrap_or_default();
    // upstream sorts by "Effect,Key"
    let sort_key = |t: &Value| {
        format!(
            "{},{}",
            t["effect"].as_str().unwrap_or_default(),
            t["key"].as_str().unwrap_or_default()
        )
    };
    taints.sort_by_key(sort_key);
    if taints.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, t) in taints.iter().enumerate() {
        if i != 0 {
            w.write(LEVEL_0, "\t");
        }
        let key = t["key"].as_str().unwrap_or_default();
        let effect = t["effect"].as_str().unwrap_or_default();
        let value = t["value"].as_str().unwrap_or_default();
        // `Taint.ToString`
        let text = match (value.is_empty(), effect.is_empty()) {
            (true, true) => key.to_string(),
            (false, true) => format!("{key}={value}"),
            (true, false) => format!("{key}:{effect}"),
            (false, false) => format!("{key}={value}:{effect}"),
        };
        w.write(LEVEL_0, &format!("{text}\n"));
    }
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsStandardContainerResourceName`.
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name)
}

fn describe_node_resources(pods: &[Value], node: &Value, w: &mut PrefixWriter) {
    let now = chrono::Utc::now();
    w.write(
        LEVEL_0,
        &format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    w.write(
        LEVEL_1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.write(
        LEVEL_1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let mut allocatable = resource_list(&node["status"]["allocatable"]);
    if allocatable.is_empty() {
        allocatable = resource_list(&node["status"]["capacity"]);
    }
    let get = |list: &Resources, k: &str| list.get(k).copied().unwrap_or_default();
    let alloc_cpu = get(&allocatable, "cpu").milli();
    let alloc_mem = get(&allocatable, "memory").value();
    let mut total_req = Resources::new();
    let mut total_lim = Resources::new();
    for pod in pods {
        let (req, lim) = pod_requests_and_limits(pod);
        add_list(&mut total_req, &req);
        add_list(&mut total_lim, &lim);
        let (cr, cl, mr, ml) = (
            get(&req, "cpu"),
            get(&lim, "cpu"),
            get(&req, "memory"),
            get(&lim, "memory"),
        );
        let age = api_types::table::translate_timestamp_since(
            pod["metadata"]["creationTimestamp"].as_str(),
            now,
        );
        w.write(
            LEVEL_1,
            &format!(
                "{}\t{}\t\t{cr} ({}%)\t{cl} ({}%)\t{mr} ({}%)\t{ml} ({}%)\t{age}\n",
                pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                pod["metadata"]["name"].as_str().unwrap_or_default(),
                percent(cr.milli(), alloc_cpu),
                percent(cl.milli(), alloc_cpu),
                percent(mr.value(), alloc_mem),
                percent(ml.value(), alloc_mem),
            ),
        );
    }
    w.write(
        LEVEL_0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.write(LEVEL_1, "Resource\tRequests\tLimits\n");
    w.write(LEVEL_1, "--------\t--------\t------\n");
    let row = |w: &mut PrefixWriter, name: &str, milli: bool| {
        let (r, l, a) = (
            get(&total_req, name),
            get(&total_lim, name),
            get(&allocatable, name),
        );
        let (rp, lp) = if milli {
            (percent(r.milli(), a.milli()), percent(l.milli(), a.milli()))
        } else {
            (percent(r.value(), a.value()), percent(l.value(), a.value()))
        };
        w.write(LEVEL_1, &format!("{name}\t{r} ({rp}%)\t{l} ({lp}%)\n"));
    };
    row(w, "cpu", true);
    row(w, "memory", false);
    row(w, "ephemeral-storage", false);
    for name in allocatable.keys().filter(|k| is_hugepages(k)) {
        row(w, name, false);
    }
    for name in allocatable
        .keys()
        .filter(|k| !is_standard_container_resource(k) && k.as_str() != "pods")
    {
        w.write(
            LEVEL_1,
            &format!(
                "{name}\t{}\t{}\n",
                get(&total_req, name),
                get(&total_lim, name)
            ),
        );
    }
}

/// The node's Lease in `kube-node-lease`, or the reason it could not be read.
async fn lease(ctx: &Context, name: &str) -> std::result::Result<Value, String> {
    let client = ctx.client().await.map_err(|e| e.to_string())?;
    client
        .get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        ))
        .await
        .map_err(|e| match e {
            crate::errors::Error::Server(s) => s.message,
            other => other.to_string(),
        })
}

/// The non-terminated pods bound to the node, in every namespace.
async fn node_pods(ctx: &Context, name: &str) -> Result<Vec<Value>> {
    let client = ctx.client().await?;
    let selector = format!("spec.nodeName={name},status.phase!=Failed,status.phase!=Succeeded");
    let list = client
        .get(&format!(
            "/api/v1/pods?fieldSelector={}",
            crate::client::encode(&selector)
        ))
        .await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// `describeNode`.
/// Upstream searches a node's events with the node's name as its uid (what the
/// kubelet puts in `involvedObject.uid`).
pub async fn describe(
    ctx: &Context,
    resource: &ApiResource,
    node: &Value,
    events: Option<&Vec<Value>>,
) -> Result<String> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let pods = node_pods(ctx, name).await?;
    let lease = lease(ctx, name).await;
    let events = match events {
        Some(_) => {
            let mut by_name = node.clone();
            by_name["metadata"]["uid"] = Value::String(name.to_string());
            Some(super::events::for_object(ctx, resource, &by_name).await?)
        }
        None => None,
    };
    Ok(render(node, &pods, lease, events.as_ref()))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The describe text of `node` (pure, for tests).
pub fn render(
    node: &Value,
    pods: &[Value],
    lease: std::result::Result<Value, String>,
    events: Option<&Vec<Value>>,
) -> String {
    let meta = &node["metadata"];
    let spec = &node["spec"];
    let status = &node["status"];
    let mut w = PrefixWriter::new();
    w.write(LEVEL_0, &format!("Name:\t{}\n", s(meta, "name")));
    let roles = node_roles(&meta["labels"]);
    if roles.is_empty() {
        w.write(LEVEL_0, "Roles:\t<none>\n");
    } else {
        w.write(LEVEL_0, &format!("Roles:\t{}\n", roles.join(",")));
    }
    labels_multiline(&mut w, "", "Labels", &meta["labels"]);
    annotations_multiline(&mut w, "Annotations", &meta["annotations"]);
    w.write(
        LEVEL_0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(s(meta, "creationTimestamp"))
        ),
    );
    taints_multiline(&mut w, &spec["taints"]);
    w.write(
        LEVEL_0,
        &format!(
            "Unschedulable:\t{}\n",
            spec["unschedulable"].as_bool().unwrap_or(false)
        ),
    );
    match lease {
        Ok(lease) => {
            let ls = &lease["spec"];
            let time = |k: &str| ls[k].as_str().map_or("<unset>".to_string(), rfc1123z);
            w.write(LEVEL_0, "Lease:\n");
            w.write(
                LEVEL_1,
                &format!(
                    "HolderIdentity:\t{}\n",
                    ls["holderIdentity"].as_str().unwrap_or("<unset>")
                ),
            );
            w.write(LEVEL_1, &format!("AcquireTime:\t{}\n", time("acquireTime")));
            w.write(LEVEL_1, &format!("RenewTime:\t{}\n", time("renewTime")));
        }
        Err(e) => w.write(LEVEL_0, &format!("Lease:\tFailed to get lease: {e}\n")),
    }
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.write(
            LEVEL_0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        w.write(
            LEVEL_1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            w.write(
                LEVEL_1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    s(c, "type"),
                    s(c, "status"),
                    rfc1123z(s(c, "lastHeartbeatTime")),
                    rfc1123z(s(c, "lastTransitionTime")),
                    s(c, "reason"),
                    s(c, "message")
                ),
            );
        }
    }
    w.write(LEVEL_0, "Addresses:\n");
    for a in status["addresses"].as_array().into_iter().flatten() {
        w.write(
            LEVEL_1,
            &format!("{}:\t{}\n", s(a, "type"), s(a, "address")),
        );
    }
    let resource_block = |w: &mut PrefixWriter, title: &str, list: &Value| {
        let Some(map) = list.as_object().filter(|m| !m.is_empty()) else {
            return;
        };
        w.write(LEVEL_0, &format!("{title}:\n"));
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for name in names {
            let raw = map[name].as_str().unwrap_or_default();
            let value = ParsedQuantity::parse(raw).map_or(raw.to_string(), |q| q.canonical());
            w.write(LEVEL_1, &format!("{name}:\t{value}\n"));
        }
    };
    resource_block(&mut w, "Capacity", &status["capacity"]);
    resource_block(&mut w, "Allocatable", &status["allocatable"]);
    let info = &status["nodeInfo"];
    w.write(LEVEL_0, "System Info:\n");
    for (title, key) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ] {
        w.write(LEVEL_1, &format!("{title}:\t{}\n", s(info, key)));
    }
    if !s(spec, "podCIDR").is_empty() {
        w.write(LEVEL_0, &format!("PodCIDR:\t{}\n", s(spec, "podCIDR")));
    }
    if let Some(cidrs) = spec["podCIDRs"].as_array().filter(|c| !c.is_empty()) {
        let cidrs: Vec<&str> = cidrs.iter().filter_map(Value::as_str).collect();
        w.write(LEVEL_0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if !s(spec, "providerID").is_empty() {
        w.write(
            LEVEL_0,
            &format!("ProviderID:\t{}\n", s(spec, "providerID")),
        );
    }
    describe_node_resources(pods, node, &mut w);
    super::events::describe(events, &mut w);
    w.aligned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_sum_as_upstream() {
        let q = |s: &str| Qty::parse(s).expect(s);
        assert_eq!(q("250m").add(q("1")).to_string(), "1250m");
        assert_eq!(q("64Mi").add(q("1Gi")).to_string(), "1088Mi");
        assert_eq!(q("1Gi").to_string(), "1Gi");
        assert_eq!(Qty::default().to_string(), "0");
        assert_eq!(q("3500m").milli(), 3500);
        assert_eq!(percent(q("1250m").milli(), q("3500m").milli()), 35);
    }

    #[test]
    fn roles_and_pod_totals() {
        let labels = json!({"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "master",
                            "node-role.kubernetes.io/control-plane": "", "other": "x"});
        assert_eq!(
            node_roles(&labels),
            vec!["control-plane", "master", "worker"]
        );
        let pod = json!({"spec": {
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1"}}}]}});
        let (req, lim) = pod_requests_and_limits(&pod);
        assert_eq!(req["cpu"].to_string(), "2");
        assert_eq!(req["memory"].to_string(), "1088Mi");
        assert_eq!(lim["cpu"].to_string(), "1");
        assert!(!lim.contains_key("memory"));
    }

    #[test]
    fn empty_node_renders_every_section() {
        let node = json!({"metadata": {"name": "n2", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let text = render(
            &node,
            &[],
            Err("leases.coordination.k8s.io \"n2\" not found".into()),
            Some(&vec![]),
        );
        assert!(
            text.starts_with("Name:               n2\nRoles:              <none>\n"),
            "{text}"
        );
        assert!(text.contains("Lease:              Failed to get lease: leases.coordination.k8s.io \"n2\" not found\n"), "{text}");
        assert!(
            text.contains("Non-terminated Pods:          (0 in total)\n"),
            "{text}"
        );
        assert!(
            text.contains("  cpu                0 (0%)    0 (0%)\n"),
            "{text}"
        );
        assert!(text.ends_with("Events:              <none>\n"), "{text}");
    }
}

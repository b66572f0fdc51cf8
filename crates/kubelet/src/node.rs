//! The Node object (upstream `kubelet_node_status.go`): registration with
//! capacity from /proc, status every `node-status-update-frequency`, and the
//! Lease in `kube-node-lease` (upstream `nodelease`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::cri::{Runtime, RuntimeService};

pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
pub const NODE_LEASE_DURATION_SECONDS: i32 = 40;
pub const MAX_PODS: i64 = 110;
/// The version reported in `status.nodeInfo.kubeletVersion`: the same as the
/// apiserver's `/version` `gitVersion` (hard-coded there too; no shared constant yet).
pub const KUBELET_VERSION: &str = "v1.32.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("building node object: {0}")]
    Json(#[from] serde_json::Error),
}

/// Static facts about this node.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub pod_cidr: Option<String>,
    pub root_dir: std::path::PathBuf,
    pub max_pods: i64,
    /// `--port`: published as `status.daemonEndpoints.kubeletEndpoint.Port`, where
    /// the apiserver sends logs/exec/attach/port-forward.
    pub kubelet_port: u16,
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ephemeral_storage_bytes(dir: &Path) -> Option<u64> {
    let probe = if dir.exists() { dir } else { Path::new("/") };
    let stat = rustix::fs::statvfs(probe).ok()?;
    Some(stat.f_blocks * stat.f_frsize)
}

/// `/proc`-derived capacity (allocatable equals capacity: no reservations).
pub fn capacity(info: &NodeInfo) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    c.insert("cpu".into(), cpu_count().to_string());
    c.insert(
        "memory".into(),
        format!("{}Ki", meminfo_kib("MemTotal:").unwrap_or(0)),
    );
    c.insert("pods".into(), info.max_pods.to_string());
    c.insert(
        "ephemeral-storage".into(),
        format!(
            "{}Ki",
            ephemeral_storage_bytes(&info.root_dir).unwrap_or(0) / 1024
        ),
    );
    c.insert("hugepages-2Mi".into(), "0".into());
    c
}

fn os_release_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": type_, "status": if ok { "True" } else { "False" },
        "reason": reason, "message": message,
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    })
}

/// The node's status: conditions, addresses, capacity, nodeInfo.
pub fn node_status(
    info: &NodeInfo,
    runtime_version: &str,
    runtime_ready: Result<(), String>,
    previous: Option<&Node>,
) -> Value {
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (ready, ready_reason, ready_message) = match &runtime_ready {
        Ok(()) => (
            true,
            "KubeletReady",
            "kubelet is posting ready status".to_string(),
        ),
        Err(why) => (false, "KubeletNotReady", why.clone()),
    };
    let mut conditions = vec![
        condition(
            "MemoryPressure",
            false,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            &now,
        ),
        condition(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            &now,
        ),
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            &now,
        ),
        condition("Ready", ready, ready_reason, &ready_message, &now),
    ];
    // Keep lastTransitionTime while the status does not change.
    let old = previous
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in &mut conditions {
        if let Some(o) = old
            .iter()
            .find(|o| Some(o.type_.as_str()) == c["type"].as_str())
        {
            if Some(o.status.as_str()) == c["status"].as_str() {
                if let Some(t) = &o.last_transition_time {
                    c["lastTransitionTime"] = json!(t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                }
            }
        }
    }
    let capacity = capacity(info);
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": info.internal_ip},
            {"type": "Hostname", "address": info.hostname},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": info.kubelet_port}},
        "nodeInfo": {
            "machineID": machine_id(),
            "systemUUID": machine_id(),
            "bootID": boot_id(),
            "kernelVersion": kernel_version(),
            "osImage": os_release_pretty_name(),
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// `containerd://1.6.20` from CRI Version, and whether runtime and network are ready.
pub async fn runtime_facts<R: RuntimeService>(cri: &R) -> (String, Result<(), String>) {
    let version = match cri.version().await {
        Ok(v) => format!(
            "{}://{}",
            v.runtime_name,
            v.runtime_version.trim_start_matches('v')
        ),
        Err(err) => {
            return (
                "unknown://".into(),
                Err(format!("container runtime is down: {err}")),
            )
        }
    };
    let ready = match cri.status().await {
        Ok(status) => {
            let conditions = status.status.map(|s| s.conditions).unwrap_or_default();
            let failing: Vec<String> = conditions
                .iter()
                .filter(|c| !c.status)
                .map(|c| {
                    format!(
                        "{}=false reason:{} message:{}",
                        c.r#type, c.reason, c.message
                    )
                })
                .collect();
            if failing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "container runtime status check may not have completed yet: {}",
                    failing.join(", ")
                ))
            }
        }
        Err(err) => Err(format!("container runtime status check failed: {err}")),
    };
    (version, ready)
}

/// Creates the Node (or adopts the existing one) and writes its status.
pub async fn register<R: Runtime>(
    client: &kube::Client,
    cri: &R,
    info: &NodeInfo,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), info.hostname.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
    ]);
    labels.extend(info.labels.clone());
    let mut spec = json!({});
    if let Some(cidr) = &info.pod_cidr {
        spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    }
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": info.name, "labels": labels, "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": spec,
    }))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => info!(node = %info.name, "node registered"),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Re-registration: keep the object, refresh our labels.
            let patch = json!({"metadata": {"labels": labels}});
            api.patch(&info.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            info!(node = %info.name, "node already registered");
        }
        Err(err) => return Err(err.into()),
    }
    update_status(client, cri, info).await
}

pub async fn update_status<R: Runtime>(
    client: &kube::Client,
    cri: &R,
    info: &NodeInfo,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let previous = api.get_opt(&info.name).await?;
    let (version, ready) = runtime_facts(cri).await;
    let status = node_status(info, &version, ready, previous.as_ref());
    api.patch_status(
        &info.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Creates or renews `kube-node-lease/<node>`.
pub async fn renew_lease(
    client: &kube::Client,
    info: &NodeInfo,
    node_uid: Option<String>,
) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let now = Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    match api.get_opt(&info.name).await? {
        Some(_) => {
            let patch = json!({"spec": {"holderIdentity": info.name, "leaseDurationSeconds": NODE_LEASE_DURATION_SECONDS, "renewTime": now}});
            api.patch(&info.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        None => {
            let mut meta = json!({"name": info.name, "namespace": NODE_LEASE_NAMESPACE});
            if let Some(uid) = node_uid {
                meta["ownerReferences"] =
                    json!([{"apiVersion": "v1", "kind": "Node", "name": info.name, "uid": uid}]);
            }
            let lease: Lease = serde_json::from_value(json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": info.name, "leaseDurationSeconds": NODE_LEASE_DURATION_SECONDS, "renewTime": now},
            }))?;
            api.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// Registers (retrying until it works), then updates status and renews the
/// Lease every `interval` forever.
pub async fn run<R: Runtime>(
    client: kube::Client,
    cri: Arc<R>,
    info: NodeInfo,
    interval: Duration,
) {
    while let Err(err) = register(&client, cri.as_ref(), &info).await {
        warn!("registering node: {err}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let uid = nodes
            .get_opt(&info.name)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.metadata.uid);
        if let Err(err) = renew_lease(&client, &info, uid).await {
            warn!("renewing node lease: {err}");
        }
        if let Err(err) = update_status(&client, cri.as_ref(), &info).await {
            warn!("updating node status: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            internal_ip: "192.168.0.9".into(),
            hostname: "n1".into(),
            labels: BTreeMap::new(),
            pod_cidr: None,
            root_dir: "/".into(),
            max_pods: MAX_PODS,
            kubelet_port: 10251,
        }
    }

    #[test]
    fn status_has_capacity_addresses_and_runtime() {
        let s = node_status(&info(), "containerd://1.6.20", Ok(()), None);
        assert_eq!(s["capacity"]["pods"], "110");
        assert!(s["capacity"]["memory"]
            .as_str()
            .is_some_and(|m| m.ends_with("Ki") && m != "0Ki"));
        assert_eq!(s["capacity"], s["allocatable"]);
        assert_eq!(
            s["addresses"][0],
            json!({"type": "InternalIP", "address": "192.168.0.9"})
        );
        assert_eq!(
            s["nodeInfo"]["containerRuntimeVersion"],
            "containerd://1.6.20"
        );
        assert_eq!(s["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10251);
        let ready = s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .expect("Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("KubeletReady"))
        );
    }

    #[test]
    fn runtime_not_ready_makes_the_node_not_ready() {
        let s = node_status(
            &info(),
            "containerd://1.6.20",
            Err("NetworkReady=false".into()),
            None,
        );
        let ready = s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .expect("Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("KubeletNotReady"))
        );
        assert_eq!(ready["message"], "NetworkReady=false");
    }
}

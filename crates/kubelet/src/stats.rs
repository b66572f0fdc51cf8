//! `/stats/summary` (upstream `stats/v1alpha1` `Summary`): node CPU and memory
//! from `/proc`, pod and container CPU/memory from CRI `ListContainerStats`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::cri::{api, labels};

/// The previous cumulative CPU reading per key (container id, or the node), to
/// derive `usageNanoCores` when the runtime does not report it.
#[derive(Default)]
pub struct CpuSamples(Mutex<HashMap<String, (i64, u64)>>);

impl CpuSamples {
    /// Nanocores used between the previous sample of `key` and this one.
    pub fn rate(&self, key: &str, timestamp_ns: i64, usage_core_ns: u64) -> Option<u64> {
        let previous = self
            .0
            .lock()
            .insert(key.to_string(), (timestamp_ns, usage_core_ns));
        let (t0, u0) = previous?;
        let dt = u64::try_from(timestamp_ns - t0).ok().filter(|d| *d > 0)?;
        let du = usage_core_ns.checked_sub(u0)?;
        Some((u128::from(du) * 1_000_000_000 / u128::from(dt)) as u64)
    }

    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.0.lock().retain(|k, _| keep(k));
    }
}

fn rfc3339(ns: i64) -> String {
    Timestamp::from_nanosecond(i128::from(ns))
        .unwrap_or_else(|_| Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn value(v: &Option<api::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

/// `cpu` and `memory` of one container, with nanocores filled in from `samples`.
fn container_usage(
    stats: &api::ContainerStats,
    samples: &CpuSamples,
) -> (Value, Value, u64, u64, u64) {
    let id = stats
        .attributes
        .as_ref()
        .map(|a| a.id.as_str())
        .unwrap_or("");
    let (mut cpu, mut core_ns, mut nano_cores) = (json!({}), 0, 0);
    if let Some(c) = &stats.cpu {
        core_ns = value(&c.usage_core_nano_seconds).unwrap_or(0);
        nano_cores = value(&c.usage_nano_cores)
            .filter(|n| *n > 0)
            .or_else(|| samples.rate(id, c.timestamp, core_ns))
            .unwrap_or(0);
        cpu = json!({"time": rfc3339(c.timestamp), "usageNanoCores": nano_cores, "usageCoreNanoSeconds": core_ns});
    }
    let (mut memory, mut working_set) = (json!({}), 0);
    if let Some(m) = &stats.memory {
        working_set = value(&m.working_set_bytes).unwrap_or(0);
        memory = json!({
            "time": rfc3339(m.timestamp),
            "workingSetBytes": working_set,
            "usageBytes": value(&m.usage_bytes).unwrap_or(0),
            "rssBytes": value(&m.rss_bytes).unwrap_or(0),
            "pageFaults": value(&m.page_faults).unwrap_or(0),
            "majorPageFaults": value(&m.major_page_faults).unwrap_or(0),
        });
        if let Some(available) = value(&m.available_bytes) {
            memory["availableBytes"] = json!(available);
        }
    }
    (cpu, memory, core_ns, nano_cores, working_set)
}

/// Pods' entries of the summary: one per pod with container stats, summed.
pub fn pod_stats(stats: &[api::ContainerStats], pods: &[&Pod], samples: &CpuSamples) -> Vec<Value> {
    let mut by_pod: BTreeMap<String, Vec<&api::ContainerStats>> = BTreeMap::new();
    for s in stats {
        let uid = s
            .attributes
            .as_ref()
            .and_then(|a| a.labels.get(labels::POD_UID))
            .cloned()
            .unwrap_or_default();
        by_pod.entry(uid).or_default().push(s);
    }
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut out = Vec::new();
    for (uid, containers) in by_pod {
        let pod = pods
            .iter()
            .find(|p| p.metadata.uid.as_deref() == Some(uid.as_str()));
        let attrs = |s: &api::ContainerStats, key: &str| {
            s.attributes
                .as_ref()
                .and_then(|a| a.labels.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let (name, namespace) = match pod {
            Some(p) => (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.namespace.clone().unwrap_or_default(),
            ),
            None => (
                attrs(containers[0], labels::POD_NAME),
                attrs(containers[0], labels::POD_NAMESPACE),
            ),
        };
        let start = pod
            .and_then(|p| p.status.as_ref()?.start_time.as_ref())
            .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        let (mut core_ns, mut nano_cores, mut working_set) = (0u64, 0u64, 0u64);
        let mut entries = Vec::new();
        for s in containers {
            let (cpu, memory, c_ns, c_nano, c_ws) = container_usage(s, samples);
            core_ns += c_ns;
            nano_cores += c_nano;
            working_set += c_ws;
            let name = s
                .attributes
                .as_ref()
                .and_then(|a| a.metadata.as_ref())
                .map(|m| m.name.clone())
                .unwrap_or_default();
            entries.push(json!({"name": name, "startTime": start.clone().unwrap_or_else(|| now.clone()), "cpu": cpu, "memory": memory}));
        }
        out.push(json!({
            "podRef": {"name": name, "namespace": namespace, "uid": uid},
            "startTime": start.unwrap_or_else(|| now.clone()),
            "containers": entries,
            "cpu": {"time": now, "usageNanoCores": nano_cores, "usageCoreNanoSeconds": core_ns},
            "memory": {"time": now, "workingSetBytes": working_set, "usageBytes": working_set},
        }));
    }
    out
}

/// Total and idle CPU time of the node from `/proc/stat`, in nanoseconds.
fn node_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| *v)
        .sum();
    // USER_HZ is 100 on Linux.
    Some(busy * 10_000_000)
}

fn meminfo() -> HashMap<String, u64> {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((k.to_string(), kib * 1024))
        })
        .collect()
}

/// The node's entry of the summary.
pub fn node_stats(node_name: &str, samples: &CpuSamples) -> Value {
    let now = Timestamp::now();
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let core_ns = node_cpu_ns().unwrap_or(0);
    let nano_cores = samples
        .rate("/", now.as_nanosecond() as i64, core_ns)
        .unwrap_or(0);
    let mem = meminfo();
    let get = |k: &str| mem.get(k).copied().unwrap_or(0);
    let usage = get("MemTotal").saturating_sub(get("MemFree"));
    let working_set = usage.saturating_sub(get("Inactive(file)"));
    let boot = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .and_then(|up| {
            now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs_f64(up))
                .ok()
        })
        .unwrap_or(now);
    json!({
        "nodeName": node_name,
        "startTime": boot.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "cpu": {"time": stamp, "usageNanoCores": nano_cores, "usageCoreNanoSeconds": core_ns},
        "memory": {
            "time": stamp,
            "availableBytes": get("MemAvailable"),
            "usageBytes": usage,
            "workingSetBytes": working_set,
            "rssBytes": get("AnonPages"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(pod_uid: &str, name: &str, ts: i64, core_ns: u64, ws: u64) -> api::ContainerStats {
        api::ContainerStats {
            attributes: Some(api::ContainerAttributes {
                id: format!("{pod_uid}-{name}"),
                metadata: Some(api::ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                labels: HashMap::from([
                    (labels::POD_UID.to_string(), pod_uid.to_string()),
                    (labels::POD_NAME.to_string(), "p".to_string()),
                ]),
                ..Default::default()
            }),
            cpu: Some(api::CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: Some(api::UInt64Value { value: core_ns }),
                usage_nano_cores: None,
            }),
            memory: Some(api::MemoryUsage {
                timestamp: ts,
                working_set_bytes: Some(api::UInt64Value { value: ws }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pods_sum_their_containers_and_rates_come_from_samples() {
        let samples = CpuSamples::default();
        let first = pod_stats(
            &[
                stats("u1", "a", 1_000_000_000, 1_000, 10),
                stats("u1", "b", 1_000_000_000, 5_000, 20),
            ],
            &[],
            &samples,
        );
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["podRef"]["uid"], "u1");
        assert_eq!(first[0]["memory"]["workingSetBytes"], 30);
        assert_eq!(first[0]["cpu"]["usageCoreNanoSeconds"], 6_000);
        // Half a core for a over one second, none for b.
        let second = pod_stats(
            &[
                stats("u1", "a", 2_000_000_000, 500_001_000, 10),
                stats("u1", "b", 2_000_000_000, 5_000, 20),
            ],
            &[],
            &samples,
        );
        assert_eq!(second[0]["cpu"]["usageNanoCores"], 500_000_000);
        assert_eq!(
            second[0]["containers"][0]["cpu"]["usageNanoCores"],
            500_000_000
        );
    }

    #[test]
    fn node_has_cpu_and_memory() {
        let node = node_stats("n1", &CpuSamples::default());
        assert_eq!(node["nodeName"], "n1");
        assert!(node["cpu"]["usageCoreNanoSeconds"]
            .as_u64()
            .is_some_and(|n| n > 0));
        assert!(node["memory"]["workingSetBytes"]
            .as_u64()
            .is_some_and(|n| n > 0));
    }
}

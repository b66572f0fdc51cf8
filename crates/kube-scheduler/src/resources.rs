//! Resource arithmetic as upstream's `framework.Resource` and `resource.PodRequests`.

use std::collections::BTreeMap;

use api_types::quantity::ParsedQuantity;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests assumed for a container without a cpu request when *scoring*
/// (upstream `schedutil.DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Requests assumed for a container without a memory request when scoring (200 MB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages, attachable volumes.
    pub scalar: BTreeMap<String, i64>,
}

/// Upstream `IsScalarResourceName`: extended resources (a domain other than
/// `kubernetes.io`), `hugepages-*`, `attachable-volumes-*`.
pub fn is_scalar_resource_name(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io"
                || domain.ends_with(".kubernetes.io")
                || name.starts_with("requests."))
        }
        None => false,
    }
}

/// A quantity's value (rounded up, as upstream's `Value`), 0 when unparseable.
pub fn quantity_value(q: &Quantity) -> i64 {
    ParsedQuantity::parse(&q.0).map(|p| p.value()).unwrap_or(0)
}

/// A quantity in thousandths (cpu millicores), 0 when unparseable.
pub fn quantity_milli(q: &Quantity) -> i64 {
    ParsedQuantity::parse(&q.0)
        .map(|p| p.milli_value())
        .unwrap_or(0)
}

impl Resource {
    /// From a `ResourceList` (node allocatable, container requests).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resource::default();
        for (name, q) in list {
            match name.as_str() {
                "cpu" => r.milli_cpu = quantity_milli(q),
                "memory" => r.memory = quantity_value(q),
                "ephemeral-storage" => r.ephemeral_storage = quantity_value(q),
                "pods" => r.allowed_pod_number = quantity_value(q),
                other if is_scalar_resource_name(other) => {
                    r.scalar.insert(other.to_string(), quantity_value(q));
                }
                _ => {}
            }
        }
        r
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Each dimension becomes the larger of the two.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero_request(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// The amount of one named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }
}

fn container_requests(
    requests: Option<&BTreeMap<String, Quantity>>,
    non_missing_defaults: bool,
) -> Resource {
    let mut r = requests.map(Resource::from_list).unwrap_or_default();
    if non_missing_defaults {
        let has = |k: &str| requests.is_some_and(|m| m.contains_key(k));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// Upstream `resource.PodRequests`: containers summed, restartable (sidecar) init
/// containers added, the max with each init container (plus the sidecars started
/// before it), plus the pod overhead. With `non_missing_defaults`, containers that lack
/// a cpu/memory request count the scoring defaults (upstream `NonMissingContainerRequests`).
pub fn pod_requests(spec: &PodSpec, non_missing_defaults: bool) -> Resource {
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            non_missing_defaults,
        ));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let mut creq = container_requests(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            non_missing_defaults,
        );
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&creq);
            sidecars.add(&creq);
            creq = sidecars.clone();
        } else {
            creq.add(&sidecars);
        }
        init_max.set_max(&creq);
    }
    reqs.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(overhead));
    }
    reqs.allowed_pod_number = 0;
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn sums_containers_and_maxes_init_containers() {
        let s = spec(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}}
            ],
            "containers": [
                {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
                {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G"}}}
            ],
            "overhead": {"cpu": "100m"}
        }));
        let r = pod_requests(&s, false);
        assert_eq!(r.milli_cpu, 3100);
        assert_eq!(r.memory, 3_000_000_000);
    }

    #[test]
    fn sidecars_add_to_the_sum() {
        let s = spec(json!({
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "init", "resources": {"requests": {"cpu": "3"}}}
            ],
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]
        }));
        // containers 1 + sidecar 1 = 2; init 3 + sidecar 1 = 4 → max 4.
        assert_eq!(pod_requests(&s, false).milli_cpu, 4000);
    }

    #[test]
    fn scoring_defaults_for_missing_requests() {
        let s = spec(
            json!({"containers": [{"name": "c"}, {"name": "d", "resources": {"requests": {"cpu": "250m"}}}]}),
        );
        let r = pod_requests(&s, true);
        assert_eq!(r.milli_cpu, 350);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&s, false).memory == 0);
    }

    #[test]
    fn scalar_names() {
        assert!(is_scalar_resource_name("example.com/gpu"));
        assert!(is_scalar_resource_name("hugepages-2Mi"));
        assert!(!is_scalar_resource_name("cpu"));
        assert!(!is_scalar_resource_name("kubernetes.io/foo"));
    }
}

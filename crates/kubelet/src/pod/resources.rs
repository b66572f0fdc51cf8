//! Quantities and container resources → CRI Linux resources, as upstream's
//! `kuberuntime_container_linux.go` computes them (cgroup v1 semantics).

use k8s_openapi::api::core::v1::Container;

use crate::cri::api;

const MIN_SHARES: i64 = 2;
const SHARES_PER_CPU: i64 = 1024;
const QUOTA_PERIOD_US: i64 = 100_000;
const MIN_QUOTA_US: i64 = 1000;

/// A quantity as a number of its base unit (`"500m"` → 0.5, `"64Mi"` → 67108864).
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    Some(number * factor)
}

fn quantity(container: &Container, limits: bool, name: &str) -> Option<f64> {
    let resources = container.resources.as_ref()?;
    let map = if limits {
        resources.limits.as_ref()
    } else {
        resources.requests.as_ref()
    };
    parse_quantity(&map?.get(name)?.0)
}

/// CPU shares from the request (limit when no request), quota from the limit,
/// memory limit in bytes.
pub fn linux_resources(container: &Container) -> api::LinuxContainerResources {
    let cpu_request =
        quantity(container, false, "cpu").or_else(|| quantity(container, true, "cpu"));
    let cpu_limit = quantity(container, true, "cpu");
    let memory_limit = quantity(container, true, "memory");
    let cpu_shares = match cpu_request {
        Some(cpu) if cpu > 0.0 => ((cpu * SHARES_PER_CPU as f64) as i64).max(MIN_SHARES),
        _ => MIN_SHARES,
    };
    let (cpu_quota, cpu_period) = match cpu_limit {
        Some(cpu) if cpu > 0.0 => (
            ((cpu * QUOTA_PERIOD_US as f64) as i64).max(MIN_QUOTA_US),
            QUOTA_PERIOD_US,
        ),
        _ => (0, QUOTA_PERIOD_US),
    };
    api::LinuxContainerResources {
        cpu_shares,
        cpu_quota,
        cpu_period,
        memory_limit_in_bytes: memory_limit.map_or(0, |m| m as i64),
        ..Default::default()
    }
}

/// The downward-API value of `resource` (`limits.cpu`, `requests.memory`, ...)
/// divided by `divisor` and rounded up, as upstream's `ExtractContainerResourceValue`.
pub fn resource_field_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Option<String> {
    let (limits, name) = match resource.split_once('.') {
        Some(("limits", name)) => (true, name),
        Some(("requests", name)) => (false, name),
        _ => return None,
    };
    let divisor = divisor
        .and_then(parse_quantity)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    // Upstream reports the node's allocatable for an unset limit; we report 0.
    let value = quantity(container, limits, name).unwrap_or(0.0);
    Some(((value / divisor).ceil() as i64).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("64Mi"), Some(67108864.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("x"), None);
    }

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |v: &[(&str, &str)]| {
            Some(
                v.iter()
                    .map(|(k, q)| (k.to_string(), Quantity(q.to_string())))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_and_memory_to_cgroup_values() {
        let r = linux_resources(&container(
            &[("cpu", "250m")],
            &[("cpu", "500m"), ("memory", "64Mi")],
        ));
        assert_eq!(
            (
                r.cpu_shares,
                r.cpu_quota,
                r.cpu_period,
                r.memory_limit_in_bytes
            ),
            (256, 50_000, 100_000, 67_108_864)
        );
        let best_effort = linux_resources(&Container::default());
        assert_eq!(
            (
                best_effort.cpu_shares,
                best_effort.cpu_quota,
                best_effort.memory_limit_in_bytes
            ),
            (2, 0, 0)
        );
    }

    #[test]
    fn downward_resource_values() {
        let c = container(&[("memory", "32Mi")], &[("cpu", "1500m")]);
        assert_eq!(
            resource_field_value(&c, "limits.cpu", None).as_deref(),
            Some("2")
        );
        assert_eq!(
            resource_field_value(&c, "limits.cpu", Some("1m")).as_deref(),
            Some("1500")
        );
        assert_eq!(
            resource_field_value(&c, "requests.memory", Some("1Mi")).as_deref(),
            Some("32")
        );
        assert_eq!(resource_field_value(&c, "bogus", None), None);
    }
}

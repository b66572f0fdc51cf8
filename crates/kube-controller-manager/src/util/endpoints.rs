//! What the endpoints and endpoint slice controllers share, as upstream's
//! `pkg/controller/util/endpoint`: which pods back a service, how a service port
//! resolves on a pod, and the last-change trigger time.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{is_ready, phase};
use super::selector::{from_map, labels_of};

/// Annotation with the time of the last pod or service change the object reflects.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Label marking objects of a headless service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The service's selector, when it has one (services without one are left alone).
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// Whether the service selects this pod (same namespace, selector matches).
pub fn selects(svc: &Service, pod: &Pod) -> bool {
    if svc.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    service_selector(svc).is_some_and(|sel| from_map(sel).matches(&labels_of(&pod.metadata.labels)))
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// Upstream `ShouldPodBeInEndpoints`: has an IP, not terminal, and (unless
/// `include_terminating`) not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let p = phase(pod);
    if p == "Succeeded" || p == "Failed" {
        return false;
    }
    if pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the pod counts as ready for the service (publishNotReadyAddresses wins).
pub fn pod_ready_for(svc: &Service, pod: &Pod) -> bool {
    publish_not_ready(svc) || is_ready(pod)
}

/// Upstream `podutil.FindPort`: the port number a service port's targetPort means
/// on this pod; `None` when a named port is not declared by the pod.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The hostname a pod gets in the service's records: its `spec.hostname` when its
/// `spec.subdomain` names the service.
pub fn pod_hostname(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()).then(|| hostname.to_string())
}

/// The last time the pod changed in a way endpoints reflect (its newest condition
/// transition, else its creation).
pub fn pod_trigger_time(pod: &Pod) -> Option<Time> {
    let newest = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .filter_map(|c| c.last_transition_time.as_ref())
                .max_by_key(|t| t.0)
                .cloned()
        });
    newest.or_else(|| pod.metadata.creation_timestamp.clone())
}

/// The trigger time of a sync: the newest change among the service and its pods,
/// formatted as upstream (RFC 3339).
pub fn trigger_time<'a>(svc: &Service, pods: impl Iterator<Item = &'a Pod>) -> Option<String> {
    pods.filter_map(pod_trigger_time)
        .chain(svc.metadata.creation_timestamp.clone())
        .max_by_key(|t| t.0)
        .map(|t| t.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodStatus};

    fn pod_with_port(name: &str, port: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some("10.0.0.1".into()),
                phase: Some("Running".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let sp = ServicePort {
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            ..Default::default()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &sp), Some(8080));
        assert_eq!(find_port(&pod_with_port("web", 8080), &sp), None);
        let udp = ServicePort {
            protocol: Some("UDP".into()),
            ..sp.clone()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &udp), None);
        let num = ServicePort {
            port: 80,
            target_port: Some(IntOrString::Int(9090)),
            ..Default::default()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &num), Some(9090));
        let unset = ServicePort {
            port: 81,
            ..Default::default()
        };
        assert_eq!(find_port(&pod_with_port("http", 8080), &unset), Some(81));
    }

    #[test]
    fn terminal_and_ipless_pods_are_skipped() {
        let mut p = pod_with_port("x", 1);
        assert!(should_pod_be_in_endpoints(&p, false));
        p.status.as_mut().expect("status").phase = Some("Succeeded".into());
        assert!(!should_pod_be_in_endpoints(&p, true));
        let mut q = pod_with_port("x", 1);
        q.status.as_mut().expect("status").pod_ip = None;
        assert!(!should_pod_be_in_endpoints(&q, true));
        let mut r = pod_with_port("x", 1);
        r.metadata.deletion_timestamp = Some(super::super::time::now());
        assert!(!should_pod_be_in_endpoints(&r, false));
        assert!(should_pod_be_in_endpoints(&r, true));
    }
}

//! The pure part of an EndpointSlice sync (upstream `reconciler.go`): the desired
//! endpoints of a service grouped by their resolved ports, and the plan that turns
//! the existing slices into them with as few writes as possible: endpoints are
//! updated in the slice that already holds them, new ones fill slices with room,
//! and only what does not fit goes into new slices.

use std::collections::{BTreeMap, VecDeque};

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::util::endpoints::{
    find_port, is_headless, pod_hostname, pod_ip, publish_not_ready, service_ports,
    should_pod_be_in_endpoints, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME,
};
use crate::util::owner::new_controller_ref;
use crate::util::pod::is_ready;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A port list in comparable form: (name, port, protocol, appProtocol), sorted.
pub type PortsKey = Vec<(String, i32, String, String)>;

pub fn ports_key(ports: Option<&[EndpointPort]>) -> PortsKey {
    let mut key: PortsKey = ports
        .unwrap_or(&[])
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    key.sort();
    key
}

/// Desired endpoints for one port mapping, keyed by address.
pub struct Group {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// Upstream `podToEndpoint` for every selected pod with an IPv4 address,
/// grouped by the ports the pod resolves (`getEndpointPorts`).
pub fn desired_endpoints<'a>(
    svc: &Service,
    pods: impl Iterator<Item = &'a Pod>,
    zone_of: impl Fn(&str) -> Option<String>,
) -> BTreeMap<PortsKey, Group> {
    let mut groups: BTreeMap<PortsKey, Group> = BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ip(pod).filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()) else {
            continue;
        };
        let ports: Vec<EndpointPort> = service_ports(svc)
            .iter()
            .filter_map(|sp| {
                let number = find_port(pod, sp)?;
                Some(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(number),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        let serving = publish_not_ready(svc) || is_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = publish_not_ready(svc) || (serving && !terminating);
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let endpoint = Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: pod_hostname(svc, pod),
            zone: node_name.as_deref().and_then(&zone_of),
            node_name,
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let key = ports_key(Some(&ports));
        groups
            .entry(key)
            .or_insert_with(|| Group {
                ports,
                endpoints: BTreeMap::new(),
            })
            .endpoints
            .insert(ip.to_string(), endpoint);
    }
    groups
}

/// Upstream `setEndpointSliceLabels`: the service's labels, minus the reserved
/// ones, plus the service name, manager and headless marker.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.remove(SERVICE_NAME_LABEL);
    labels.remove(MANAGED_BY_LABEL);
    labels.remove(HEADLESS_LABEL);
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

fn with_trigger(mut meta: ObjectMeta, trigger: Option<&str>) -> ObjectMeta {
    let mut annotations = meta.annotations.take().unwrap_or_default();
    match trigger {
        Some(t) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t.to_string()),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    meta
}

fn new_slice(
    svc: &Service,
    ports: Option<Vec<EndpointPort>>,
    endpoints: Vec<Endpoint>,
    trigger: Option<&str>,
) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    let meta = ObjectMeta {
        generate_name: Some(format!("{name}-")),
        namespace: svc.metadata.namespace.clone(),
        labels: Some(slice_labels(svc)),
        owner_references: Some(vec![new_controller_ref(svc)]),
        ..Default::default()
    };
    EndpointSlice {
        metadata: with_trigger(meta, trigger),
        address_type: "IPv4".into(),
        endpoints,
        ports,
    }
}

fn address(ep: &Endpoint) -> &str {
    ep.addresses.first().map(String::as_str).unwrap_or("")
}

/// Plans the writes turning `existing` (the service's managed slices) into `desired`.
pub fn plan(
    svc: &Service,
    desired: BTreeMap<PortsKey, Group>,
    existing: &[EndpointSlice],
    max_per_slice: usize,
    trigger: Option<&str>,
) -> Plan {
    let max = max_per_slice.max(1);
    let labels = slice_labels(svc);
    let mut out = Plan::default();
    let mut existing: Vec<&EndpointSlice> = existing.iter().collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    if desired.values().all(|g| g.endpoints.is_empty()) {
        // Upstream keeps one empty placeholder slice per service.
        let placeholder = existing.iter().position(|s| {
            s.endpoints.is_empty()
                && s.ports.as_ref().is_none_or(Vec::is_empty)
                && s.address_type == "IPv4"
        });
        match placeholder {
            Some(i) => {
                let s = existing.remove(i);
                if s.metadata.labels.as_ref() != Some(&labels) {
                    let mut s = s.clone();
                    s.metadata.labels = Some(labels.clone());
                    s.metadata = with_trigger(s.metadata, trigger);
                    out.update.push(s);
                }
            }
            None => out.create.push(new_slice(svc, None, Vec::new(), trigger)),
        }
        out.delete.extend(existing.into_iter().cloned());
        return out;
    }

    for (key, group) in desired {
        let mut wanted = group.endpoints;
        let mut updated: Vec<EndpointSlice> = Vec::new();
        let mut unchanged: Vec<EndpointSlice> = Vec::new();
        let (mine, rest): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = existing
            .into_iter()
            .partition(|s| s.address_type == "IPv4" && ports_key(s.ports.as_deref()) == key);
        existing = rest;
        for slice in mine {
            let kept: Vec<Endpoint> = slice
                .endpoints
                .iter()
                .filter_map(|ep| wanted.remove(address(ep)))
                .collect();
            if kept.is_empty() {
                out.delete.push(slice.clone());
                continue;
            }
            let changed =
                kept != slice.endpoints || slice.metadata.labels.as_ref() != Some(&labels);
            let mut s = slice.clone();
            s.endpoints = kept;
            s.metadata.labels = Some(labels.clone());
            if changed {
                updated.push(s);
            } else {
                unchanged.push(s);
            }
        }
        let mut remaining: VecDeque<Endpoint> = wanted.into_values().collect();
        for s in &mut updated {
            while s.endpoints.len() < max {
                let Some(ep) = remaining.pop_front() else {
                    break;
                };
                s.endpoints.push(ep);
            }
        }
        for mut s in unchanged {
            if !remaining.is_empty() && s.endpoints.len() < max {
                while s.endpoints.len() < max {
                    let Some(ep) = remaining.pop_front() else {
                        break;
                    };
                    s.endpoints.push(ep);
                }
                updated.push(s);
            }
        }
        while !remaining.is_empty() {
            let n = remaining.len().min(max);
            let eps: Vec<Endpoint> = remaining.drain(..n).collect();
            out.create
                .push(new_slice(svc, Some(group.ports.clone()), eps, trigger));
        }
        for mut s in updated {
            s.metadata = with_trigger(s.metadata, trigger);
            out.update.push(s);
        }
    }
    // Slices for port mappings no pod has any more.
    out.delete.extend(existing.into_iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec};

    fn svc() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(i: u8, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("p{i}")),
                namespace: Some("ns".into()),
                uid: Some(format!("u{i}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(format!("10.0.0.{i}")),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn apply(existing: &mut Vec<EndpointSlice>, plan: Plan, next: &mut u32) {
        for d in &plan.delete {
            existing.retain(|s| s.metadata.name != d.metadata.name);
        }
        for u in plan.update {
            let i = existing
                .iter()
                .position(|s| s.metadata.name == u.metadata.name)
                .expect("exists");
            existing[i] = u;
        }
        for mut c in plan.create {
            *next += 1;
            c.metadata.name = Some(format!("web-{next}"));
            existing.push(c);
        }
    }

    #[test]
    fn splits_at_max_and_updates_in_place() {
        let s = svc();
        let pods: Vec<Pod> = (1..=5).map(|i| pod(i, true)).collect();
        let p = plan(
            &s,
            desired_endpoints(&s, pods.iter(), |_| Some("z1".into())),
            &[],
            2,
            None,
        );
        assert_eq!(p.create.len(), 3);
        assert_eq!(p.create[0].endpoints[0].zone.as_deref(), Some("z1"));
        let mut existing = Vec::new();
        let mut n = 0;
        apply(&mut existing, p, &mut n);

        // Nothing changed: no writes.
        let p = plan(
            &s,
            desired_endpoints(&s, pods.iter(), |_| Some("z1".into())),
            &existing,
            2,
            None,
        );
        assert!(
            p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(),
            "{p:?}"
        );

        // One pod becomes not ready: exactly its slice is updated.
        let mut pods2 = pods.clone();
        pods2[0] = pod(1, false);
        let p = plan(
            &s,
            desired_endpoints(&s, pods2.iter(), |_| Some("z1".into())),
            &existing,
            2,
            None,
        );
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        let ep = p.update[0]
            .endpoints
            .iter()
            .find(|e| e.addresses[0] == "10.0.0.1")
            .expect("ep");
        assert_eq!(ep.conditions.as_ref().and_then(|c| c.ready), Some(false));

        // A pod goes and a new one comes: the new one fills the freed room.
        let mut pods3: Vec<Pod> = pods[1..].to_vec();
        pods3.push(pod(9, true));
        let p = plan(
            &s,
            desired_endpoints(&s, pods3.iter(), |_| None),
            &existing,
            2,
            None,
        );
        assert!(p.create.is_empty(), "{p:?}");
        apply(&mut existing, p, &mut n);
        let total: usize = existing.iter().map(|s| s.endpoints.len()).sum();
        assert_eq!(total, 5);
        assert!(existing.iter().all(|s| s.endpoints.len() <= 2));
    }

    #[test]
    fn no_pods_means_one_placeholder_and_terminating_pods_are_not_ready() {
        let s = svc();
        let p = plan(
            &s,
            desired_endpoints(&s, std::iter::empty(), |_| None),
            &[],
            100,
            None,
        );
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty() && p.create[0].ports.is_none());
        let labels = p.create[0].metadata.labels.clone().expect("labels");
        assert_eq!(
            labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );

        let mut t = pod(1, true);
        t.metadata.deletion_timestamp = Some(crate::util::time::now());
        let d = desired_endpoints(&s, [t].iter(), |_| None);
        let ep = d
            .values()
            .next()
            .and_then(|g| g.endpoints.values().next())
            .expect("endpoint");
        let c = ep.conditions.clone().expect("conditions");
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
    }
}

//! Endpoints controller (upstream `pkg/controller/endpoint`): for every Service
//! with a selector, an Endpoints object of the same name listing the selected
//! pods' addresses (ready and not ready) with the service ports resolved per pod.
//! Services without a selector are left alone; Endpoints of a deleted Service go.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::context::ControllerContext;
use crate::util::endpoints::{
    find_port, is_headless, pod_hostname, pod_ip, pod_ready_for, selects, service_ports,
    service_selector, should_pod_be_in_endpoints, trigger_time, HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
};
use crate::util::workqueue::{informer, run_workers, WorkQueue};
use crate::util::{is_not_found, is_status, key_of, ApiContext, Result};

/// Endpoints the leader-election code wrote carry this; never ours to delete.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Upstream's `maxCapacity`: addresses beyond this are dropped and the object
/// annotated as truncated.
pub const MAX_CAPACITY: usize = 1000;
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

struct State {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

/// Services whose Endpoints list the pod now (so a pod that stops matching is removed).
fn services_listing_pod(endpoints: &Store<Endpoints>, pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref();
    let name = pod.metadata.name.as_deref();
    endpoints
        .state()
        .iter()
        .filter(|ep| ep.metadata.namespace.as_deref() == ns)
        .filter(|ep| {
            ep.subsets.iter().flatten().any(|s| {
                s.addresses
                    .iter()
                    .chain(s.not_ready_addresses.iter())
                    .flatten()
                    .any(|a| {
                        a.target_ref.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("Pod") && r.name.as_deref() == name
                        })
                    })
            })
        })
        .map(|ep| key_of(&ep.metadata))
        .collect()
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let queue = WorkQueue::new();
    let q = queue.clone();
    let services = informer(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        move |svc: &Service, _| {
            q.add(&key_of(&svc.metadata));
        },
    );
    let q = queue.clone();
    let endpoints = informer(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
        move |ep: &Endpoints, deleted| {
            // Someone deleted our object: write it again.
            if deleted {
                q.add(&key_of(&ep.metadata));
            }
        },
    );
    let (q, svcs, eps) = (queue.clone(), services.clone(), endpoints.clone());
    let pods = informer(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        move |pod: &Pod, _| {
            for svc in svcs.state().iter().filter(|s| selects(s, pod)) {
                q.add(&key_of(&svc.metadata));
            }
            for key in services_listing_pod(&eps, pod) {
                q.add(&key);
            }
        },
    );
    services.wait_until_ready().await?;
    endpoints.wait_until_ready().await?;
    pods.wait_until_ready().await?;
    // Leftover Endpoints of services deleted while we were down.
    for ep in endpoints.state() {
        queue.add(&key_of(&ep.metadata));
    }
    let state = Arc::new(State {
        client,
        services,
        pods,
        endpoints,
    });
    tracing::info!("starting endpoints controller");
    run_workers(
        queue,
        ctx.options.concurrent_endpoint_syncs,
        "endpoints-controller",
        move |key| {
            let state = state.clone();
            async move { sync(&state, &key).await }
        },
    )
    .await;
    Ok(())
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

async fn sync(state: &State, key: &str) -> Result<Option<Duration>> {
    let (ns, name) = split_key(key);
    let api: Api<Endpoints> = Api::namespaced(state.client.clone(), ns);
    let current = state.endpoints.get(&ObjectRef::new(name).within(ns));
    let Some(svc) = state.services.get(&ObjectRef::new(name).within(ns)) else {
        let ours = current.as_ref().is_some_and(|ep| {
            !ep.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
        });
        if ours {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(endpoints = %key, "deleted endpoints of deleted service"),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err).ctx(|| format!("deleting endpoints {key}")),
            }
        }
        return Ok(None);
    };
    if service_selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let selected: Vec<Arc<Pod>> = state
        .pods
        .state()
        .into_iter()
        .filter(|p| selects(&svc, p))
        .collect();
    let mut subsets = compute_subsets(&svc, selected.iter().map(AsRef::as_ref));
    let truncated = truncate(&mut subsets, MAX_CAPACITY);

    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_headless(&svc) {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    if let Some(cur) = &current {
        let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
        let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
        let annotated = cur
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OVER_CAPACITY))
            .is_some();
        if same_subsets && same_labels && annotated == truncated {
            return Ok(None);
        }
    }
    let mut annotations = current
        .as_ref()
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    match trigger_time(&svc, selected.iter().map(AsRef::as_ref)) {
        Some(t) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.to_string(), t),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    if truncated {
        annotations.insert(OVER_CAPACITY.to_string(), "truncated".to_string());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let desired = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            resource_version: current
                .as_ref()
                .and_then(|c| c.metadata.resource_version.clone()),
            ..current
                .as_ref()
                .map(|c| c.metadata.clone())
                .unwrap_or_default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    let result = if current.is_some() {
        api.replace(name, &PostParams::default(), &desired)
            .await
            .map(|_| ())
    } else {
        api.create(&PostParams::default(), &desired)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => {
            tracing::debug!(endpoints = %key, created = current.is_none(), "wrote endpoints");
            Ok(None)
        }
        // The namespace is being deleted: nothing to write.
        Err(err) if current.is_none() && is_status(&err, 403) => Ok(None),
        Err(err) => Err(err).ctx(|| format!("writing endpoints {key}")),
    }
}

/// Keeps at most `max` addresses, ready ones first (upstream `truncateEndpoints`
/// also prefers ready addresses); true when something was dropped.
pub fn truncate(subsets: &mut [EndpointSubset], max: usize) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total: usize = subsets
        .iter()
        .map(|s| count(&s.addresses) + count(&s.not_ready_addresses))
        .sum();
    if total <= max {
        return false;
    }
    let mut room = max;
    for s in subsets.iter_mut() {
        if let Some(a) = s.addresses.as_mut() {
            a.truncate(room);
            room -= a.len();
        }
    }
    for s in subsets.iter_mut() {
        if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(room);
            room -= a.len();
        }
    }
    for s in subsets.iter_mut() {
        if s.addresses.as_ref().is_some_and(Vec::is_empty) {
            s.addresses = None;
        }
        if s.not_ready_addresses.as_ref().is_some_and(Vec::is_empty) {
            s.not_ready_addresses = None;
        }
    }
    true
}

/// An address's identity while packing subsets.
type AddrKey = (String, String);
/// A resolved port's identity: (name, port, protocol, appProtocol).
type PortKey = (String, i32, String, String);
/// Per resolved port: the ready and not-ready addresses serving it.
type PortAddrs = (BTreeSet<AddrKey>, BTreeSet<AddrKey>, EndpointPort);

/// Upstream's subsets: one address per selected pod (ready or not ready), the
/// service ports resolved per pod, packed as `RepackSubsets` does: ports sharing
/// the same address sets share a subset.
pub fn compute_subsets<'a>(
    svc: &Service,
    pods: impl Iterator<Item = &'a Pod>,
) -> Vec<EndpointSubset> {
    let ports = service_ports(svc);
    let mut addrs: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    // port -> (ready keys, not-ready keys)
    let mut per_port: BTreeMap<PortKey, PortAddrs> = BTreeMap::new();
    let mut portless: (BTreeSet<AddrKey>, BTreeSet<AddrKey>) = Default::default();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, false) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let akey = (ip.to_string(), uid.clone());
        let address = EndpointAddress {
            ip: ip.to_string(),
            hostname: pod_hostname(svc, pod),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: Some(uid),
                ..Default::default()
            }),
        };
        let ready = pod_ready_for(svc, pod);
        let mut used = false;
        if ports.is_empty() {
            if is_headless(svc) {
                if ready {
                    &mut portless.0
                } else {
                    &mut portless.1
                }
                .insert(akey.clone());
                used = true;
            }
        } else {
            for sp in ports {
                let Some(number) = find_port(pod, sp) else {
                    tracing::debug!(pod = %key_of(&pod.metadata), port = ?sp.name, "failed to find port for service");
                    continue;
                };
                let ep = EndpointPort {
                    name: sp.name.clone(),
                    port: number,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                };
                let pkey = (
                    ep.name.clone().unwrap_or_default(),
                    number,
                    ep.protocol.clone().unwrap_or_default(),
                    ep.app_protocol.clone().unwrap_or_default(),
                );
                let entry = per_port
                    .entry(pkey)
                    .or_insert_with(|| (BTreeSet::new(), BTreeSet::new(), ep));
                if ready { &mut entry.0 } else { &mut entry.1 }.insert(akey.clone());
                used = true;
            }
        }
        if used {
            addrs.insert(akey, address);
        }
    }
    let to_addrs = |keys: &BTreeSet<AddrKey>| -> Option<Vec<EndpointAddress>> {
        let v: Vec<EndpointAddress> = keys.iter().filter_map(|k| addrs.get(k).cloned()).collect();
        (!v.is_empty()).then_some(v)
    };
    let mut subsets = Vec::new();
    if !portless.0.is_empty() || !portless.1.is_empty() {
        subsets.push(EndpointSubset {
            addresses: to_addrs(&portless.0),
            not_ready_addresses: to_addrs(&portless.1),
            ports: None,
        });
    }
    let mut grouped: BTreeMap<(Vec<AddrKey>, Vec<AddrKey>), Vec<EndpointPort>> = BTreeMap::new();
    for (ready, not_ready, port) in per_port.into_values() {
        grouped
            .entry((ready.into_iter().collect(), not_ready.into_iter().collect()))
            .or_default()
            .push(port);
    }
    for ((ready, not_ready), ports) in grouped {
        let ready: BTreeSet<AddrKey> = ready.into_iter().collect();
        let not_ready: BTreeSet<AddrKey> = not_ready.into_iter().collect();
        subsets.push(EndpointSubset {
            addresses: to_addrs(&ready),
            not_ready_addresses: to_addrs(&not_ready),
            ports: Some(ports),
        });
    }
    subsets
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn svc(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, http_port: Option<i32>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: http_port.map(|p| {
                        vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: p,
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ready_and_not_ready_pods_share_a_subset() {
        let s = svc(vec![ServicePort {
            name: Some("http".into()),
            port: 80,
            target_port: Some(IntOrString::Int(8080)),
            ..Default::default()
        }]);
        let pods = [
            pod("a", "10.0.0.2", true, None),
            pod("b", "10.0.0.1", false, None),
        ];
        let subsets = compute_subsets(&s, pods.iter());
        assert_eq!(subsets.len(), 1);
        let ready: Vec<&str> = subsets[0]
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        let not_ready: Vec<&str> = subsets[0]
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| a.ip.as_str())
            .collect();
        assert_eq!((ready, not_ready), (vec!["10.0.0.2"], vec!["10.0.0.1"]));
        let port = &subsets[0].ports.as_ref().expect("ports")[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), 8080, Some("TCP"))
        );
        assert_eq!(
            subsets[0].addresses.as_ref().expect("a")[0]
                .node_name
                .as_deref(),
            Some("n1")
        );
    }

    #[test]
    fn named_ports_resolve_per_pod_and_unresolvable_pods_drop_out() {
        let s = svc(vec![ServicePort {
            name: Some("web".into()),
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            ..Default::default()
        }]);
        let pods = [
            pod("a", "10.0.0.1", true, Some(8080)),
            pod("b", "10.0.0.2", true, Some(9090)),
            pod("c", "10.0.0.3", true, None),
        ];
        let subsets = compute_subsets(&s, pods.iter());
        let mut got: Vec<(String, i32)> = subsets
            .iter()
            .flat_map(|s| {
                let port = s.ports.as_ref().expect("ports")[0].port;
                s.addresses
                    .iter()
                    .flatten()
                    .map(move |a| (a.ip.clone(), port))
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("10.0.0.1".to_string(), 8080),
                ("10.0.0.2".to_string(), 9090)
            ]
        );
    }

    #[test]
    fn over_capacity_keeps_ready_addresses_first() {
        let s = svc(vec![ServicePort {
            port: 80,
            ..Default::default()
        }]);
        let pods: Vec<Pod> = (0..6)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.0.{i}"), i % 2 == 0, None))
            .collect();
        let mut subsets = compute_subsets(&s, pods.iter());
        assert!(!truncate(&mut subsets.clone(), 6));
        assert!(truncate(&mut subsets, 4));
        let ready: usize = subsets
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum();
        let not_ready: usize = subsets
            .iter()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
            .sum();
        assert_eq!((ready, not_ready), (3, 1));
    }

    #[test]
    fn publish_not_ready_addresses_lists_unready_pods_as_ready() {
        let mut s = svc(vec![ServicePort {
            port: 80,
            ..Default::default()
        }]);
        s.spec.as_mut().expect("spec").publish_not_ready_addresses = Some(true);
        let subsets = compute_subsets(&s, [pod("b", "10.0.0.1", false, None)].iter());
        assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1));
        assert!(subsets[0].not_ready_addresses.is_none());
    }
}

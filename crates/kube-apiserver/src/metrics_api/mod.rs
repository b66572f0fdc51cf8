//! `metrics.k8s.io/v1beta1` served in-process, in place of an aggregated
//! metrics-server: `NodeMetrics` and `PodMetrics` (get and list; pods namespaced
//! or across namespaces; label and field selectors), read on demand from the
//! kubelets' `/stats/summary` through the same kubelet client as `pods/log`.
//! This is what `kubectl top` and the horizontal pod autoscaler read.

pub mod summary;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api_types::{meta, ApiError, ResourceInfo};
use axum::{extract::Request, http::Method, http::StatusCode, response::Response};
use serde_json::{json, Value};

use crate::authz::RequestInfo;
use crate::handlers::{query::Query, read::Filter, response};
use crate::server::AppState;
use summary::Decoded;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// How long one kubelet may take to answer (metrics-server's `--kubelet-request-timeout`).
const KUBELET_TIMEOUT: Duration = Duration::from_secs(10);

/// What a `/apis/metrics.k8s.io/...` path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Group,
    Resources,
    Nodes {
        name: Option<String>,
    },
    Pods {
        namespace: Option<String>,
        name: Option<String>,
    },
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// Parses the segments after `/apis/metrics.k8s.io`.
pub fn route(rest: &[&str]) -> Result<Target, ApiError> {
    let s = |v: &&str| Some(v.to_string());
    match rest {
        [] => Ok(Target::Group),
        [VERSION] => Ok(Target::Resources),
        [VERSION, "nodes"] => Ok(Target::Nodes { name: None }),
        [VERSION, "nodes", name] => Ok(Target::Nodes { name: s(name) }),
        [VERSION, "pods"] => Ok(Target::Pods {
            namespace: None,
            name: None,
        }),
        [VERSION, "namespaces", ns, "pods"] => Ok(Target::Pods {
            namespace: s(ns),
            name: None,
        }),
        [VERSION, "namespaces", ns, "pods", name] => Ok(Target::Pods {
            namespace: s(ns),
            name: s(name),
        }),
        _ => Err(not_found()),
    }
}

/// Upstream's RequestInfo: discovery paths are non-resource requests.
pub fn request_info(target: &Target, method: &Method, path: &str) -> RequestInfo {
    let (resource, namespace, name) = match target {
        Target::Group | Target::Resources => {
            return RequestInfo {
                verb: method.as_str().to_ascii_lowercase(),
                is_resource_request: false,
                api_group: String::new(),
                api_version: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
                path: path.to_string(),
            }
        }
        Target::Nodes { name } => ("nodes", None, name.clone()),
        Target::Pods { namespace, name } => ("pods", namespace.clone(), name.clone()),
    };
    let verb = match (method, name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (m, _) => {
            return RequestInfo {
                verb: m.as_str().to_ascii_lowercase(),
                ..request_info(&Target::Group, m, path)
            }
        }
    };
    RequestInfo {
        verb: verb.into(),
        is_resource_request: true,
        api_group: GROUP.into(),
        api_version: VERSION.into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: namespace.unwrap_or_default(),
        name: name.unwrap_or_default(),
        path: path.to_string(),
    }
}

/// The group as `/apis` lists it and `/apis/metrics.k8s.io` answers it.
pub fn group_json() -> Value {
    let v = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [v.clone()], "preferredVersion": v})
}

pub fn resource_list() -> Value {
    let verbs = ["get", "list"];
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [
            {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "NodeMetrics", "verbs": verbs},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "PodMetrics", "verbs": verbs},
        ],
    })
}

fn core(plural: &str) -> Result<&'static ResourceInfo, ApiError> {
    api_types::registry::lookup("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} not registered")))
}

fn cached(
    state: &Arc<AppState>,
    info: &ResourceInfo,
    ns: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let cache = state
        .cache
        .resource(info)
        .ok_or_else(|| ApiError::internal("no cache"))?;
    Ok(cache
        .list(&info.list_prefix(ns))
        .iter()
        .map(|o| o.without_managed_fields().into_owned())
        .collect())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Serves a metrics.k8s.io request.
pub async fn serve(
    state: &Arc<AppState>,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            req.method()
        )));
    }
    let q = Query::parse(req.uri().query());
    if q.flag("watch") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource (watch)",
        ));
    }
    let body = match target {
        Target::Group => {
            let mut g = group_json();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        }
        Target::Resources => resource_list(),
        Target::Nodes { name } => nodes(state, name.as_deref(), &q).await?,
        Target::Pods { namespace, name } => {
            pods(state, namespace.as_deref(), name.as_deref(), &q).await?
        }
    };
    Ok(response::json(StatusCode::OK, &body))
}

async fn nodes(state: &Arc<AppState>, name: Option<&str>, q: &Query) -> Result<Value, ApiError> {
    let info = core("nodes")?;
    let selected: Vec<Value> = match name {
        Some(n) => vec![state.store.get(info, None, n).await?],
        None => {
            let filter = Filter::from_query(info, q)?;
            cached(state, info, None)?
                .into_iter()
                .filter(|n| filter.matches(n))
                .collect()
        }
    };
    let scraped = scrape(&selected).await;
    let now = now();
    let mut items: Vec<Value> = selected
        .iter()
        .filter_map(|n| {
            let usage = scraped.get(meta::name(n)?)?.node.as_ref()?;
            Some(summary::node_metrics(n, usage, &now))
        })
        .collect();
    items.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    match name {
        Some(n) => items
            .pop()
            .ok_or_else(|| ApiError::not_found(GROUP, &format!("nodes.{GROUP}"), n)),
        None => Ok(summary::list("NodeMetrics", items)),
    }
}

async fn pods(
    state: &Arc<AppState>,
    ns: Option<&str>,
    name: Option<&str>,
    q: &Query,
) -> Result<Value, ApiError> {
    let info = core("pods")?;
    let selected: Vec<Value> = match name {
        Some(n) => vec![state.store.get(info, ns, n).await?],
        None => {
            let filter = Filter::from_query(info, q)?;
            cached(state, info, ns)?
                .into_iter()
                .filter(|p| filter.matches(p))
                .collect()
        }
    };
    // Only running pods have metrics (metrics-server's `getPodMetrics`).
    let running: Vec<&Value> = selected
        .iter()
        .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
        .collect();
    let node_names: BTreeSet<&str> = running
        .iter()
        .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .collect();
    let nodes_info = core("nodes")?;
    let node_objs: Vec<Value> = cached(state, nodes_info, None)?
        .into_iter()
        .filter(|n| meta::name(n).is_some_and(|x| node_names.contains(x)))
        .collect();
    let scraped = scrape(&node_objs).await;
    let now = now();
    let mut items: Vec<Value> = running
        .iter()
        .filter_map(|p| {
            let node = p.pointer("/spec/nodeName").and_then(Value::as_str)?;
            let key = (meta::namespace(p)?.to_string(), meta::name(p)?.to_string());
            let usage = scraped.get(node)?.pods.get(&key)?;
            Some(summary::pod_metrics(p, usage, &now))
        })
        .collect();
    let key = |v: &Value| {
        (
            v["metadata"]["namespace"].as_str().map(str::to_string),
            v["metadata"]["name"].as_str().map(str::to_string),
        )
    };
    items.sort_by_key(key);
    match name {
        Some(n) => items.pop().ok_or_else(|| {
            ApiError::not_found(
                GROUP,
                &format!("pods.{GROUP}"),
                &format!("{}/{n}", ns.unwrap_or("")),
            )
        }),
        None => Ok(summary::list("PodMetrics", items)),
    }
}

/// Each node's decoded summary, by node name; nodes that cannot be reached are
/// left out (and logged), as metrics-server leaves out failed scrapes.
async fn scrape(nodes: &[Value]) -> HashMap<String, Decoded> {
    let fetches = nodes.iter().filter_map(|n| Some((meta::name(n)?.to_string(), n))).map(|(name, node)| async move {
        let result = match crate::proxy::node_kubelet_address(node) {
            Ok(addr) => tokio::time::timeout(KUBELET_TIMEOUT, summary_of(&addr)).await.unwrap_or_else(|_| Err(format!("no answer in {KUBELET_TIMEOUT:?}"))),
            Err(e) => Err(e.message),
        };
        match result {
            Ok(v) => Some((name, summary::decode(&v))),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "failed scraping the kubelet's /stats/summary");
                None
            }
        }
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// GET `/stats/summary` from the kubelet at `addr`.
async fn summary_of(addr: &str) -> Result<Value, String> {
    let req = Request::builder()
        .method(Method::GET)
        .uri("/stats/summary")
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    let resp = crate::proxy::forward(addr, "/stats/summary", req)
        .await
        .map_err(|e| e.message)?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("decoding the summary: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_authorization_attributes() {
        assert_eq!(route(&[]).ok(), Some(Target::Group));
        assert_eq!(route(&["v1beta1"]).ok(), Some(Target::Resources));
        assert_eq!(
            route(&["v1beta1", "nodes", "n1"]).ok(),
            Some(Target::Nodes {
                name: Some("n1".into())
            })
        );
        assert_eq!(
            route(&["v1beta1", "pods"]).ok(),
            Some(Target::Pods {
                namespace: None,
                name: None
            })
        );
        let p = route(&["v1beta1", "namespaces", "ns", "pods", "web"]).expect("route");
        assert_eq!(
            p,
            Target::Pods {
                namespace: Some("ns".into()),
                name: Some("web".into())
            }
        );
        assert!(route(&["v1", "nodes"]).is_err());
        assert!(route(&["v1beta1", "namespaces", "ns", "nodes"]).is_err());
        let ri = request_info(
            &p,
            &Method::GET,
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/web",
        );
        assert_eq!(
            (
                ri.verb.as_str(),
                ri.api_group.as_str(),
                ri.resource.as_str(),
                ri.namespace.as_str(),
                ri.name.as_str()
            ),
            ("get", GROUP, "pods", "ns", "web")
        );
        let ri = request_info(&Target::Nodes { name: None }, &Method::GET, "/x");
        assert_eq!((ri.verb.as_str(), ri.is_resource_request), ("list", true));
        assert!(!request_info(&Target::Resources, &Method::GET, "/x").is_resource_request);
    }

    #[test]
    fn discovery_lists_both_kinds() {
        let l = resource_list();
        let kinds: Vec<&str> = l["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["NodeMetrics", "PodMetrics"]);
        assert_eq!(
            group_json()["preferredVersion"]["groupVersion"],
            "metrics.k8s.io/v1beta1"
        );
    }
}

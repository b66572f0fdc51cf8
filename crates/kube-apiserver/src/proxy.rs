//! Proxying to the kubelet: `pods/log` (streamed), and the upgraded connections of
//! `pods/exec`, `pods/attach` and `pods/portforward` (WebSocket or SPDY, spliced byte
//! for byte after the kubelet answers 101), as upstream's apiserver does.

use std::sync::Arc;

use api_types::{meta, ApiError, ResourceInfo, Subresource};
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, Method, StatusCode},
    response::Response,
};
use serde_json::Value;

use crate::{handlers::query::Query, server::AppState};

mod kubelet_client;

pub use kubelet_client::{
    config as kubelet_client, configure as configure_kubelet_client, KubeletClientConfig,
};

fn bad_gateway(msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        502,
        "InternalError",
        format!("error trying to reach the kubelet: {msg}"),
    )
}

/// `host:port` of the kubelet of the node a pod runs on.
async fn kubelet_address(state: &Arc<AppState>, pod: &Value) -> Result<String, ApiError> {
    let pod_name = meta::name(pod).unwrap_or("");
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {pod_name} does not have a host assigned"))
        })?;
    let nodes = api_types::registry::lookup("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes not registered"))?;
    let node = state.store.get(nodes, None, node_name).await?;
    node_kubelet_address(&node)
}

/// `host:port` of a node's kubelet, from its status (also used by `metrics_api`).
pub(crate) fn node_kubelet_address(node: &Value) -> Result<String, ApiError> {
    let node_name = meta::name(node).unwrap_or("");
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pick = |ty: &str| {
        addresses
            .iter()
            .find(|a| a["type"] == ty)
            .and_then(|a| a["address"].as_str())
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let host = kubelet_client()
        .address_types
        .iter()
        .find_map(|ty| pick(ty))
        .ok_or_else(|| {
            bad_gateway(format!(
                "node {node_name}: no preferred addresses found; known addresses: {addresses:?}"
            ))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .unwrap_or(10250);
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The container a request addresses: `container=` or the pod's only container.
fn container_of(pod: &Value, q: &Query) -> Result<String, ApiError> {
    if let Some(c) = q.get("container").filter(|c| !c.is_empty()) {
        return Ok(c.to_string());
    }
    let name = meta::name(pod).unwrap_or("");
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match containers.as_slice() {
        [one] => Ok(one.to_string()),
        many => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            many.join(" ")
        ))),
    }
}

/// Serves `log`, `exec`, `attach`, `portforward` of a pod through its kubelet.
pub async fn pod_connect(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Subresource,
    req: Request,
) -> Result<Response, ApiError> {
    let q = Query::parse(req.uri().query());
    let pod = state.store.get(info, ns, name).await?;
    let ns = ns.unwrap_or("default");
    let addr = kubelet_address(state, &pod).await?;
    let query = req.uri().query().unwrap_or("").to_string();
    let path = match sub {
        Subresource::Log => {
            let container = container_of(&pod, &q)?;
            let known = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .chain(
                    pod.pointer("/spec/initContainers")
                        .and_then(Value::as_array),
                )
                .flatten()
                .any(|c| c["name"] == container.as_str());
            if !known {
                return Err(ApiError::bad_request(format!(
                    "container {container} is not valid for pod {name}"
                )));
            }
            format!("/containerLogs/{ns}/{name}/{container}?{query}")
        }
        Subresource::Exec => format!("/exec/{ns}/{name}/{}?{query}", container_of(&pod, &q)?),
        Subresource::Attach => format!("/attach/{ns}/{name}/{}?{query}", container_of(&pod, &q)?),
        Subresource::PortForward => {
            format!("/portForward/{ns}/{name}?{}", port_forward_query(&query))
        }
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not proxied",
                other.name()
            )))
        }
    };
    forward(&addr, &path, req).await
}

/// The kubelet reads `port=` once per port; kubectl's `PodPortForwardOptions` sends
/// `ports=80` (or `ports=80,81`), which upstream's apiserver rewrites the same way.
fn port_forward_query(query: &str) -> String {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut ports: Vec<&str> = Vec::new();
    for key in ["ports", "port"] {
        for (_, v) in pairs.iter().filter(|(k, _)| k == key) {
            for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
        }
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "ports" && k != "port") {
        out.append_pair(k, v);
    }
    for p in ports {
        out.append_pair("port", p);
    }
    out.finish()
}

/// Forwards a request to the kubelet over HTTP/1.1 on TLS (see `kubelet_client`); an
/// upgrade (101) is spliced.
pub(crate) async fn forward(
    addr: &str,
    path_and_query: &str,
    mut req: Request,
) -> Result<Response, ApiError> {
    let stream = kubelet_client().connect(addr).await.map_err(bad_gateway)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(io)
        .await
        .map_err(bad_gateway)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    let wants_upgrade = req.headers().get(axum::http::header::UPGRADE).is_some();
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut out = hyper::Request::builder()
        .method(req.method().clone())
        .uri(path_and_query);
    for (k, v) in req.headers() {
        // Credentials for the apiserver are not the kubelet's business.
        if k == axum::http::header::AUTHORIZATION || k == axum::http::header::HOST {
            continue;
        }
        out = out.header(k, v);
    }
    out = out.header(axum::http::header::HOST, addr);
    let body = if req.method() == Method::GET {
        Body::empty()
    } else {
        req.into_body()
    };
    let out = out
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = sender.send_request(out).await.map_err(bad_gateway)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(bad_gateway(
                "the kubelet switched protocols on a plain request",
            ));
        };
        let kubelet_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match (client_upgrade.await, kubelet_upgrade.await) {
                (Ok(client), Ok(kubelet)) => {
                    let mut client = hyper_util::rt::TokioIo::new(client);
                    let mut kubelet = hyper_util::rt::TokioIo::new(kubelet);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await;
                }
                (c, k) => {
                    tracing::debug!(client = c.is_ok(), kubelet = k.is_ok(), "upgrade failed")
                }
            }
        });
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *r.headers_mut() = resp.headers().clone();
        return Ok(r);
    }
    let (parts, body) = resp.into_parts();
    let mut r = Response::new(Body::new(body));
    *r.status_mut() = parts.status;
    for (k, v) in parts.headers.iter() {
        if k == axum::http::header::CONTENT_TYPE
            || k == axum::http::header::TRANSFER_ENCODING
            || k.as_str().starts_with("x-")
        {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    if !r.headers().contains_key(axum::http::header::CONTENT_TYPE) {
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod port_forward_tests {
    #[test]
    fn ports_are_rewritten_to_one_port_param_each() {
        assert_eq!(
            super::port_forward_query("ports=80%2C81"),
            "port=80&port=81"
        );
        assert_eq!(
            super::port_forward_query("ports=80&ports=81"),
            "port=80&port=81"
        );
        assert_eq!(super::port_forward_query("ports=80&port=80"), "port=80");
        assert_eq!(super::port_forward_query("port=8080"), "port=8080");
    }
}

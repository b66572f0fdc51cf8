//! The kubelet's HTTP server on `--port`: `/healthz`, `/metrics`, `/pods`,
//! `/stats/summary`, `/containerLogs/{ns}/{pod}/{container}`, `/exec`, `/attach`, `/portForward`
//! (served over TLS behind `auth::filter` by `tls::serve`), and the read-only port's
//! subset (`/healthz`, `/metrics`, `/pods`, `/stats`: no logs, exec or port-forward).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kube_common::metrics::{health_router, Metrics};

use crate::cri::{api, labels, Runtime};
use crate::pod::manager::PodCache;
use crate::{stats, streaming};

pub struct ServerState<R> {
    pub cri: Arc<R>,
    pub pods: PodCache,
    pub node_name: String,
    pub cpu_samples: stats::CpuSamples,
}

/// Everything the kubelet serves on `--port`.
pub fn router<R: Runtime>(state: Arc<ServerState<R>>, metrics: Metrics) -> Router {
    let api = Router::new()
        .route("/pods", get(pods::<R>))
        .route("/stats/summary", get(stats_summary::<R>))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs::<R>),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(streaming::exec::<R>).post(streaming::exec::<R>),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(streaming::attach::<R>).post(streaming::attach::<R>),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(streaming::port_forward::<R>).post(streaming::port_forward::<R>),
        )
        .with_state(state);
    health_router(metrics).merge(api)
}

/// What `--read-only-port` serves without authentication (upstream's default
/// handlers without the debugging ones).
pub fn read_only_router<R: Runtime>(state: Arc<ServerState<R>>, metrics: Metrics) -> Router {
    let api = Router::new()
        .route("/pods", get(pods::<R>))
        .route("/stats/summary", get(stats_summary::<R>))
        .with_state(state);
    health_router(metrics).merge(api)
}

async fn pods<R: Runtime>(State(state): State<Arc<ServerState<R>>>) -> Response {
    let items: Vec<serde_json::Value> = state
        .pods
        .read()
        .values()
        .filter_map(|p| serde_json::to_value(p.as_ref()).ok())
        .collect();
    let list =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    (
        [(header::CONTENT_TYPE, "application/json")],
        list.to_string(),
    )
        .into_response()
}

async fn stats_summary<R: Runtime>(State(state): State<Arc<ServerState<R>>>) -> Response {
    let containers = match state.cri.list_container_stats().await {
        Ok(c) => c,
        Err(err) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to get container stats: {err}"),
            )
        }
    };
    let pods: Vec<Arc<k8s_openapi::api::core::v1::Pod>> =
        state.pods.read().values().cloned().collect();
    let pod_refs: Vec<&k8s_openapi::api::core::v1::Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let summary = serde_json::json!({
        "node": stats::node_stats(&state.node_name, &state.cpu_samples),
        "pods": stats::pod_stats(&containers, &pod_refs, &state.cpu_samples),
    });
    let live: std::collections::HashSet<&str> = containers
        .iter()
        .filter_map(|c| c.attributes.as_ref().map(|a| a.id.as_str()))
        .collect();
    state.cpu_samples.retain(|k| k == "/" || live.contains(k));
    (
        [(header::CONTENT_TYPE, "application/json")],
        summary.to_string(),
    )
        .into_response()
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// One line of a CRI log file: `<RFC3339Nano> <stream> <P|F> <text>`.
#[derive(Debug, PartialEq)]
pub struct LogLine<'a> {
    pub timestamp: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub text: &'a str,
}

pub fn parse_cri_line(line: &str) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    Some(LogLine {
        timestamp,
        stream,
        partial: tag.split(':').next() == Some("P"),
        text,
    })
}

/// Turns CRI log content into what `kubectl logs` prints.
pub fn render_logs(
    content: &str,
    timestamps: bool,
    tail_lines: Option<usize>,
    since: Option<&str>,
) -> String {
    let mut lines: Vec<String> = Vec::new();
    let since: Option<k8s_openapi::jiff::Timestamp> = since.and_then(|s| s.parse().ok());
    let mut pending = String::new();
    for raw in content.lines() {
        let Some(line) = parse_cri_line(raw) else {
            continue;
        };
        if since.is_some_and(|s| {
            line.timestamp
                .parse::<k8s_openapi::jiff::Timestamp>()
                .is_ok_and(|t| t < s)
        }) {
            continue;
        }
        if pending.is_empty() && timestamps {
            pending.push_str(line.timestamp);
            pending.push(' ');
        }
        pending.push_str(line.text);
        if !line.partial {
            pending.push('\n');
            lines.push(std::mem::take(&mut pending));
        }
    }
    let skip = tail_lines.map_or(0, |n| lines.len().saturating_sub(n));
    lines[skip..].concat()
}

async fn container_logs<R: Runtime>(
    State(state): State<Arc<ServerState<R>>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let uid = state
        .pods
        .read()
        .values()
        .find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace.as_str())
                && p.metadata.name.as_deref() == Some(pod_name.as_str())
        })
        .and_then(|p| p.metadata.uid.clone());
    let Some(uid) = uid else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod_name} not found"),
        );
    };
    let filter = api::ContainerFilter {
        label_selector: HashMap::from([
            (labels::POD_UID.to_string(), uid),
            (labels::CONTAINER_NAME.to_string(), container.clone()),
        ]),
        ..Default::default()
    };
    let mut found = match state.cri.list_containers(Some(filter)).await {
        Ok(c) => c,
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    found.sort_by_key(|c| {
        std::cmp::Reverse((c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at))
    });
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true" || v == "1");
    let index = usize::from(flag("previous"));
    let Some(target) = found.get(index) else {
        let what = if index == 1 {
            "previous terminated container"
        } else {
            "container"
        };
        return text(
            StatusCode::BAD_REQUEST,
            format!("{what} \"{container}\" in pod \"{pod_name}\" not found"),
        );
    };
    let status = match state.cri.container_status(&target.id).await {
        Ok(s) => s,
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    let timestamps = flag("timestamps");
    let tail: Option<usize> = query.get("tailLines").and_then(|v| v.parse().ok());
    let since_time = query.get("sinceTime").cloned().or_else(|| {
        let secs: i64 = query.get("sinceSeconds")?.parse().ok()?;
        let at = k8s_openapi::jiff::Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(secs))
            .ok()?;
        Some(at.to_string())
    });
    let limit: Option<usize> = query.get("limitBytes").and_then(|v| v.parse().ok());
    let path = status.log_path.clone();
    let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    let mut initial = render_logs(&content, timestamps, tail, since_time.as_deref());
    if let Some(limit) = limit {
        initial.truncate(limit.min(initial.len()));
    }
    let follow = flag("follow") && status.state == api::ContainerState::ContainerRunning as i32;
    if !follow {
        return ([(header::CONTENT_TYPE, "text/plain")], initial).into_response();
    }
    // Follow: poll the file for appended lines until the container stops.
    let cri = state.cri.clone();
    let id = target.id.clone();
    let stream = futures::stream::unfold(
        (Some(initial), content.len(), false),
        move |(first, mut offset, done)| {
            let cri = cri.clone();
            let id = id.clone();
            let path = path.clone();
            async move {
                if let Some(first) = first {
                    return Some((Ok::<_, std::io::Error>(first), (None, offset, false)));
                }
                if done {
                    return None;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
                    let running = matches!(cri.container_status(&id).await, Ok(s) if s.state == api::ContainerState::ContainerRunning as i32);
                    if content.len() > offset {
                        // Only whole lines: a partial write is picked up next time.
                        let end = content[offset..]
                            .rfind('\n')
                            .map_or(offset, |i| offset + i + 1);
                        if end > offset {
                            let chunk = render_logs(&content[offset..end], timestamps, None, None);
                            offset = end;
                            return Some((Ok(chunk), (None, offset, !running)));
                        }
                    }
                    if !running {
                        return None;
                    }
                }
            }
        },
    );
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_render_with_partials_tail_and_timestamps() {
        let content = "2024-01-01T00:00:00.1Z stdout F one\n2024-01-01T00:00:01.1Z stderr P tw\n2024-01-01T00:00:01.2Z stderr F o\n2024-01-01T00:00:02.1Z stdout F three\n";
        assert_eq!(render_logs(content, false, None, None), "one\ntwo\nthree\n");
        assert_eq!(render_logs(content, false, Some(2), None), "two\nthree\n");
        assert_eq!(
            render_logs(content, true, Some(1), None),
            "2024-01-01T00:00:02.1Z three\n"
        );
        assert_eq!(
            render_logs(content, false, None, Some("2024-01-01T00:00:02Z")),
            "three\n"
        );
        assert_eq!(parse_cri_line("t stdout F").map(|l| l.text), Some(""));
    }
}

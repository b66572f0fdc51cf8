//! Auditing (`--audit-log-path`, `--audit-policy-file`): a layer around the whole
//! router, after authentication, that writes audit.k8s.io/v1 `Event`s as JSON lines.
//! Every response carries its `Audit-Id`. Events go through a bounded channel to a
//! writer task, so a slow disk never holds up requests (events are dropped, with a
//! warning, when the writer falls far behind).

pub mod policy;
mod writer;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::{authn::UserInfo, authz::RequestInfo, handlers, options::Options, server::AppState};
use policy::{Decision, Level, Policy, Stage};

/// The connection's peer address, set by the port listeners as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

type Annotations = Arc<Mutex<BTreeMap<String, String>>>;

tokio::task_local! {
    static ANNOTATIONS: Annotations;
}

/// Adds an audit annotation to the current request's event (no-op outside a request,
/// and when no audit log is kept).
pub fn annotate(key: &str, value: &str) {
    let _ = ANNOTATIONS.try_with(|a| {
        a.lock().insert(key.to_string(), value.to_string());
    });
}

/// The audit backend: policy plus the event channel.
pub struct Auditor {
    policy: Policy,
    events: tokio::sync::mpsc::Sender<String>,
}

/// Request bodies kept for `requestObject` (larger ones are not recorded).
const MAX_RECORDED_BODY: usize = 3 * 1024 * 1024;

impl Auditor {
    /// From the flags; None when auditing is off (no log path, or no policy as upstream).
    pub fn from_options(opts: &Options) -> anyhow::Result<Option<Arc<Auditor>>> {
        let Some(path) = opts.audit_log_path.as_deref().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let Some(policy_file) = &opts.audit_policy_file else {
            tracing::warn!("--audit-log-path is set without --audit-policy-file: no audit events will be recorded");
            return Ok(None);
        };
        if opts.audit_log_format != "json" {
            anyhow::bail!(
                "--audit-log-format {:?} is not supported (only json)",
                opts.audit_log_format
            );
        }
        let policy = Policy::load(policy_file)?;
        let sink = writer::Sink::open(path, opts.audit_log_maxsize, opts.audit_log_maxbackup)?;
        let (tx, rx) = tokio::sync::mpsc::channel(16 * 1024);
        tokio::spawn(writer::run(sink, rx));
        tracing::info!(path, policy = %policy_file.display(), "audit logging enabled");
        Ok(Some(Arc::new(Auditor { policy, events: tx })))
    }

    fn emit(&self, event: &Value) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        if self.events.try_send(line).is_err() {
            tracing::warn!("audit event dropped: the audit log writer is behind");
        }
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// What is known of a request before it runs.
struct Pending {
    auditor: Arc<Auditor>,
    decision: Decision,
    base: Map<String, Value>,
    annotations: Annotations,
}

impl Pending {
    fn emit(&self, stage: Stage, extra: impl FnOnce(&mut Map<String, Value>)) {
        if self.decision.omit_stages.contains(&stage) {
            return;
        }
        let mut e = self.base.clone();
        e.insert("stage".into(), json!(stage.as_str()));
        e.insert("stageTimestamp".into(), json!(timestamp(Utc::now())));
        extra(&mut e);
        let annotations = self.annotations.lock();
        if !annotations.is_empty() {
            e.insert("annotations".into(), json!(*annotations));
        }
        self.auditor.emit(&Value::Object(e));
    }
}

fn user_json(u: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), json!(u.name));
    if !u.uid.is_empty() {
        m.insert("uid".into(), json!(u.uid));
    }
    if !u.groups.is_empty() {
        m.insert("groups".into(), json!(u.groups));
    }
    Value::Object(m)
}

fn object_ref(info: &RequestInfo) -> Option<Value> {
    if !info.is_resource_request {
        return None;
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    put("resource", &info.resource);
    put("namespace", &info.namespace);
    put("name", &info.name);
    put("apiGroup", &info.api_group);
    put("apiVersion", &info.api_version);
    put("subresource", &info.subresource);
    Some(Value::Object(m))
}

fn strip_managed_fields(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("managedFields");
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip_managed_fields);
    }
}

fn is_long_running(info: &RequestInfo) -> bool {
    info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy"
        )
}

/// The audit layer (installed by [`crate::server::router`]).
pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let audit_id = header_str(req.headers(), "audit-id")
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Without an audit log nothing reads annotations: `annotate` then finds no scope
    // and records nothing.
    let mut resp = match state.audit.clone() {
        None => next.run(req).await,
        Some(auditor) => audited(auditor, &audit_id, Arc::default(), req, next).await,
    };
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
    resp
}

async fn audited(
    auditor: Arc<Auditor>,
    audit_id: &str,
    annotations: Annotations,
    req: Request,
    next: Next,
) -> Response {
    let received = Utc::now();
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let path = req.uri().path().to_string();
    let route = handlers::path::parse(&path);
    let mut info = handlers::request_info(req.method(), &path, &route, req.uri().query());
    let decision = auditor.policy.decide(&user, &info);
    if decision.level == Level::None {
        return ANNOTATIONS.scope(annotations, next.run(req)).await;
    }
    let headers = req.headers().clone();
    // The request body (writes): for `requestObject` and the name of created objects.
    let has_body = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        && info.is_resource_request
        && !is_long_running(&info);
    let (req, request_object) = if has_body {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
            Ok(bytes) => {
                let obj = handlers::response::decode_body(&parts.headers, &bytes).ok();
                (Request::from_parts(parts, Body::from(bytes)), obj)
            }
            Err(_) => {
                return api_error(&api_types::ApiError::too_large(
                    "Request entity too large: limit is 3145728",
                ));
            }
        }
    } else {
        (req, None)
    };
    if info.verb == "create" && info.name.is_empty() && info.subresource.is_empty() {
        if let Some(n) = request_object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/name"))
            .and_then(Value::as_str)
        {
            info.name = n.to_string();
        }
    }

    let mut base = Map::new();
    base.insert("kind".into(), json!("Event"));
    base.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
    base.insert("level".into(), json!(decision.level.as_str()));
    base.insert("auditID".into(), json!(audit_id));
    base.insert(
        "requestURI".into(),
        json!(req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(&path)),
    );
    base.insert("verb".into(), json!(info.verb));
    base.insert("user".into(), user_json(&user));
    if let Some(imp) = header_str(&headers, "impersonate-user") {
        let groups: Vec<&str> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut m = json!({"username": imp});
        if !groups.is_empty() {
            m["groups"] = json!(groups);
        }
        base.insert("impersonatedUser".into(), m);
    }
    let mut ips: Vec<String> = header_str(&headers, "x-forwarded-for")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(RemoteAddr(addr)) = req.extensions().get::<RemoteAddr>() {
        ips.push(addr.ip().to_string());
    }
    base.insert("sourceIPs".into(), json!(ips));
    if let Some(ua) = header_str(&headers, "user-agent") {
        base.insert("userAgent".into(), json!(ua));
    }
    if let Some(r) = object_ref(&info) {
        base.insert("objectRef".into(), r);
    }
    base.insert(
        "requestReceivedTimestamp".into(),
        json!(timestamp(received)),
    );
    if decision.level >= Level::Request {
        if let Some(mut o) = request_object {
            if decision.omit_managed_fields {
                strip_managed_fields(&mut o);
            }
            base.insert("requestObject".into(), o);
        }
    }
    let pending = Pending {
        auditor,
        decision,
        base,
        annotations: annotations.clone(),
    };
    pending.emit(Stage::RequestReceived, |_| {});

    let resp = ANNOTATIONS.scope(annotations, next.run(req)).await;
    let code = resp.status().as_u16();
    let long_running = is_long_running(&info) && resp.status().is_success();
    if long_running {
        pending.emit(Stage::ResponseStarted, |e| {
            e.insert(
                "responseStatus".into(),
                json!({"metadata": {}, "code": code}),
            );
        });
        // ResponseComplete once the stream ends (the body is dropped).
        let guard = CompleteOnDrop {
            pending: Some(pending),
            code,
        };
        let (parts, body) = resp.into_parts();
        let stream = body.into_data_stream().map(move |chunk| {
            let _keep = &guard;
            chunk
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let protobuf = api_types::protobuf::is_protobuf(&content_type);
    let json_body = content_type.starts_with("application/json") || protobuf;
    let want_body = json_body && (pending.decision.level == Level::RequestResponse || code >= 400);
    if !want_body {
        pending.emit(Stage::ResponseComplete, |e| {
            e.insert(
                "responseStatus".into(),
                json!({"metadata": {}, "code": code}),
            );
        });
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "reading a response body for the audit log");
            bytes::Bytes::new()
        }
    };
    let object: Option<Value> = if protobuf {
        api_types::protobuf::decode(&bytes).ok()
    } else {
        serde_json::from_slice(&bytes).ok()
    };
    let level = pending.decision.level;
    let omit_mf = pending.decision.omit_managed_fields;
    pending.emit(Stage::ResponseComplete, |e| {
        let mut status = json!({"metadata": {}, "code": code});
        if code >= 400 {
            if let Some(o) = object
                .as_ref()
                .filter(|o| o.get("kind") == Some(&json!("Status")))
            {
                for k in ["status", "message", "reason", "details"] {
                    if let Some(v) = o.get(k) {
                        status[k] = v.clone();
                    }
                }
            }
        }
        e.insert("responseStatus".into(), status);
        if level == Level::RequestResponse {
            if let Some(mut o) = object {
                if omit_mf {
                    strip_managed_fields(&mut o);
                }
                e.insert("responseObject".into(), o);
            }
        }
    });
    Response::from_parts(parts, Body::from(bytes))
}

fn api_error(e: &api_types::ApiError) -> Response {
    handlers::response::error(e)
}

struct CompleteOnDrop {
    pending: Option<Pending>,
    code: u16,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            let code = self.code;
            p.emit(Stage::ResponseComplete, |e| {
                e.insert(
                    "responseStatus".into(),
                    json!({"metadata": {}, "code": code}),
                );
            });
        }
    }
}

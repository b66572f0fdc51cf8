//! POST, PUT, PATCH and DELETE.

use std::sync::Arc;

use crate::authn::UserInfo;
use api_types::{meta, patch::PatchType, ApiError, ResourceInfo, StatusCause, Subresource};
use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use chrono::Utc;
use serde_json::{json, Value};

use super::{
    query::Query,
    response::{self, decode_body, MAX_BODY_BYTES},
};
use crate::{
    server::AppState,
    store::{DeleteOptions, FieldValidation, WriteOptions, Written},
    subresources,
};

/// Bodies past this are cut off without reading them to the end.
const MAX_DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Reads the request body up to 3 MiB. A larger body is read to its end (up to a
/// bound) and discarded, so the client receives the 413 instead of a reset connection.
/// A request's headers, body and authenticated user.
struct Incoming {
    headers: HeaderMap,
    body: Vec<u8>,
    user: UserInfo,
}

async fn read_body(mut req: Request) -> Result<Incoming, ApiError> {
    use http_body_util::BodyExt;
    // Taken, not cloned: the request is consumed here.
    let user = req
        .extensions_mut()
        .remove::<UserInfo>()
        .unwrap_or_else(UserInfo::anonymous);
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(data);
            } else if seen > MAX_DRAIN_BYTES {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    Ok(Incoming {
        headers: parts.headers,
        body: buf,
        user,
    })
}

/// The field manager of a write: `fieldManager`, else the User-Agent's product name
/// (`kubectl` from `kubectl/v1.32.0 (linux/amd64) ...`), as upstream.
fn field_manager(q: &Query, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = q.get("fieldManager").filter(|s| !s.is_empty()) {
        if m.len() > 128 {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: must have at most 128 bytes",
            ));
        }
        return Ok(m.to_string());
    }
    // Upstream's `prefixFromUserAgent`: the text before the first `/`, without
    // unprintable characters, cut to 128 bytes; empty without a User-Agent.
    let ua = headers
        .get("user-agent")
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    let mut manager = String::new();
    for c in ua.split('/').next().unwrap_or_default().chars() {
        if c.is_control() || (c.is_whitespace() && c != ' ') {
            continue;
        }
        if manager.len() + c.len_utf8() > 128 {
            break;
        }
        manager.push(c);
    }
    Ok(manager)
}

fn write_options(
    q: &Query,
    headers: &HeaderMap,
    user: Option<UserInfo>,
) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: q.dry_run()?,
        field_manager: field_manager(q, headers)?,
        field_validation: FieldValidation::parse(q.get("fieldValidation"))?,
        force: q.flag("force"),
        user,
    })
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - {:?}", w);
        if let Ok(h) = HeaderValue::from_str(&v) {
            resp.headers_mut().append("warning", h);
        }
    }
    resp
}

fn written(w: Written, created_code: StatusCode) -> Response {
    let code = if w.created {
        created_code
    } else {
        StatusCode::OK
    };
    let resp = match w.encoded {
        Some(bytes) => response::raw_json(code, bytes),
        None => response::json(code, &w.object),
    };
    with_warnings(resp, &w.warnings)
}

pub async fn create(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    if !info.verbs.contains(&"create") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let Incoming {
        headers,
        body,
        user,
    } = read_body(req).await?;
    let opts = write_options(q, &headers, Some(user.clone()))?;
    let obj = decode_body(&headers, &body)?;
    if crate::authz::review::is_non_stored(info) {
        // Reviews are answered, never stored.
        let answer = crate::authz::review::create_non_stored(state, &user, info, ns, obj)
            .unwrap_or_else(|| Err(ApiError::internal("unhandled review kind")))?;
        return Ok(response::json(StatusCode::CREATED, &answer));
    }
    crate::authz::escalation::check_write(&state.authorizer, &user, info, ns, &obj)?;
    if info.kind == "Binding" {
        // POST /namespaces/{ns}/bindings: the old form of pods/binding.
        let pod = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return bind(state, ns, &pod, &obj).await;
    }
    let w = state
        .store
        .create_for_response(info, ns, obj, &opts)
        .await?;
    Ok(written(w, StatusCode::CREATED))
}

async fn bind(
    state: &Arc<AppState>,
    ns: Option<&str>,
    pod: &str,
    binding: &Value,
) -> Result<Response, ApiError> {
    let Some(node) = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(ApiError::invalid(
            "",
            "Binding",
            pod,
            vec![StatusCause::required("target.name")],
        ));
    };
    let pods = api_types::registry::lookup("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods not registered"))?;
    let now = meta::format_time(Utc::now());
    let node = node.to_string();
    state
        .store
        .update_raw(pods, ns, pod, |p| {
            subresources::bind(p, &node, &now).map(Some)
        })
        .await?;
    Ok(response::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

pub async fn create_subresource(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Subresource,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    match sub {
        Subresource::Binding => {
            let Incoming { headers, body, .. } = read_body(req).await?;
            let obj = decode_body(&headers, &body)?;
            bind(state, ns, name, &obj).await
        }
        Subresource::Eviction => {
            let Incoming {
                headers,
                body,
                user,
            } = read_body(req).await?;
            let eviction = decode_body(&headers, &body)?;
            let mut opts = DeleteOptions {
                dry_run: q.dry_run()?,
                user: Some(user),
                ..Default::default()
            };
            if let Some(d) = eviction.get("deleteOptions") {
                opts.merge_body(d);
            }
            state.store.delete(info, ns, name, &opts).await?;
            Ok(response::json(
                StatusCode::CREATED,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        Subresource::Token => {
            let Incoming { headers, body, .. } = read_body(req).await?;
            let request = decode_body(&headers, &body)?;
            let keys = state.token_keys.as_ref().ok_or_else(|| ApiError::new(404, "NotFound", "the server could not find the requested resource (service account token signing is not configured)"))?;
            let answer = crate::serviceaccount::token_request::create(
                &state.store,
                keys,
                ns.unwrap_or("default"),
                name,
                request,
                Some(state.max_token_expiration),
            )
            .await?;
            Ok(response::json(StatusCode::CREATED, &answer))
        }
        other => Err(ApiError::new(
            501,
            "NotImplemented",
            format!(
                "{} is served by the kubelet, which this apiserver does not reach yet",
                other.name()
            ),
        )),
    }
}

pub async fn update(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    let Incoming {
        headers,
        body,
        user,
    } = read_body(req).await?;
    let opts = write_options(q, &headers, Some(user.clone()))?;
    let obj = decode_body(&headers, &body)?;
    crate::authz::escalation::check_write(&state.authorizer, &user, info, ns, &obj)?;
    crate::certificates::authorize_write(state, &user, info, name, sub, |_| Ok(obj.clone()))
        .await?;
    match sub {
        None | Some(Subresource::Status) | Some(Subresource::Approval) => {
            let w = state.store.update(info, ns, name, sub, obj, &opts).await?;
            Ok(written(w, StatusCode::CREATED))
        }
        Some(Subresource::Scale) => {
            let w = state
                .store
                .update_scale(info, ns, name, &opts, |cur| {
                    subresources::apply_scale(cur, &obj)
                })
                .await?;
            Ok(response::json(
                StatusCode::OK,
                &subresources::scale_of(info, &w.object),
            ))
        }
        Some(other) => Err(ApiError::method_not_allowed(format!(
            "PUT is not supported on {}",
            other.name()
        ))),
    }
}

pub async fn patch(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    let Incoming {
        headers,
        body,
        user,
    } = read_body(req).await?;
    let ct = response::content_type(&headers);
    let patch_type =
        PatchType::from_content_type(&ct).ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
    let opts = write_options(q, &headers, Some(user.clone()))?;
    if patch_type == PatchType::Apply && q.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "",
            "PatchOptions",
            "",
            vec![StatusCause {
                reason: "FieldValueRequired".into(),
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }],
        ));
    }
    let patch: Value = match patch_type {
        PatchType::Apply => {
            if body.iter().all(|b| b.is_ascii_whitespace()) {
                return Err(ApiError::bad_request("the request body is empty"));
            }
            serde_norway::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
        _ => serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    if crate::authz::escalation::applies(info) {
        // The patched role/binding must pass the escalation check; an apply patch
        // carries the whole (atomic) rules list / roleRef itself.
        let target = match (patch_type, state.store.get(info, ns, name).await) {
            (PatchType::Apply, _) => patch.clone(),
            (_, Ok(current)) => api_types::patch::apply_patch(info, &current, patch_type, &patch)?,
            (_, Err(e)) => return Err(e),
        };
        crate::authz::escalation::check_write(&state.authorizer, &user, info, ns, &target)?;
    }
    crate::certificates::authorize_write(state, &user, info, name, sub, |cur| {
        if patch_type == PatchType::Apply {
            Ok(patch.clone())
        } else {
            api_types::patch::apply_patch(info, cur, patch_type, &patch)
        }
    })
    .await?;
    match sub {
        None | Some(Subresource::Status) | Some(Subresource::Approval) => {
            let w = state
                .store
                .patch(info, ns, name, sub, patch_type, patch, &opts)
                .await?;
            Ok(written(w, StatusCode::CREATED))
        }
        Some(Subresource::Scale) => {
            let scale_info =
                api_types::registry::lookup("", "v1", "replicationcontrollers").unwrap_or(info);
            let w = state
                .store
                .update_scale(info, ns, name, &opts, |cur| {
                    let scale = subresources::scale_of(info, cur);
                    // Scale is patched as a plain object (no merge keys inside).
                    let patched = api_types::patch::apply_patch(
                        scale_info,
                        &scale,
                        if patch_type == PatchType::StrategicMerge {
                            PatchType::Merge
                        } else {
                            patch_type
                        },
                        &patch,
                    )?;
                    let mut out = subresources::apply_scale(cur, &patched)?;
                    if patch.pointer("/metadata/resourceVersion").is_none() {
                        if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
                            m.shift_remove("resourceVersion");
                        }
                    }
                    Ok(out)
                })
                .await?;
            Ok(response::json(
                StatusCode::OK,
                &subresources::scale_of(info, &w.object),
            ))
        }
        Some(other) => Err(ApiError::method_not_allowed(format!(
            "PATCH is not supported on {}",
            other.name()
        ))),
    }
}

fn delete_options(
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<UserInfo>,
) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions {
        grace_period_seconds: q.i64("gracePeriodSeconds")?,
        propagation_policy: q.get("propagationPolicy").map(str::to_string),
        orphan_dependents: q.get("orphanDependents").map(|v| v == "true"),
        dry_run: q.dry_run()?,
        user,
        ..Default::default()
    };
    if !body.iter().all(|b| b.is_ascii_whitespace()) {
        let b = decode_body(headers, body)?;
        opts.merge_body(&b);
    }
    Ok(opts)
}

pub async fn delete(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    let Incoming {
        headers,
        body,
        user,
    } = read_body(req).await?;
    let opts = delete_options(q, &headers, &body, Some(user))?;
    let d = state.store.delete(info, ns, name, &opts).await?;
    let code = if !d.deleted_now && opts.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(response::json(code, &d.object))
}

pub async fn delete_collection(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    if !info.verbs.contains(&"deletecollection") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let Incoming {
        headers,
        body,
        user,
    } = read_body(req).await?;
    let opts = delete_options(q, &headers, &body, Some(user))?;
    let filter = super::read::Filter::from_query(info, q)?;
    let cache = state
        .cache
        .resource(info)
        .ok_or_else(|| ApiError::internal("no cache"))?;
    let rev = state
        .storage
        .current_revision()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .cache
        .wait_for(rev, std::time::Duration::from_secs(3))
        .await;
    let mut items = Vec::new();
    for o in cache.list(&info.list_prefix(ns)) {
        if !filter.matches(&o.selectable) {
            continue;
        }
        let name = meta::name(&o.selectable).unwrap_or("").to_string();
        let obj_ns = meta::namespace(&o.selectable).map(str::to_string);
        match state
            .store
            .delete(info, obj_ns.as_deref(), &name, &opts)
            .await
        {
            Ok(d) => items.push(d.object),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(response::json(
        StatusCode::OK,
        &json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": {}, "items": items}),
    ))
}

/// PUT `/api/v1/namespaces/{ns}/finalize`: replaces `spec.finalizers`; a terminating
/// namespace with none left is removed.
pub async fn finalize_namespace(
    state: &Arc<AppState>,
    ns: &str,
    req: Request,
) -> Result<Response, ApiError> {
    if req.method() != axum::http::Method::PUT {
        return Err(ApiError::method_not_allowed(
            "only PUT is allowed on namespaces/finalize",
        ));
    }
    let info = api_types::registry::lookup("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces not registered"))?;
    let Incoming { headers, body, .. } = read_body(req).await?;
    let obj = decode_body(&headers, &body)?;
    let finalizers = obj
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    let updated = state
        .store
        .update_raw(info, None, ns, |cur| {
            let mut n = cur.clone();
            n["spec"]["finalizers"] = finalizers.clone();
            Ok(Some(n))
        })
        .await?;
    let done = meta::deletion_timestamp(&updated).is_some()
        && updated
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
        && meta::finalizers(&updated).is_empty();
    if done {
        let d = state
            .store
            .delete(info, None, ns, &DeleteOptions::default())
            .await?;
        return Ok(response::json(StatusCode::OK, &d.object));
    }
    Ok(response::json(StatusCode::OK, &updated))
}

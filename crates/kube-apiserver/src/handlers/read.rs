//! GET, LIST and WATCH.

use std::{sync::Arc, time::Duration};

use api_types::{
    meta,
    selectors::{FieldSelector, LabelSelector},
    table::{self, IncludeObject},
    ApiError, ResourceInfo, Subresource,
};
use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{
    query::Query,
    response::{self, representation, Representation},
};
use crate::{
    cache::{CacheEvent, CachedObject, WatchEventType},
    server::AppState,
};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Label and field filters of a list or watch.
pub struct Filter {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(info: &ResourceInfo, q: &Query) -> Result<Filter, ApiError> {
        let fields = q.field_selector()?;
        if let Some(f) = &fields {
            f.check_supported(info)?;
        }
        Ok(Filter {
            labels: q.label_selector()?,
            fields,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(&meta::labels(obj)) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches(obj) {
                return false;
            }
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// The single object name this filter pins, if any (narrows the key range).
    fn single_name(&self) -> Option<&str> {
        self.fields.as_ref().and_then(|f| f.single_name())
    }
}

fn prefix_for(info: &ResourceInfo, namespace: Option<&str>, filter: &Filter) -> String {
    match filter.single_name() {
        Some(name) if namespace.is_some() || !info.namespaced => info.key(namespace, name),
        _ => info.list_prefix(namespace),
    }
}

/// GET one object.
pub async fn get(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let obj = if q.get("resourceVersion") == Some("0") {
        let cache = state
            .cache
            .resource(info)
            .ok_or_else(|| internal("no cache"))?;
        cache
            .get(&info.key(ns, name))
            .map(|o| o.object())
            .ok_or_else(|| ApiError::not_found(info.group, &info.qualified_plural(), name))?
    } else {
        state.store.get(info, ns, name).await?
    };
    match representation(headers) {
        Representation::Table => {
            let t = table::to_table(
                info,
                std::slice::from_ref(&obj),
                Utc::now(),
                IncludeObject::from_query(q.get("includeObject")),
            );
            Ok(response::json(StatusCode::OK, &t))
        }
        Representation::PartialObjectMetadata => {
            Ok(response::json(StatusCode::OK, &partial_metadata(&obj)))
        }
        Representation::Object => Ok(response::json(StatusCode::OK, &obj)),
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A continue token: upstream's base64 JSON `{"v":"meta.k8s.io/v1","rv":N,"start":"<key suffix>"}`.
fn encode_continue(rv: i64, start_key_suffix: &str) -> String {
    let j = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key_suffix});
    base64::engine::general_purpose::URL_SAFE.encode(j.to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start))
}

/// LIST: from the watch cache when it can answer (RV=0, or a consistent read once the
/// cache caught up with etcd), otherwise paginated from etcd.
pub async fn list(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(info, q)?;
    let limit = q.i64("limit")?.unwrap_or(0).max(0);
    let continue_token = q.get("continue").filter(|s| !s.is_empty());
    let rv = q.get("resourceVersion").filter(|s| !s.is_empty());
    let rv_match = q.get("resourceVersionMatch").filter(|s| !s.is_empty());
    let cache = state
        .cache
        .resource(info)
        .ok_or_else(|| internal("no cache"))?;
    let prefix = prefix_for(info, ns, &filter);

    let (items, list_rv, cont): (Vec<ItemRef>, i64, Option<String>) = if continue_token.is_none()
        && rv_match != Some("Exact")
    {
        // Serve from the cache: RV=0 at once; otherwise once the cache reflects the
        // revision asked for (or etcd's current one for a consistent read).
        let wanted = match rv {
            Some("0") => 0,
            Some(r) => r
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
            None => state.storage.current_revision().await.map_err(internal)?,
        };
        let caught_up = wanted == 0 || state.cache.wait_for(wanted, Duration::from_secs(3)).await;
        let list_rv = state.cache.revision();
        let objs = cache.list(&prefix);
        let matching: Vec<ItemRef> = objs
            .into_iter()
            .filter(|o| filter.is_empty() || filter.matches(&o.selectable))
            .map(ItemRef::Cached)
            .collect();
        if caught_up && (limit == 0 || matching.len() as i64 <= limit || rv == Some("0")) {
            (matching, list_rv, None)
        } else {
            list_from_etcd(state, info, ns, &prefix, &filter, limit, None, 0).await?
        }
    } else {
        let (rev, start) = match continue_token {
            Some(t) => {
                let (rev, start) = decode_continue(t)?;
                (rev, Some(format!("{}{}", info.list_prefix(ns), start)))
            }
            None => (rv.and_then(|r| r.parse().ok()).unwrap_or(0), None),
        };
        list_from_etcd(state, info, ns, &prefix, &filter, limit, start, rev).await?
    };

    match representation(headers) {
        Representation::Table => {
            let values: Vec<Value> = items.iter().map(|i| i.get().object()).collect();
            let mut t = table::to_table(
                info,
                &values,
                Utc::now(),
                IncludeObject::from_query(q.get("includeObject")),
            );
            let m = meta::meta_mut(&mut t);
            m.insert("resourceVersion".into(), json!(list_rv.to_string()));
            if let Some(c) = &cont {
                m.insert("continue".into(), json!(c));
            }
            Ok(response::json(StatusCode::OK, &t))
        }
        Representation::PartialObjectMetadata => {
            let items: Vec<Value> = items
                .iter()
                .map(|i| partial_metadata(&i.get().object()))
                .collect();
            let mut md = json!({"resourceVersion": list_rv.to_string()});
            if let Some(c) = &cont {
                md["continue"] = json!(c);
            }
            Ok(response::json(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": md, "items": items}),
            ))
        }
        Representation::Object => {
            // Splice the cached JSON bytes: no re-serialization of items.
            let mut md = json!({"resourceVersion": list_rv.to_string()});
            if let Some(c) = &cont {
                md["continue"] = json!(c);
            }
            let mut buf = BytesMut::with_capacity(
                items.iter().map(|i| i.get().bytes.len()).sum::<usize>() + 256,
            );
            buf.put_slice(
                format!(
                    "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
                    info.list_kind(),
                    info.api_version(),
                    md
                )
                .as_bytes(),
            );
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                buf.put_slice(&item.get().bytes);
            }
            buf.put_slice(b"]}");
            Ok(response::raw_json(StatusCode::OK, buf.freeze()))
        }
    }
}

/// A list item: a cached object (bytes ready) or one just read from etcd.
enum ItemRef {
    Cached(Arc<CachedObject>),
    Owned(CachedObject),
}

impl ItemRef {
    fn get(&self) -> &CachedObject {
        match self {
            ItemRef::Cached(c) => c,
            ItemRef::Owned(c) => c,
        }
    }
}

/// Pages through etcd at one revision until `limit` matching items are collected.
#[allow(clippy::too_many_arguments)]
async fn list_from_etcd(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    prefix: &str,
    filter: &Filter,
    limit: i64,
    start: Option<String>,
    revision: i64,
) -> Result<(Vec<ItemRef>, i64, Option<String>), ApiError> {
    let mut out = Vec::new();
    let mut rev = revision;
    let mut start = start;
    let page_size = if limit > 0 { limit } else { 1000 };
    loop {
        let page = state.storage.list(prefix, start.as_deref(), page_size, rev).await.map_err(|e| {
            let msg = e.to_string();
            if msg.contains("compacted") {
                ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.")
            } else {
                internal(msg)
            }
        })?;
        rev = page.revision;
        let more = page.more;
        let mut last_key = None;
        for (key, stored) in page.items {
            if let Some(o) =
                CachedObject::decode(info, key.clone(), &stored.value, stored.mod_revision)
            {
                if filter.is_empty() || filter.matches(&o.selectable) {
                    out.push(ItemRef::Owned(o));
                }
            }
            last_key = Some(key);
            if limit > 0 && out.len() as i64 >= limit {
                break;
            }
        }
        let next = last_key.map(|k| format!("{k}\u{0}"));
        let reached = limit > 0 && out.len() as i64 >= limit;
        if !more && !reached {
            return Ok((out, rev, None));
        }
        if reached {
            // More may follow after the last key we looked at.
            let Some(next) = next else {
                return Ok((out, rev, None));
            };
            let probe = state
                .storage
                .list(prefix, Some(&next), 1, rev)
                .await
                .map_err(internal)?;
            if probe.items.is_empty() {
                return Ok((out, rev, None));
            }
            let base = info.list_prefix(ns);
            let suffix = next.strip_prefix(&base).unwrap_or(&next).to_string();
            return Ok((out, rev, Some(encode_continue(rev, &suffix))));
        }
        start = next;
    }
}

/// GET of a subresource: `status`, `scale`.
pub async fn get_subresource(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Subresource,
    _q: &Query,
) -> Result<Response, ApiError> {
    match sub {
        Subresource::Status | Subresource::Approval => {
            let obj = state.store.get(info, ns, name).await?;
            Ok(response::json(StatusCode::OK, &obj))
        }
        Subresource::Scale => {
            let obj = state.store.get(info, ns, name).await?;
            Ok(response::json(
                StatusCode::OK,
                &crate::subresources::scale_of(info, &obj),
            ))
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

/// How a watcher sees an event through its filter (upstream's cacheWatcher semantics:
/// an object leaving the filter is DELETED, one entering it ADDED).
fn filtered(ev: &CacheEvent, filter: &Filter, prefix: &str) -> Option<WatchEventType> {
    if !ev.object.key.starts_with(prefix) {
        return None;
    }
    if filter.is_empty() {
        return Some(ev.kind);
    }
    let cur = filter.matches(&ev.object.selectable);
    let prev = ev
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches(&p.selectable));
    match ev.kind {
        WatchEventType::Added => cur.then_some(WatchEventType::Added),
        WatchEventType::Deleted => (prev || cur).then_some(WatchEventType::Deleted),
        WatchEventType::Modified => match (prev, cur) {
            (true, true) => Some(WatchEventType::Modified),
            (false, true) => Some(WatchEventType::Added),
            (true, false) => Some(WatchEventType::Deleted),
            (false, false) => None,
        },
    }
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

/// WATCH: a chunked stream of JSON event lines fed by the watch cache.
pub async fn watch(
    state: &Arc<AppState>,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(info, q)?;
    let cache = state
        .cache
        .resource(info)
        .ok_or_else(|| internal("no cache"))?
        .clone();
    let prefix = prefix_for(info, ns, &filter);
    let send_initial = q.flag("sendInitialEvents");
    let bookmarks = q.flag("allowWatchBookmarks");
    let rv = match q.get("resourceVersion").filter(|s| !s.is_empty()) {
        None | Some("0") => None,
        Some(r) => Some(
            r.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
    };
    if let Some(r) = rv {
        // A watch from a revision the cache has not seen yet waits for it briefly.
        state.cache.wait_for(r, Duration::from_secs(3)).await;
    }
    let start = cache.watch(
        &prefix,
        if send_initial { None } else { rv },
        rv.is_none() || send_initial,
    )?;
    let table_mode = representation(headers) == Representation::Table;
    let include_object = IncludeObject::from_query(q.get("includeObject"));
    let timeout = match q.i64("timeoutSeconds")? {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => Duration::from_secs(1800 + rand::random::<u64>() % 1800),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let watch_cache = state.cache.clone();
    let kind = info.kind;
    let api_version = info.api_version();
    let encode = move |ev_kind: WatchEventType, obj: &CachedObject| -> Bytes {
        if table_mode {
            let t = table::to_table(
                info,
                std::slice::from_ref(&obj.object()),
                Utc::now(),
                include_object,
            );
            let mut t = t;
            meta::meta_mut(&mut t)
                .insert("resourceVersion".into(), json!(obj.revision.to_string()));
            event_line(
                ev_kind.as_str(),
                &serde_json::to_vec(&t).unwrap_or_default(),
            )
        } else {
            event_line(ev_kind.as_str(), &obj.bytes)
        }
    };
    let bookmark = move |rev: i64, initial_end: bool| -> Bytes {
        let mut md = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": md});
        event_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    };
    tokio::spawn(async move {
        let mut live = start.live;
        let mut last_rev = rv.unwrap_or(0);
        for ev in &start.initial {
            if let Some(k) = filtered(ev, &filter, &prefix) {
                last_rev = last_rev.max(ev.revision);
                if tx.send(Ok(encode(k, &ev.object))).await.is_err() {
                    return;
                }
            }
        }
        if send_initial && bookmarks {
            let rev = watch_cache.revision().max(last_rev);
            if tx.send(Ok(bookmark(rev, true))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        // Events the client asked to skip: those at or before its resourceVersion (the
        // cache may not have reached it when the watch started).
        let skip_upto = rv.unwrap_or(0);
        // A client resumes after the last resourceVersion it saw, so the stream must
        // never stop, or bookmark, partway through one revision's events (batched
        // creates share one). The cache publishes a revision only once all its events
        // are broadcast: those can then be drained from `live` without waiting.
        let gone = || {
            let st = ApiError::gone("too old resource version").to_status();
            Ok(event_line(
                "ERROR",
                &serde_json::to_vec(&st).unwrap_or_default(),
            ))
        };
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    // Finish the revision last sent, then close.
                    if watch_cache.revision() < last_rev {
                        watch_cache.wait_for(last_rev, Duration::from_secs(1)).await;
                    }
                    while let Ok(ev) = live.try_recv() {
                        if ev.revision > last_rev { break; }
                        if ev.revision <= skip_upto { continue; }
                        if let Some(k) = filtered(&ev, &filter, &prefix) {
                            if tx.send(Ok(encode(k, &ev.object))).await.is_err() { return; }
                        }
                    }
                    return;
                }
                _ = tick.tick(), if bookmarks => {
                    // Send what is queued, then bookmark the published revision if
                    // nothing past it was sent (else the events carry the revision).
                    let published = watch_cache.revision();
                    loop {
                        match live.try_recv() {
                            Ok(ev) => {
                                if ev.revision <= skip_upto { continue; }
                                last_rev = last_rev.max(ev.revision);
                                if let Some(k) = filtered(&ev, &filter, &prefix) {
                                    if tx.send(Ok(encode(k, &ev.object))).await.is_err() { return; }
                                }
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(_) => {
                                let _ = tx.send(gone()).await;
                                return;
                            }
                        }
                    }
                    if last_rev <= published && tx.send(Ok(bookmark(published, false))).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.revision <= skip_upto { continue; }
                        last_rev = last_rev.max(ev.revision);
                        if let Some(k) = filtered(&ev, &filter, &prefix) {
                            if tx.send(Ok(encode(k, &ev.object))).await.is_err() { return; }
                        }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {
                        // Too slow (or the cache was reset): tell the client to re-list.
                        let _ = tx.send(gone()).await;
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "web-7\u{0}");
        assert_eq!(
            decode_continue(&t).ok(),
            Some((42, "web-7\u{0}".to_string()))
        );
        assert!(decode_continue("not-base64!").is_err());
        let evil =
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"rv":1,"start":"../../x"}"#);
        assert!(decode_continue(&evil).is_err());
    }
}

//! The HTTP front: one catch-all handler parses the path against the registry and
//! dispatches to generic read/write handlers; there is no route per resource.

pub mod path;
pub mod query;
pub mod read;
pub mod response;
pub mod write;

use std::{sync::Arc, time::Instant};

use api_types::{ApiError, Subresource};
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    response::Response,
};

use crate::{authn::UserInfo, authz::RequestInfo, discovery, server::AppState};
use path::Route;
use query::Query;

/// Entry point for every request.
pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = path::parse(&path);
    let (verb, resource) = metric_labels(&method, &route, req.uri().query());
    let long_running = verb == "WATCH" || verb == "CONNECT";
    let mutating = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // Max in-flight: long-running requests are exempt, as upstream.
    let _permit = if long_running {
        None
    } else {
        let sem = if mutating {
            &state.mutating_inflight
        } else {
            &state.readonly_inflight
        };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let resp = response::error(&ApiError::too_many_requests());
                state
                    .metrics
                    .observe(verb, resource, 429, started.elapsed());
                return resp;
            }
        }
    };
    // The user is taken out of the request and put back once authorized (no clones).
    let mut req = req;
    let user = req
        .extensions_mut()
        .remove::<UserInfo>()
        .unwrap_or_else(UserInfo::anonymous);
    // `Impersonate-*` headers switch the identity once the caller may impersonate it.
    let user =
        match crate::authz::impersonation::impersonate(&state.authorizer, user, req.headers()) {
            Ok(u) => u,
            Err(e) => return response::error(&e),
        };
    let info = request_info(&method, &path, &route, req.uri().query());
    let decision = crate::authz::Authorizer::authorize(&state.authorizer, &user, &info);
    if matches!(decision, crate::authz::Decision::Allow) {
        crate::audit::annotate("authorization.k8s.io/decision", "allow");
        crate::audit::annotate("authorization.k8s.io/reason", "");
    }
    let resp = match decision {
        crate::authz::Decision::Deny(reason) => {
            crate::audit::annotate("authorization.k8s.io/decision", "forbid");
            crate::audit::annotate("authorization.k8s.io/reason", &reason);
            response::error(&crate::authz::forbidden(&user, &info, &reason))
        }
        crate::authz::Decision::Allow => match route {
            // Boxed: the request futures above this one (middleware, the router) are
            // moved several times before they are polled, and this one is the largest
            // (every handler's state in one enum).
            Ok(route) => Box::pin(handle(&state, route, {
                req.extensions_mut().insert(user);
                req
            }))
            .await
            .unwrap_or_else(|e| response::error(&e)),
            Err(e) => response::error(&e),
        },
    };
    if !long_running {
        state
            .metrics
            .observe(verb, resource, resp.status().as_u16(), started.elapsed());
    }
    resp
}

/// Upstream's RequestInfo of a request, for authorization.
pub(crate) fn request_info(
    method: &Method,
    path: &str,
    route: &Result<Route, ApiError>,
    query: Option<&str>,
) -> RequestInfo {
    match route {
        Ok(Route::Resource {
            info,
            namespace,
            name,
            sub,
        }) => {
            let watch =
                query.is_some_and(|q| q.split('&').any(|p| p == "watch=1" || p == "watch=true"));
            let verb = match (method, name.is_some()) {
                (&Method::GET, false) if watch => "watch",
                (&Method::GET, false) => "list",
                (&Method::GET, true) => "get",
                (&Method::POST, _) => "create",
                (&Method::PUT, _) => "update",
                (&Method::PATCH, _) => "patch",
                (&Method::DELETE, false) => "deletecollection",
                (&Method::DELETE, true) => "delete",
                _ => "unknown",
            };
            RequestInfo {
                verb: verb.into(),
                is_resource_request: true,
                api_group: info.group.into(),
                api_version: info.version.into(),
                resource: info.plural.into(),
                subresource: sub.map(|s| s.name().to_string()).unwrap_or_default(),
                // A namespace is its own namespace for authorization, as upstream.
                namespace: namespace
                    .clone()
                    .or_else(|| (info.kind == "Namespace").then(|| name.clone()).flatten())
                    .unwrap_or_default(),
                name: name.clone().unwrap_or_default(),
                path: path.to_string(),
            }
        }
        Ok(Route::MetricsApi(target)) => crate::metrics_api::request_info(target, method, path),
        Ok(Route::NamespaceFinalize(ns)) => RequestInfo {
            verb: "update".into(),
            is_resource_request: true,
            api_group: String::new(),
            api_version: "v1".into(),
            resource: "namespaces".into(),
            subresource: "finalize".into(),
            namespace: ns.clone(),
            name: ns.clone(),
            path: path.to_string(),
        },
        _ => RequestInfo {
            verb: method.as_str().to_ascii_lowercase(),
            is_resource_request: false,
            api_group: String::new(),
            api_version: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: path.to_string(),
        },
    }
}

fn metric_labels(
    method: &Method,
    route: &Result<Route, ApiError>,
    query: Option<&str>,
) -> (&'static str, &'static str) {
    let resource = match route {
        Ok(Route::Resource { info, .. }) => info.plural,
        _ => "",
    };
    let verb = match (method, route) {
        (&Method::GET, Ok(Route::Resource { name: None, .. })) => {
            if query.is_some_and(|q| q.contains("watch=1") || q.contains("watch=true")) {
                "WATCH"
            } else {
                "LIST"
            }
        }
        (&Method::GET, Ok(Route::Resource { sub: Some(s), .. }))
            if matches!(
                s.name(),
                "exec" | "attach" | "portforward" | "proxy" | "log"
            ) =>
        {
            "CONNECT"
        }
        (&Method::POST, Ok(Route::Resource { sub: Some(s), .. }))
            if matches!(s.name(), "exec" | "attach" | "portforward") =>
        {
            "CONNECT"
        }
        (m, _) => static_method(m),
    };
    (verb, resource)
}

/// The method's name for a metric label, without allocating one per request.
fn static_method(m: &Method) -> &'static str {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ]
    .into_iter()
    .zip([
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ])
    .find_map(|(known, name)| (known == m).then_some(name))
    .unwrap_or("OTHER")
}

async fn handle(state: &Arc<AppState>, route: Route, req: Request) -> Result<Response, ApiError> {
    let method = req.method().clone();
    match route {
        Route::Healthz | Route::Livez => Ok(response::text(StatusCode::OK, "ok")),
        Route::Readyz => {
            if state.etcd_ready().await {
                Ok(response::text(StatusCode::OK, "ok"))
            } else {
                Ok(response::text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "[-]etcd failed: reason withheld\nreadyz check failed",
                ))
            }
        }
        Route::Metrics => {
            let mut r = Response::new(Body::from(state.metrics.render()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        Route::Version => Ok(response::json(StatusCode::OK, &discovery::version())),
        Route::ApiVersions => Ok(response::json(
            StatusCode::OK,
            &discovery::api_versions(&state.advertise),
        )),
        Route::ApiGroupList => Ok(response::json(StatusCode::OK, &discovery::api_group_list())),
        Route::ApiGroup(g) => discovery::api_group(&g)
            .map(|v| response::json(StatusCode::OK, &v))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            }),
        Route::ApiResources { group, version } => discovery::api_resource_list(&group, &version)
            .map(|v| response::json(StatusCode::OK, &v))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            }),
        Route::OpenApiV2 => {
            // kubectl asks for the protobuf form only; the `@` spelling is matched as a
            // plain string (it is not a valid media type) and answered with `.v1.0`.
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains(api_types::openapi::V2_PROTOBUF_ACCEPT)
                || accept.contains(api_types::openapi::V2_PROTOBUF_ACCEPT_ALT)
            {
                let mut r = Response::new(Body::from(
                    api_types::openapi::v2_document_protobuf().to_vec(),
                ));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(api_types::openapi::V2_PROTOBUF_CONTENT_TYPE),
                );
                Ok(r)
            } else {
                Ok(response::raw_json(
                    StatusCode::OK,
                    bytes::Bytes::from(api_types::openapi::v2_document().to_vec()),
                ))
            }
        }
        Route::OpenApiV3Index => Ok(response::json(
            StatusCode::OK,
            &api_types::openapi::v3_index(),
        )),
        Route::OpenApiV3 { group, version } => api_types::openapi::v3_document(&group, &version)
            .map(|d| response::raw_json(StatusCode::OK, bytes::Bytes::from(d.to_vec())))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            }),
        Route::NamespaceFinalize(ns) => write::finalize_namespace(state, &ns, req).await,
        Route::MetricsApi(target) => crate::metrics_api::serve(state, target, req).await,
        Route::Resource {
            info,
            namespace,
            name,
            sub,
        } => {
            let query = Query::parse(req.uri().query());
            let ns = namespace.as_deref();
            match (method, name.as_deref(), sub) {
                (Method::GET, None, None) => {
                    if query.flag("watch") {
                        read::watch(state, info, ns, &query, req.headers()).await
                    } else {
                        read::list(state, info, ns, &query, req.headers()).await
                    }
                }
                (Method::GET, Some(n), None) => {
                    read::get(state, info, ns, n, &query, req.headers()).await
                }
                (_, Some(n), Some(s))
                    if info.kind == "Pod"
                        && matches!(
                            s,
                            Subresource::Log
                                | Subresource::Exec
                                | Subresource::Attach
                                | Subresource::PortForward
                        ) =>
                {
                    crate::proxy::pod_connect(state, info, ns, n, s, req).await
                }
                (Method::GET, Some(n), Some(s)) => {
                    read::get_subresource(state, info, ns, n, s, &query).await
                }
                (Method::POST, None, None) => write::create(state, info, ns, &query, req).await,
                (Method::POST, Some(n), Some(s)) => {
                    write::create_subresource(state, info, ns, n, s, &query, req).await
                }
                (Method::PUT, Some(n), s) => {
                    write::update(state, info, ns, n, s, &query, req).await
                }
                (Method::PATCH, Some(n), s) => {
                    write::patch(state, info, ns, n, s, &query, req).await
                }
                (Method::DELETE, Some(n), None) => {
                    write::delete(state, info, ns, n, &query, req).await
                }
                (Method::DELETE, None, None) => {
                    write::delete_collection(state, info, ns, &query, req).await
                }
                (m, _, _) => Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({m})"
                ))),
            }
        }
    }
}

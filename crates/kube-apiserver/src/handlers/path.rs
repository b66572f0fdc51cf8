//! Parsing request paths into routes over the resource registry.

use api_types::{ApiError, ResourceInfo, Subresource};

use crate::store::resource_or_404;

/// What a request path addresses.
#[derive(Debug)]
pub enum Route {
    Version,
    ApiVersions,
    ApiGroupList,
    ApiGroup(String),
    ApiResources {
        group: String,
        version: String,
    },
    /// A collection (`name` None) or one object, optionally a subresource of it.
    Resource {
        info: &'static ResourceInfo,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<Subresource>,
    },
    /// `/api/v1/namespaces/{ns}/finalize` and other namespace-only subresources.
    NamespaceFinalize(String),
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Healthz,
    Livez,
    Readyz,
    Metrics,
    /// `metrics.k8s.io`, served by `metrics_api`.
    MetricsApi(crate::metrics_api::Target),
}

pub fn parse(path: &str) -> Result<Route, ApiError> {
    crate::request_path::check(path)?;
    // segments are percent-decoded after splitting, as Go's decoded URL.Path is
    // (encoded slashes and dot segments were refused by the check above)
    let decoded: Vec<std::borrow::Cow<'_, str>> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::bad_request("invalid UTF-8 in the request path"))?;
    let segs: Vec<&str> = decoded.iter().map(|s| s.as_ref()).collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz", ..] => Ok(Route::Healthz),
        ["livez", ..] => Ok(Route::Livez),
        ["readyz", ..] => Ok(Route::Readyz),
        ["metrics"] => Ok(Route::Metrics),
        ["openapi", "v2"] | ["swagger.json"] => Ok(Route::OpenApiV2),
        ["openapi", "v3"] => Ok(Route::OpenApiV3Index),
        ["openapi", "v3", "api", v] => Ok(Route::OpenApiV3 {
            group: String::new(),
            version: v.to_string(),
        }),
        ["openapi", "v3", "apis", g, v] => Ok(Route::OpenApiV3 {
            group: g.to_string(),
            version: v.to_string(),
        }),
        ["api"] => Ok(Route::ApiVersions),
        ["apis"] => Ok(Route::ApiGroupList),
        ["apis", crate::metrics_api::GROUP, rest @ ..] => {
            crate::metrics_api::route(rest).map(Route::MetricsApi)
        }
        ["api", v] => Ok(Route::ApiResources {
            group: String::new(),
            version: v.to_string(),
        }),
        ["apis", g] => Ok(Route::ApiGroup(g.to_string())),
        ["apis", g, v] => Ok(Route::ApiResources {
            group: g.to_string(),
            version: v.to_string(),
        }),
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Err(not_found()),
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let resource = |plural: &str,
                    namespace: Option<&str>,
                    name: Option<&str>,
                    sub: Option<&str>|
     -> Result<Route, ApiError> {
        let info = resource_or_404(group, version, plural)?;
        if namespace.is_some() && !info.namespaced {
            return Err(not_found());
        }
        let sub = match sub {
            None => None,
            Some(s) => match Subresource::from_name(s) {
                Some(sr) if info.has_subresource(sr) => Some(sr),
                _ => return Err(not_found()),
            },
        };
        Ok(Route::Resource {
            info,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            sub,
        })
    };
    match rest {
        // /namespaces/{ns}/... is a namespaced resource unless it is the namespace itself.
        ["namespaces", ns, "finalize"] if group.is_empty() => {
            Ok(Route::NamespaceFinalize(ns.to_string()))
        }
        ["namespaces", ns, plural] if group.is_empty() && *plural == "status" => {
            resource("namespaces", None, Some(ns), Some("status"))
        }
        ["namespaces", ns, plural] => resource(plural, Some(ns), None, None),
        ["namespaces", ns, plural, name] => resource(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => resource(plural, Some(ns), Some(name), Some(sub)),
        // Proxy subpaths: /pods/{name}/proxy/<path...>
        ["namespaces", ns, plural, name, sub, ..] if *sub == "proxy" => {
            resource(plural, Some(ns), Some(name), Some(sub))
        }
        [plural] => resource(plural, None, None, None),
        [plural, name] => resource(plural, None, Some(name), None),
        [plural, name, sub] => resource(plural, None, Some(name), Some(sub)),
        [plural, name, sub, ..] if *sub == "proxy" => resource(plural, None, Some(name), Some(sub)),
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_decoded() {
        match parse("/api/v1/nodes/%3Cnode-name%3E") {
            Ok(Route::Resource { name, .. }) => assert_eq!(name.as_deref(), Some("<node-name>")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse("/api/v1/nodes/%ff%fe").is_err(), "not UTF-8");
    }

    #[test]
    fn routes() {
        match parse("/api/v1/namespaces/default/pods/web/status") {
            Ok(Route::Resource {
                info,
                namespace,
                name,
                sub,
            }) => {
                assert_eq!(info.plural, "pods");
                assert_eq!(namespace.as_deref(), Some("default"));
                assert_eq!(name.as_deref(), Some("web"));
                assert_eq!(sub, Some(Subresource::Status));
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse("/api/v1/namespaces/kube-system") {
            Ok(Route::Resource {
                info,
                namespace,
                name,
                ..
            }) => {
                assert_eq!(info.plural, "namespaces");
                assert!(namespace.is_none());
                assert_eq!(name.as_deref(), Some("kube-system"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse("/apis/apps/v1/deployments"),
            Ok(Route::Resource {
                namespace: None,
                ..
            })
        ));
        assert!(
            parse("/api/v1/namespaces/default/nodes").is_err(),
            "cluster-scoped under a namespace"
        );
        assert!(parse("/api/v1/nosuch").is_err());
        assert!(parse("/api/v1/namespaces/default/configmaps/x/status").is_err());
    }
}

//! Resource types through discovery (`/api`, `/apis` and each group version's
//! resource list), loaded once per run: what `po`, `deploy`, `rs.apps`,
//! `deployments.v1.apps` or `all` mean, and which resource serves a manifest's
//! `apiVersion`/`kind`.

use futures::future::join_all;
use serde_json::Value;

use crate::client::Client;
use crate::errors::{Error, Result};

/// What Go's `shouldEscape(c, encodePath)` escapes: all but unreserved
/// characters and `$&+,/:;=@`.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    pub group: String,
    pub version: String,
    /// Plural name (`deployments`).
    pub name: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
    pub categories: Vec<String>,
    /// Whether `version` is the group's preferred version.
    pub preferred: bool,
}

impl ApiResource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pod`, `deployment.apps`: how upstream prefixes names (`deployment.apps/x`).
    pub fn group_kind(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// `pods`, `deployments.apps`: how upstream names the resource in messages.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.name, self.group)
        }
    }

    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection URL; `namespace` is ignored for cluster-scoped resources
    /// and `None` means all namespaces.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => {
                format!("{}/namespaces/{ns}/{}", self.prefix(), self.name)
            }
            _ => format!("{}/{}", self.prefix(), self.name),
        }
    }

    /// The object's URL path; the name escaped as Go's `url.URL` escapes a path
    /// (client-go), so `<node-name>` reaches the server rather than failing here.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        let name = percent_encoding::utf8_percent_encode(name, PATH_SEGMENT);
        format!("{}/{name}", self.collection_path(Some(namespace)))
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Everything the server serves.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every group version, core first, in the server's order.
    pub group_versions: Vec<String>,
    /// Resources of every group version (no subresources).
    pub resources: Vec<ApiResource>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_list(list: &Value, group: &str, version: &str, preferred: bool) -> Vec<ApiResource> {
    let Some(items) = list.get("resources").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|r| {
            let name = r.get("name")?.as_str()?;
            if name.contains('/') {
                return None;
            }
            let kind = r.get("kind").and_then(Value::as_str).unwrap_or_default();
            let singular = r
                .get("singularName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| kind.to_lowercase(), str::to_string);
            Some(ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                name: name.to_string(),
                singular,
                kind: kind.to_string(),
                namespaced: r
                    .get("namespaced")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                short_names: strings(&r["shortNames"]),
                verbs: strings(&r["verbs"]),
                categories: strings(&r["categories"]),
                preferred,
            })
        })
        .collect()
}

impl Discovery {
    pub async fn load(client: &Client) -> Result<Discovery> {
        let core = client.get("/api").await?;
        let groups = client.get("/apis").await?;
        // (group, version, preferred)
        let mut wanted: Vec<(String, String, bool)> = strings(&core["versions"])
            .into_iter()
            .enumerate()
            .map(|(i, v)| (String::new(), v, i == 0))
            .collect();
        for group in groups["groups"].as_array().into_iter().flatten() {
            let name = group["name"].as_str().unwrap_or_default();
            let preferred = group["preferredVersion"]["version"]
                .as_str()
                .unwrap_or_default();
            for v in group["versions"].as_array().into_iter().flatten() {
                let version = v["version"].as_str().unwrap_or_default();
                wanted.push((name.to_string(), version.to_string(), version == preferred));
            }
        }
        let fetches = wanted.iter().map(|(g, v, _)| {
            let path = if g.is_empty() {
                format!("/api/{v}")
            } else {
                format!("/apis/{g}/{v}")
            };
            async move { client.get(&path).await }
        });
        let lists = join_all(fetches).await;
        let mut discovery = Discovery::default();
        for ((group, version, preferred), list) in wanted.iter().zip(lists) {
            let gv = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            discovery.group_versions.push(gv);
            match list {
                Ok(list) => discovery
                    .resources
                    .extend(parse_list(&list, group, version, *preferred)),
                Err(e) => tracing::warn!(group, version, error = %e, "discovery failed"),
            }
        }
        Ok(discovery)
    }

    /// The preferred-version resources.
    pub fn preferred(&self) -> impl Iterator<Item = &ApiResource> {
        self.resources.iter().filter(|r| r.preferred)
    }

    /// Resolves one type argument (`po`, `pods`, `Pod`, `rs.apps`,
    /// `deployments.v1.apps`); `all` and other categories give several.
    pub fn resolve(&self, arg: &str) -> Result<Vec<ApiResource>> {
        let lower = arg.to_lowercase();
        if let Some(one) = self.resolve_one(&lower) {
            return Ok(vec![one]);
        }
        let by_category: Vec<ApiResource> = self
            .preferred()
            .filter(|r| r.categories.contains(&lower))
            .cloned()
            .collect();
        if !by_category.is_empty() {
            return Ok(by_category);
        }
        Err(Error::usage(format!(
            "the server doesn't have a resource type \"{arg}\""
        )))
    }

    fn resolve_one(&self, lower: &str) -> Option<ApiResource> {
        let matches = |r: &ApiResource, name: &str| {
            r.name == name
                || r.singular == name
                || r.short_names.iter().any(|s| s == name)
                || r.kind.to_lowercase() == name
        };
        // Plain names first (core group wins), then `resource.group` and
        // `resource.version.group`.
        let plain = self
            .preferred()
            .find(|r| r.name == lower)
            .or_else(|| self.preferred().find(|r| matches(r, lower)));
        if let Some(r) = plain {
            return Some(r.clone());
        }
        let (name, rest) = lower.split_once('.')?;
        if let Some(r) = self
            .preferred()
            .find(|r| r.group == rest && matches(r, name))
        {
            return Some(r.clone());
        }
        let (version, group) = rest.split_once('.').unwrap_or((rest, ""));
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && matches(r, name))
            .cloned()
    }

    /// The resource serving a manifest object read from `source`; when none
    /// does, upstream's builder error naming the object and its file.
    pub fn for_object(&self, object: &Value, source: &str) -> Result<ApiResource> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
            .ok_or_else(|| {
                let meta = &object["metadata"];
                let name = meta["name"].as_str().unwrap_or_default();
                let namespace = meta["namespace"].as_str().unwrap_or_default();
                Error::usage(format!(
                    "resource mapping not found for name: {name:?} namespace: {namespace:?} from {source:?}: no matches for kind {kind:?} in version {api_version:?}\nensure CRDs are installed first"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn discovery() -> Discovery {
        let core = json!({"resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/status", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": ["get"], "shortNames": ["ev"]}]});
        let apps = json!({"resources": [
            {"name": "replicasets", "singularName": "replicaset", "namespaced": true, "kind": "ReplicaSet", "verbs": ["get"], "shortNames": ["rs"], "categories": ["all"]}]});
        let events = json!({"resources": [
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": ["get"], "shortNames": ["ev"]}]});
        let mut d = Discovery::default();
        d.resources.extend(parse_list(&core, "", "v1", true));
        d.resources.extend(parse_list(&apps, "apps", "v1", true));
        d.resources
            .extend(parse_list(&events, "events.k8s.io", "v1", true));
        d
    }

    #[test]
    fn resolves_names_short_names_and_groups() {
        let d = discovery();
        let name = |arg: &str| {
            d.resolve(arg).map(|r| {
                r.iter()
                    .map(ApiResource::qualified_name)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(name("po").ok(), Some(vec!["pods".to_string()]));
        assert_eq!(name("Pod").ok(), Some(vec!["pods".to_string()]));
        assert_eq!(
            name("rs.apps").ok(),
            Some(vec!["replicasets.apps".to_string()])
        );
        assert_eq!(
            name("replicasets.v1.apps").ok(),
            Some(vec!["replicasets.apps".to_string()])
        );
        assert_eq!(name("events").ok(), Some(vec!["events".to_string()]));
        assert_eq!(
            name("events.events.k8s.io").ok(),
            Some(vec!["events.events.k8s.io".to_string()])
        );
        assert_eq!(
            name("all").ok(),
            Some(vec!["pods".to_string(), "replicasets.apps".to_string()])
        );
        assert_eq!(
            name("foo").err().map(|e| e.to_string()),
            Some("error: the server doesn't have a resource type \"foo\"".to_string())
        );
        assert_eq!(d.resources.len(), 4, "subresources are skipped");
    }
}

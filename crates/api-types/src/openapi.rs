//! The OpenAPI documents the apiserver serves, generated from k8s-openapi's `JsonSchema`
//! impls and the resource registry.
//!
//! - `/openapi/v3` → [`v3_index`]: `{"paths": {"api/v1": {"serverRelativeURL":
//!   "/openapi/v3/api/v1?hash=…"}, "apis/apps/v1": {…}}}`.
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>` → [`v3_document`]: one
//!   OpenAPI 3.0 document per group-version with `components.schemas` (refs
//!   `#/components/schemas/io.k8s.api.core.v1.PodSpec`, property refs wrapped in
//!   `allOf` as upstream does so descriptions survive) and `paths`.
//! - `/openapi/v2` → [`v2_document`]: Swagger 2.0 JSON with every definition and path.
//!
//! What kubectl 1.32 reads from them:
//! - `kubectl explain`: the v3 document of the resource's group-version; it finds the
//!   kind through the `x-kubernetes-group-version-kind` of an operation on the resource's
//!   collection or item path, then the schema whose `x-kubernetes-group-version-kind`
//!   list contains that GVK, and walks `properties` / `items` / `allOf` / `$ref`.
//! - `--validate=strict` (create/apply/replace/edit): server-side field validation is
//!   used when some `patch` operation of the group-version's v3 document carries the
//!   kind's GVK (a single object) and a `fieldValidation` parameter; otherwise kubectl
//!   falls back to client-side validation against `/openapi/v2`, which it requests as
//!   protobuf only ([`v2_document_protobuf`]).
//! - client-side `kubectl apply`: the three-way strategic merge patch is computed from
//!   the v3 schema (`x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`),
//!   when the `patch` operation lists `application/strategic-merge-patch+json`.
//!
//! Documents are generated once, lazily, and cached.

mod definitions;
mod patch_meta;
mod paths;
mod v2_proto;

use std::sync::{Arc, OnceLock};

use serde_json::{json, Map, Value};

use crate::registry;
use definitions::{Definitions, DELETE_OPTIONS, PATCH, STATUS, V2_REF_PREFIX};
use paths::{PathsBuilder, Spec};

/// The version reported in the documents' `info`.
const INFO_VERSION: &str = "v1.33.0";

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

fn definitions() -> &'static Definitions {
    static DEFS: OnceLock<Definitions> = OnceLock::new();
    DEFS.get_or_init(definitions::generate)
}

/// One served v3 document.
struct V3Doc {
    group: &'static str,
    version: &'static str,
    body: Arc<Vec<u8>>,
    hash: String,
}

struct V3Set {
    docs: Vec<V3Doc>,
    index: Value,
}

fn v3_set() -> &'static V3Set {
    static SET: OnceLock<V3Set> = OnceLock::new();
    SET.get_or_init(|| {
        let defs = definitions();
        let docs: Vec<V3Doc> = registry::group_versions()
            .into_iter()
            .map(|(group, version)| {
                let body = serialize(&build_v3(defs, group, version));
                let hash = content_hash(&body);
                V3Doc {
                    group,
                    version,
                    body: Arc::new(body),
                    hash,
                }
            })
            .collect();
        let mut paths = Map::new();
        for doc in &docs {
            let key = gv_key(doc.group, doc.version);
            paths.insert(
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash) }),
            );
        }
        V3Set {
            docs,
            index: json!({ "paths": paths }),
        }
    })
}

/// `api/v1` for the core group, `apis/<group>/<version>` otherwise.
fn gv_key(group: &str, version: &str) -> String {
    paths::gv_prefix(group, version)
        .trim_start_matches('/')
        .to_string()
}

fn serialize(doc: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (all keys are strings).
    serde_json::to_vec(doc).unwrap_or_default()
}

/// FNV-1a over the document; the hash only has to change when the content does
/// (clients key their cache on the URL).
fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016X}")
}

/// The `/openapi/v3` discovery document.
pub fn v3_index() -> Value {
    v3_set().index.clone()
}

/// The serialized OpenAPI v3 document of one group-version (`""`/`v1` for core).
pub fn v3_document(group: &str, version: &str) -> Option<Arc<Vec<u8>>> {
    v3_set()
        .docs
        .iter()
        .find(|d| d.group == group && d.version == version)
        .map(|d| d.body.clone())
}

/// The hash in the `serverRelativeURL` of one group-version's v3 document.
pub fn v3_hash(group: &str, version: &str) -> Option<String> {
    v3_set()
        .docs
        .iter()
        .find(|d| d.group == group && d.version == version)
        .map(|d| d.hash.clone())
}

/// The `Accept` client-go's discovery client sends (alone) for `GET /openapi/v2`.
/// Its `@` is not valid in a media type, so it must be matched as a plain string.
pub const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The non-deprecated spelling, also accepted by upstream.
pub const V2_PROTOBUF_ACCEPT_ALT: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The `Content-Type` upstream answers with for either protobuf `Accept`; client-go
/// fails to parse the response (`mime: unexpected content after media subtype`) if the
/// `@` spelling is echoed back.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn v2_value() -> &'static Value {
    static V2: OnceLock<Value> = OnceLock::new();
    V2.get_or_init(|| build_v2(definitions()))
}

/// The serialized Swagger 2.0 document (`/openapi/v2`, JSON).
pub fn v2_document() -> Arc<Vec<u8>> {
    static V2_JSON: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    V2_JSON
        .get_or_init(|| Arc::new(serialize(v2_value())))
        .clone()
}

/// The Swagger 2.0 document as gnostic `openapi.v2.Document` protobuf, served for
/// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what kubectl
/// sends; it cannot read the JSON form).
pub fn v2_document_protobuf() -> Arc<Vec<u8>> {
    static V2_PB: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    V2_PB
        .get_or_init(|| Arc::new(v2_proto::encode(v2_value())))
        .clone()
}

fn security_scheme() -> Value {
    json!({
        "type": "apiKey",
        "description": "Bearer Token authentication",
        "name": "authorization",
        "in": "header",
    })
}

fn build_v3(defs: &Definitions, group: &str, version: &str) -> Value {
    let mut builder = PathsBuilder::new(Spec::V3, defs);
    for r in registry::group_version_resources(group, version) {
        builder.add_resource(r);
    }
    let (paths, referenced) = builder.finish();
    let roots = referenced
        .iter()
        .map(String::as_str)
        .chain([DELETE_OPTIONS, STATUS, PATCH]);
    let mut schemas = Map::new();
    for name in definitions::closure(&defs.schemas, roots) {
        if let Some(schema) = defs.schemas.get(name) {
            schemas.insert(name.to_string(), to_v3(schema));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": INFO_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "BearerToken": security_scheme() },
        },
        "security": [ { "BearerToken": [] } ],
    })
}

/// Rewrites a v2-form schema for OpenAPI v3: refs point into `#/components/schemas/`,
/// and a `$ref` with siblings (a description) becomes `allOf: [{$ref}]` plus the
/// siblings, since v3 ignores `$ref` siblings and `kubectl explain` reads the field's
/// description from the wrapper.
fn to_v3(value: &Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut out = Map::new();
            if let Some(Value::String(r)) = obj.get("$ref") {
                let target = match r.strip_prefix(V2_REF_PREFIX) {
                    Some(name) => format!("{}{name}", Spec::V3.ref_prefix()),
                    None => r.clone(),
                };
                if obj.len() == 1 {
                    out.insert("$ref".into(), target.into());
                    return Value::Object(out);
                }
                out.insert("allOf".into(), json!([{ "$ref": target }]));
            }
            for (k, v) in obj {
                if k != "$ref" {
                    out.insert(k.clone(), to_v3(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn build_v2(defs: &Definitions) -> Value {
    let mut builder = PathsBuilder::new(Spec::V2, defs);
    for r in registry::RESOURCES {
        builder.add_resource(r);
    }
    let (paths, _) = builder.finish();
    let mut schemas = defs.schemas.clone();
    // Swagger 2.0 has no `oneOf`: upstream publishes these as formatted strings, and
    // kubectl's client-side validator special-cases `int-or-string`.
    if let Some(obj) = schemas
        .get_mut(INT_OR_STRING)
        .and_then(Value::as_object_mut)
    {
        obj.insert("type".into(), "string".into());
        obj.insert("format".into(), "int-or-string".into());
        obj.remove("x-kubernetes-int-or-string");
    }
    if let Some(obj) = schemas.get_mut(QUANTITY).and_then(Value::as_object_mut) {
        obj.insert("type".into(), "string".into());
        obj.remove("x-kubernetes-int-or-string");
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": INFO_VERSION },
        "paths": paths,
        "definitions": schemas,
        "securityDefinitions": { "BearerToken": security_scheme() },
        "security": [ { "BearerToken": [] } ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3(group: &str, version: &str) -> Value {
        let bytes = v3_document(group, version).expect("group-version served");
        serde_json::from_slice(&bytes).expect("v3 document is JSON")
    }

    fn all_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(obj) => {
                for (k, v) in obj {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => all_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| all_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn autoscaling_v1_hpa_has_paths_and_schema() {
        let doc = v3("autoscaling", "v1");
        let path = "/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/{name}";
        assert!(doc["paths"][path]["get"].is_object(), "missing {path}");
        let schema =
            &doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"];
        assert!(schema["properties"]["spec"].is_object());
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "autoscaling", "kind": "HorizontalPodAutoscaler", "version": "v1"}])
        );
        let v2: Value = serde_json::from_slice(&v2_document()).expect("v2 JSON");
        assert!(v2["definitions"]["io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"].is_object());
        assert!(v2["paths"][path]["put"].is_object());
        assert!(v2["paths"][format!("{path}/status")]["patch"].is_object());
    }

    #[test]
    fn index_lists_group_versions_with_hashes() {
        let index = v3_index();
        for (group, version, key) in [("", "v1", "api/v1"), ("apps", "v1", "apis/apps/v1")] {
            let url = index["paths"][key]["serverRelativeURL"]
                .as_str()
                .expect("entry");
            let hash = v3_hash(group, version).expect("hash");
            assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
        }
        assert!(v3_document("apps", "v9").is_none());
    }

    #[test]
    fn deployment_schema_has_gvk_and_spec_ref() {
        let doc = v3("apps", "v1");
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let spec = &deployment["properties"]["spec"];
        assert_eq!(
            spec["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(
            deployment.get("required").is_none(),
            "metadata is not required upstream"
        );
        let list = &doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentList"];
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
    }

    #[test]
    fn write_operations_advertise_field_validation() {
        let doc = v3("apps", "v1");
        let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
        let post = &path["post"];
        assert_eq!(post["operationId"], "createAppsV1NamespacedDeployment");
        assert_eq!(post["x-kubernetes-action"], "post");
        let names: Vec<&str> = post["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"), "{names:?}");
        assert!(names.contains(&"dryRun") && names.contains(&"fieldManager"));

        // kubectl's check: the first PATCH operation with the kind's GVK (in map order, so
        // every one of them) must list fieldValidation and accept strategic merge patches.
        let gvk = json!({"group": "apps", "kind": "Deployment", "version": "v1"});
        let mut patches = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            assert!(
                patch["parameters"]
                    .as_array()
                    .expect("patch parameters")
                    .iter()
                    .any(|p| p["name"] == "fieldValidation"),
                "{path}"
            );
            if patch["x-kubernetes-group-version-kind"] == gvk {
                patches += 1;
                let content = &patch["requestBody"]["content"];
                for ct in paths::PATCH_CONTENT_TYPES {
                    assert!(content.get(*ct).is_some(), "{path} lacks {ct}");
                }
            }
        }
        assert_eq!(patches, 2, "item and status patch operations");
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["operationId"],
            "replaceAppsV1NamespacedDeploymentScale"
        );
        assert_eq!(
            scale["put"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(doc["components"]["schemas"]
            .get("io.k8s.api.autoscaling.v1.Scale")
            .is_some());
    }

    #[test]
    fn core_paths_and_operation_ids() {
        let doc = v3("", "v1");
        let paths = &doc["paths"];
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]["operationId"],
            "readCoreV1NamespacedPod"
        );
        assert_eq!(
            paths["/api/v1/nodes/{name}"]["put"]["operationId"],
            "replaceCoreV1Node"
        );
        assert_eq!(
            paths["/api/v1/pods"]["get"]["operationId"],
            "listCoreV1PodForAllNamespaces"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods/{name}/status"]["patch"]["operationId"],
            "patchCoreV1NamespacedPodStatus"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["x-kubernetes-action"],
            "deletecollection"
        );
    }

    #[test]
    fn explain_can_walk_pod_spec_containers() {
        // What `kubectl explain pod.spec.containers` does: GVK from an operation on the
        // resource path, then the schema listing that GVK, then properties/refs.
        let doc = v3("", "v1");
        let gvk = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"]
            ["x-kubernetes-group-version-kind"];
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let (_, pod) = schemas
            .iter()
            .find(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|l| l.contains(gvk))
            })
            .expect("schema with Pod GVK");
        let spec_ref = pod["properties"]["spec"]["allOf"][0]["$ref"]
            .as_str()
            .expect("ref");
        let spec_name = spec_ref.trim_start_matches("#/components/schemas/");
        let containers = &schemas[spec_name]["properties"]["containers"];
        assert!(containers["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("List of containers")));
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
    }

    #[test]
    fn v3_documents_are_self_contained() {
        for (group, version) in registry::group_versions() {
            let doc = v3(group, version);
            let schemas = doc["components"]["schemas"].as_object().expect("schemas");
            let mut refs = Vec::new();
            all_refs(&doc, &mut refs);
            for r in refs {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .expect("v3 ref form");
                assert!(
                    schemas.contains_key(name),
                    "{group}/{version}: dangling {r}"
                );
            }
        }
    }

    #[test]
    fn v2_document_parses_with_definitions_and_paths() {
        let doc: Value = serde_json::from_slice(&v2_document()).expect("v2 is JSON");
        assert_eq!(doc["swagger"], "2.0");
        let defs = doc["definitions"].as_object().expect("definitions");
        assert!(defs.contains_key("io.k8s.api.core.v1.Pod"));
        assert!(defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert_eq!(defs[INT_OR_STRING]["format"], "int-or-string");
        let mut refs = Vec::new();
        all_refs(&doc, &mut refs);
        for r in refs {
            let name = r.strip_prefix("#/definitions/").expect("v2 ref form");
            assert!(defs.contains_key(name), "dangling {r}");
        }
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert!(patch["consumes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("application/strategic-merge-patch+json"))));
        assert!(patch["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "fieldValidation")));
    }
}

//! Schema definitions of every served kind, generated from k8s-openapi's `JsonSchema`
//! impls, in the Swagger 2.0 form (`#/definitions/<name>` refs); the v3 documents are
//! derived from it by rewriting refs.

use std::collections::BTreeSet;

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::patch_meta;
use crate::registry::{self, ResourceInfo};

/// Prefix of refs in the generated (v2-form) definitions.
pub(crate) const V2_REF_PREFIX: &str = "#/definitions/";

pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// Every definition plus, per (group, version, kind), the name of its schema.
#[derive(Debug)]
pub(crate) struct Definitions {
    pub schemas: Map<String, Value>,
    kinds: Vec<((&'static str, &'static str, &'static str), String)>,
}

impl Definitions {
    /// The definition name of a kind (`io.k8s.api.core.v1.Pod`).
    pub fn kind_schema(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|((g, v, k), _)| *g == group && *v == version && *k == kind)
            .map(|(_, name)| name.as_str())
    }
}

/// Generates the schema of a registry kind into `gen` and returns its `$ref` schema, or
/// `None` when k8s-openapi has no type for it.
fn kind_subschema(
    gen: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<Schema> {
    let schema = match (group, version, kind) {
        ("", "v1", "Namespace") => gen.subschema_for::<core::Namespace>(),
        ("", "v1", "Pod") => gen.subschema_for::<core::Pod>(),
        ("", "v1", "Service") => gen.subschema_for::<core::Service>(),
        ("", "v1", "Endpoints") => gen.subschema_for::<core::Endpoints>(),
        ("", "v1", "Node") => gen.subschema_for::<core::Node>(),
        ("", "v1", "ConfigMap") => gen.subschema_for::<core::ConfigMap>(),
        ("", "v1", "Secret") => gen.subschema_for::<core::Secret>(),
        ("", "v1", "ServiceAccount") => gen.subschema_for::<core::ServiceAccount>(),
        ("", "v1", "ReplicationController") => gen.subschema_for::<core::ReplicationController>(),
        ("", "v1", "Event") => gen.subschema_for::<core::Event>(),
        ("", "v1", "LimitRange") => gen.subschema_for::<core::LimitRange>(),
        ("", "v1", "ResourceQuota") => gen.subschema_for::<core::ResourceQuota>(),
        ("", "v1", "PersistentVolume") => gen.subschema_for::<core::PersistentVolume>(),
        ("", "v1", "PersistentVolumeClaim") => gen.subschema_for::<core::PersistentVolumeClaim>(),
        ("", "v1", "Binding") => gen.subschema_for::<core::Binding>(),
        ("", "v1", "ComponentStatus") => gen.subschema_for::<core::ComponentStatus>(),
        ("apps", "v1", "Deployment") => gen.subschema_for::<apps::Deployment>(),
        ("apps", "v1", "ReplicaSet") => gen.subschema_for::<apps::ReplicaSet>(),
        ("apps", "v1", "DaemonSet") => gen.subschema_for::<apps::DaemonSet>(),
        ("apps", "v1", "StatefulSet") => gen.subschema_for::<apps::StatefulSet>(),
        ("apps", "v1", "ControllerRevision") => gen.subschema_for::<apps::ControllerRevision>(),
        ("batch", "v1", "Job") => gen.subschema_for::<batch::Job>(),
        ("batch", "v1", "CronJob") => gen.subschema_for::<batch::CronJob>(),
        ("autoscaling", "v1", "Scale") => gen.subschema_for::<autoscaling::v1::Scale>(),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            gen.subschema_for::<autoscaling::v1::HorizontalPodAutoscaler>()
        }
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            gen.subschema_for::<autoscaling::v2::HorizontalPodAutoscaler>()
        }
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            gen.subschema_for::<authn::TokenRequest>()
        }
        ("authentication.k8s.io", "v1", "TokenReview") => gen.subschema_for::<authn::TokenReview>(),
        ("authentication.k8s.io", "v1", "SelfSubjectReview") => {
            gen.subschema_for::<authn::SelfSubjectReview>()
        }
        ("authorization.k8s.io", "v1", "SubjectAccessReview") => {
            gen.subschema_for::<k8s_openapi::api::authorization::v1::SubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => {
            gen.subschema_for::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "LocalSubjectAccessReview") => {
            gen.subschema_for::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>()
        }
        ("coordination.k8s.io", "v1", "Lease") => gen.subschema_for::<coordination::Lease>(),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            gen.subschema_for::<discovery::EndpointSlice>()
        }
        ("events.k8s.io", "v1", "Event") => gen.subschema_for::<events::Event>(),
        ("policy", "v1", "PodDisruptionBudget") => {
            gen.subschema_for::<policy::PodDisruptionBudget>()
        }
        ("policy", "v1", "Eviction") => gen.subschema_for::<policy::Eviction>(),
        ("networking.k8s.io", "v1", "Ingress") => gen.subschema_for::<networking::Ingress>(),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            gen.subschema_for::<networking::NetworkPolicy>()
        }
        ("networking.k8s.io", "v1", "IngressClass") => {
            gen.subschema_for::<networking::IngressClass>()
        }
        ("rbac.authorization.k8s.io", "v1", "Role") => gen.subschema_for::<rbac::Role>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => {
            gen.subschema_for::<rbac::RoleBinding>()
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => {
            gen.subschema_for::<rbac::ClusterRole>()
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            gen.subschema_for::<rbac::ClusterRoleBinding>()
        }
        ("storage.k8s.io", "v1", "StorageClass") => gen.subschema_for::<storage::StorageClass>(),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => {
            gen.subschema_for::<certificates::CertificateSigningRequest>()
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            gen.subschema_for::<scheduling::PriorityClass>()
        }
        _ => return None,
    };
    Some(schema)
}

/// The definition-name prefix upstream uses for a group-version without a k8s-openapi
/// type (`io.k8s.api.<first label of group, or core>.<version>`).
fn fallback_prefix(group: &str, version: &str) -> String {
    let short = group
        .split('.')
        .next()
        .filter(|g| !g.is_empty())
        .unwrap_or("core");
    format!("io.k8s.api.{short}.{version}")
}

fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// Every (group, version, kind) that gets a top-level schema: registry kinds and the
/// kinds their subresources speak (Scale, Eviction, TokenRequest, Binding).
fn served_kinds() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    let sub_kinds = registry::RESOURCES
        .iter()
        .flat_map(|r| r.subresources.iter().filter_map(|s| s.kind()));
    let kinds = registry::RESOURCES
        .iter()
        .map(|r: &ResourceInfo| (r.group, r.version, r.kind));
    for gvk in kinds.chain(sub_kinds) {
        if !out.contains(&gvk) {
            out.push(gvk);
        }
    }
    out
}

/// Kinds that are listed (a `<Kind>List` schema exists for them).
fn is_listable(r: &ResourceInfo) -> bool {
    r.verbs.contains(&"list")
}

fn ref_schema(name: &str) -> Value {
    json!({ "$ref": format!("{V2_REF_PREFIX}{name}") })
}

fn list_schema(kind: &str, item_schema: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": ref_schema(item_schema),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{V2_REF_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
    })
}

fn ref_name(schema: &Schema) -> Option<String> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(V2_REF_PREFIX))
        .map(str::to_string)
}

/// Upstream does not mark `metadata` required on objects; k8s-openapi does because its
/// Rust field is not optional. Client-side validation must not demand it.
fn drop_required_metadata(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) else {
        return;
    };
    required.retain(|v| v != "metadata");
    if required.is_empty() {
        obj.remove("required");
    }
}

fn add_gvk(schemas: &mut Map<String, Value>, name: &str, gvk: Value) {
    let Some(obj) = schemas.get_mut(name).and_then(Value::as_object_mut) else {
        return;
    };
    let entry = obj
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = entry.as_array_mut() {
        if !list.contains(&gvk) {
            list.push(gvk);
        }
    }
}

/// Generates all definitions.
pub(crate) fn generate() -> Definitions {
    let settings = schemars::generate::SchemaSettings::draft07().with(|s| {
        s.meta_schema = None;
        s.transforms.clear();
    });
    let mut gen = settings.into_generator();

    let mut kinds = Vec::new();
    let mut fallback = Vec::new();
    for (group, version, kind) in served_kinds() {
        match kind_subschema(&mut gen, group, version, kind)
            .as_ref()
            .and_then(ref_name)
        {
            Some(name) => kinds.push(((group, version, kind), name)),
            None => {
                let name = format!("{}.{kind}", fallback_prefix(group, version));
                fallback.push(name.clone());
                kinds.push(((group, version, kind), name));
            }
        }
    }
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::Patch>();
    gen.subschema_for::<meta::ListMeta>();
    let mut schemas = gen.take_definitions(false);

    for name in fallback {
        schemas.insert(
            name,
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }

    for ((group, version, kind), name) in &kinds {
        if let Some(schema) = schemas.get_mut(name) {
            drop_required_metadata(schema);
        }
        add_gvk(&mut schemas, name, gvk_value(group, version, kind));
    }
    for r in registry::RESOURCES.iter().filter(|r| is_listable(r)) {
        let Some((_, item)) = kinds
            .iter()
            .find(|((g, v, k), _)| *g == r.group && *v == r.version && *k == r.kind)
        else {
            continue;
        };
        let list_name = list_schema_name(item);
        if !schemas.contains_key(&list_name) {
            schemas.insert(list_name.clone(), list_schema(r.kind, item));
        }
        add_gvk(
            &mut schemas,
            &list_name,
            gvk_value(r.group, r.version, &r.list_kind()),
        );
    }
    // DeleteOptions is accepted by every served group-version; Status is core/v1.
    for (group, version) in registry::group_versions() {
        add_gvk(
            &mut schemas,
            DELETE_OPTIONS,
            gvk_value(group, version, "DeleteOptions"),
        );
    }
    add_gvk(&mut schemas, STATUS, gvk_value("", "v1", "Status"));

    patch_meta::annotate(&mut schemas);
    schemas.sort_keys();

    Definitions { schemas, kinds }
}

/// The definition name of the list schema of a kind.
pub(crate) fn list_schema_name(item_schema: &str) -> String {
    format!("{item_schema}List")
}

/// Names of all definitions referenced (transitively) from `roots`.
pub(crate) fn closure<'a>(
    schemas: &'a Map<String, Value>,
    roots: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&'a str> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        let Some((key, schema)) = schemas.get_key_value(name) else {
            continue;
        };
        if !seen.insert(key.as_str()) {
            continue;
        }
        collect_refs(schema, &mut |r| {
            if let Some(target) = r.strip_prefix(V2_REF_PREFIX) {
                if let Some((k, _)) = schemas.get_key_value(target) {
                    stack.push(k.as_str());
                }
            }
        });
    }
    seen
}

fn collect_refs<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => f(r),
                    _ => collect_refs(v, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, f)),
        _ => {}
    }
}

//! The shape of every built-in kind (which field holds which Go type) plus the patch
//! metadata upstream keeps in struct tags (`patchStrategy`, `patchMergeKey`, `listType`).
//!
//! Shapes come from k8s-openapi's `schemars` schemas (every type covered); the tags do
//! not (k8s-openapi does not emit `x-kubernetes-patch-*`), so they live in [`PATCH_TAGS`],
//! keyed by the upstream type name — which makes `PodSpec.containers` apply inside
//! every pod template (Deployment, Job, CronJob, ...).

// foldhash: SipHash over definition names was a visible share of every server-side
// apply and managedFields walk.
use foldhash::HashMap;

use k8s_openapi::api;
use once_cell::sync::Lazy;
use serde_json::Value;

use crate::ResourceInfo;

/// How a list takes part in server-side apply (upstream `+listType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by the key fields.
    Map(&'static [&'static str]),
}

/// One upstream struct tag on a field: `patchStrategy:"merge" patchMergeKey:"name"`.
#[derive(Debug, Clone, Copy)]
pub struct PatchTag {
    /// OpenAPI definition name of the Go type holding the field.
    pub type_name: &'static str,
    pub field: &'static str,
    /// `merge`, `merge,retainKeys`, `retainKeys` or `replace`.
    pub strategy: &'static str,
    /// `patchMergeKey`, empty when none (lists of scalars, maps).
    pub merge_key: &'static str,
    /// The server-side-apply list type (upstream `+listType`/`+listMapKey`).
    pub list_type: Option<ListType>,
}

macro_rules! tag {
    ($ty:expr, $field:expr, $strategy:expr, $key:expr, $list:expr) => {
        PatchTag {
            type_name: $ty,
            field: $field,
            strategy: $strategy,
            merge_key: $key,
            list_type: $list,
        }
    };
}

use ListType::{Atomic, Map, Set};

/// Upstream patch tags of the types we serve (read from k8s.io/api v1.32/1.33 struct tags).
pub static PATCH_TAGS: &[PatchTag] = &[
    tag!(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        "",
        Some(Set)
    ),
    tag!(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        "uid",
        Some(Map(&["uid"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        "ip",
        Some(Map(&["ip"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        "topologyKey",
        Some(Map(&["topologyKey", "whenUnsatisfiable"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        "containerPort",
        Some(Map(&["containerPort", "protocol"]))
    ),
    tag!(
        "io.k8s.api.core.v1.Container",
        "env",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        "mountPath",
        Some(Map(&["mountPath"]))
    ),
    tag!(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        "devicePath",
        Some(Map(&["devicePath"]))
    ),
    tag!(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "merge",
        "containerPort",
        Some(Map(&["containerPort", "protocol"]))
    ),
    tag!(
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        "mountPath",
        Some(Map(&["mountPath"]))
    ),
    tag!(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        "devicePath",
        Some(Map(&["devicePath"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        "ip",
        Some(Map(&["ip"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        "merge",
        "ip",
        Some(Map(&["ip"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.core.v1.NodeSpec",
        "podCIDRs",
        "merge",
        "",
        Some(Set)
    ),
    tag!(
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ComponentStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        "port",
        Some(Map(&["port", "protocol"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        "name",
        Some(Map(&["name"]))
    ),
    tag!(
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        "",
        None
    ),
    tag!(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "merge",
        "type",
        Some(Atomic)
    ),
    tag!(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "merge",
        "type",
        Some(Map(&["type"]))
    ),
    tag!(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "selector",
        "replace",
        "",
        None
    ),
    // No patch strategy (SMP replaces), but a list-map for server-side apply.
    tag!(
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
        "",
        "",
        Some(Map(&["type"]))
    ),
];

/// Upstream `+structType=atomic` types: server-side apply owns them as one value.
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
];

/// Key fields whose value is defaulted when absent (upstream `+default`), so an applied
/// `ports: [{containerPort: 80}]` is keyed `{"containerPort":80,"protocol":"TCP"}`.
pub(crate) fn key_default(field: &str) -> Option<Value> {
    match field {
        "protocol" => Some(Value::String("TCP".into())),
        _ => None,
    }
}

/// The shape of a value at some place in an object.
#[derive(Debug)]
pub enum Shape {
    /// A struct: an OpenAPI definition with properties.
    Struct(String),
    /// A list of the inner shape.
    List(Box<Shape>),
    /// A `map[string]T`.
    Map(Box<Shape>),
    /// A scalar, an atomic struct, or anything we know nothing about.
    Leaf,
    /// No type information: merge generically (JSON merge semantics for lists).
    Unknown,
}

static UNKNOWN: Shape = Shape::Unknown;

/// Where a field sits and how it patches.
#[derive(Debug, Clone, Copy)]
pub struct FieldMeta {
    pub shape: &'static Shape,
    pub tag: Option<&'static PatchTag>,
}

impl FieldMeta {
    fn untagged(shape: &'static Shape) -> Self {
        FieldMeta { shape, tag: None }
    }

    /// Strategic-merge: the list merges (by key or as a set of scalars).
    pub fn merges_list(&self) -> bool {
        self.tag
            .is_some_and(|t| t.strategy.split(',').any(|s| s == "merge"))
    }

    /// Strategic-merge: the map field is replaced rather than merged.
    pub fn replaces(&self) -> bool {
        self.tag
            .is_some_and(|t| t.strategy.split(',').any(|s| s == "replace"))
    }

    pub fn merge_key(&self) -> Option<&'static str> {
        self.tag.map(|t| t.merge_key).filter(|k| !k.is_empty())
    }

    /// Server-side apply list type; untagged lists are atomic as upstream.
    pub fn list_type(&self) -> ListType {
        self.tag
            .and_then(|t| t.list_type)
            .unwrap_or(ListType::Atomic)
    }

    /// The shape of one element when this field is a list or a map.
    pub fn elem(&self) -> &'static Shape {
        match self.shape {
            Shape::List(inner) | Shape::Map(inner) => inner,
            _ => &UNKNOWN,
        }
    }
}

struct Graph {
    /// Definition name → field name → shape.
    defs: HashMap<String, HashMap<String, Shape>>,
    /// (group, kind) → definition name of the root type.
    roots: HashMap<(String, String), String>,
    /// (group, version, kind) → root type, for kinds served in more than one shape.
    versioned_roots: HashMap<(String, String, String), String>,
    tags: HashMap<(&'static str, &'static str), &'static PatchTag>,
}

static GRAPH: Lazy<Graph> = Lazy::new(build_graph);

macro_rules! roots {
    ($gen:ident, $roots:ident; $($group:literal $kind:literal => $ty:ty),* $(,)?) => {
        $(
            let schema = $gen.subschema_for::<$ty>();
            if let Some(name) = ref_name(schema.as_value()) {
                $roots.insert(($group.to_string(), $kind.to_string()), name.to_string());
            }
        )*
    };
}

fn build_graph() -> Graph {
    let mut gen = schemars::SchemaGenerator::default();
    let mut roots = HashMap::default();
    roots!(gen, roots;
        "" "Namespace" => api::core::v1::Namespace,
        "" "Pod" => api::core::v1::Pod,
        "" "PodTemplate" => api::core::v1::PodTemplate,
        "" "Service" => api::core::v1::Service,
        "" "Endpoints" => api::core::v1::Endpoints,
        "" "Node" => api::core::v1::Node,
        "" "ConfigMap" => api::core::v1::ConfigMap,
        "" "Secret" => api::core::v1::Secret,
        "" "ServiceAccount" => api::core::v1::ServiceAccount,
        "" "ReplicationController" => api::core::v1::ReplicationController,
        "" "Event" => api::core::v1::Event,
        "" "LimitRange" => api::core::v1::LimitRange,
        "" "ResourceQuota" => api::core::v1::ResourceQuota,
        "" "PersistentVolume" => api::core::v1::PersistentVolume,
        "" "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim,
        "" "Binding" => api::core::v1::Binding,
        "" "ComponentStatus" => api::core::v1::ComponentStatus,
        "apps" "Deployment" => api::apps::v1::Deployment,
        "apps" "ReplicaSet" => api::apps::v1::ReplicaSet,
        "apps" "DaemonSet" => api::apps::v1::DaemonSet,
        "apps" "StatefulSet" => api::apps::v1::StatefulSet,
        "apps" "ControllerRevision" => api::apps::v1::ControllerRevision,
        "batch" "Job" => api::batch::v1::Job,
        "batch" "CronJob" => api::batch::v1::CronJob,
        "autoscaling" "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler,
        "autoscaling" "Scale" => api::autoscaling::v1::Scale,
        "coordination.k8s.io" "Lease" => api::coordination::v1::Lease,
        "discovery.k8s.io" "EndpointSlice" => api::discovery::v1::EndpointSlice,
        "events.k8s.io" "Event" => api::events::v1::Event,
        "policy" "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget,
        "networking.k8s.io" "Ingress" => api::networking::v1::Ingress,
        "networking.k8s.io" "NetworkPolicy" => api::networking::v1::NetworkPolicy,
        "networking.k8s.io" "IngressClass" => api::networking::v1::IngressClass,
        "rbac.authorization.k8s.io" "Role" => api::rbac::v1::Role,
        "rbac.authorization.k8s.io" "RoleBinding" => api::rbac::v1::RoleBinding,
        "rbac.authorization.k8s.io" "ClusterRole" => api::rbac::v1::ClusterRole,
        "rbac.authorization.k8s.io" "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding,
        "storage.k8s.io" "StorageClass" => api::storage::v1::StorageClass,
        "certificates.k8s.io" "CertificateSigningRequest" => api::certificates::v1::CertificateSigningRequest,
        "scheduling.k8s.io" "PriorityClass" => api::scheduling::v1::PriorityClass,
        "authentication.k8s.io" "TokenReview" => api::authentication::v1::TokenReview,
        "authentication.k8s.io" "SelfSubjectReview" => api::authentication::v1::SelfSubjectReview,
        "authorization.k8s.io" "SubjectAccessReview" => api::authorization::v1::SubjectAccessReview,
        "authorization.k8s.io" "SelfSubjectAccessReview" => api::authorization::v1::SelfSubjectAccessReview,
        "authorization.k8s.io" "LocalSubjectAccessReview" => api::authorization::v1::LocalSubjectAccessReview,
    );
    let mut versioned_roots = HashMap::default();
    let hpa_v1 = gen.subschema_for::<api::autoscaling::v1::HorizontalPodAutoscaler>();
    if let Some(name) = ref_name(hpa_v1.as_value()) {
        let key = ("autoscaling", "v1", "HorizontalPodAutoscaler");
        versioned_roots.insert(
            (key.0.to_string(), key.1.to_string(), key.2.to_string()),
            name.to_string(),
        );
    }
    let mut defs = HashMap::default();
    for (name, schema) in gen.definitions() {
        if ATOMIC_STRUCTS.contains(&name.as_str()) {
            continue;
        }
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let fields = props
            .iter()
            .map(|(f, s)| (f.clone(), shape_of(s)))
            .collect();
        defs.insert(name.clone(), fields);
    }
    let tags = PATCH_TAGS
        .iter()
        .map(|t| ((t.type_name, t.field), t))
        .collect();
    Graph {
        defs,
        roots,
        versioned_roots,
        tags,
    }
}

/// The definition name a `$ref` schema points at.
pub(crate) fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
}

fn shape_of(schema: &Value) -> Shape {
    if let Some(name) = ref_name(schema) {
        return Shape::Struct(name.to_string());
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Shape::List(Box::new(
            schema.get("items").map_or(Shape::Unknown, shape_of),
        )),
        Some("object") => match schema.get("additionalProperties") {
            Some(inner) if inner.is_object() => Shape::Map(Box::new(shape_of(inner))),
            _ => Shape::Leaf,
        },
        _ => Shape::Leaf,
    }
}

/// The shape of a whole object of this resource's kind; `Unknown` for kinds without a
/// schema (generic JSON merge applies).
pub fn root_shape(info: &ResourceInfo) -> &'static Shape {
    static VERSIONED: Lazy<HashMap<(String, String, String), Shape>> = Lazy::new(|| {
        GRAPH
            .versioned_roots
            .iter()
            .map(|(k, v)| (k.clone(), Shape::Struct(v.clone())))
            .collect()
    });
    let key = (
        info.group.to_string(),
        info.version.to_string(),
        info.kind.to_string(),
    );
    VERSIONED
        .get(&key)
        .unwrap_or_else(|| root_shape_for(info.group, info.kind))
}

pub(crate) fn root_shape_for(group: &str, kind: &str) -> &'static Shape {
    static ROOT_SHAPES: Lazy<HashMap<(String, String), Shape>> = Lazy::new(|| {
        GRAPH
            .roots
            .iter()
            .map(|(k, v)| (k.clone(), Shape::Struct(v.clone())))
            .collect()
    });
    ROOT_SHAPES
        .get(&(group.to_string(), kind.to_string()))
        .unwrap_or(&UNKNOWN)
}

/// The metadata of field `name` inside a value of shape `parent`.
pub fn field(parent: &'static Shape, name: &str) -> FieldMeta {
    match parent {
        Shape::Map(inner) => FieldMeta::untagged(inner),
        Shape::Struct(def) => {
            let graph = &*GRAPH;
            let Some((def_name, fields)) = graph.defs.get_key_value(def.as_str()) else {
                return FieldMeta::untagged(&UNKNOWN);
            };
            let Some((field_name, shape)) = fields.get_key_value(name) else {
                return FieldMeta::untagged(&UNKNOWN);
            };
            let tag = graph
                .tags
                .get(&(def_name.as_str(), field_name.as_str()))
                .copied();
            FieldMeta { shape, tag }
        }
        Shape::Leaf | Shape::List(_) | Shape::Unknown => FieldMeta::untagged(&UNKNOWN),
    }
}

/// Whether a definition is a struct we know the fields of (vs. a map or leaf).
pub fn is_struct(shape: &Shape) -> bool {
    matches!(shape, Shape::Struct(def) if GRAPH.defs.contains_key(def))
}

/// The patch tags for a definition, for OpenAPI publishing (`x-kubernetes-patch-*`).
pub fn tags_for(type_name: &str) -> impl Iterator<Item = &'static PatchTag> + '_ {
    PATCH_TAGS.iter().filter(move |t| t.type_name == type_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup_kind;

    #[test]
    fn deployment_template_reaches_pod_spec_tags() {
        let info = lookup_kind("apps/v1", "Deployment").expect("deployments registered");
        let root = root_shape(info);
        let spec = field(root, "spec");
        let template = field(spec.shape, "template");
        let pod_spec = field(template.shape, "spec");
        let containers = field(pod_spec.shape, "containers");
        assert!(containers.merges_list());
        assert_eq!(containers.merge_key(), Some("name"));
        let ports = field(containers.elem(), "ports");
        assert_eq!(ports.merge_key(), Some("containerPort"));
        assert_eq!(
            ports.list_type(),
            ListType::Map(&["containerPort", "protocol"])
        );
        let tolerations = field(pod_spec.shape, "tolerations");
        assert!(!tolerations.merges_list());
        assert_eq!(tolerations.list_type(), ListType::Atomic);
        let labels = field(field(root, "metadata").shape, "labels");
        assert!(matches!(labels.shape, Shape::Map(_)));
    }

    #[test]
    fn hpa_versions_have_their_own_shapes() {
        let v1 = lookup_kind("autoscaling/v1", "HorizontalPodAutoscaler").expect("v1 hpa");
        let v2 = lookup_kind("autoscaling/v2", "HorizontalPodAutoscaler").expect("v2 hpa");
        let v1_spec = field(root_shape(v1), "spec").shape;
        let v2_spec = field(root_shape(v2), "spec").shape;
        assert!(matches!(
            field(v1_spec, "targetCPUUtilizationPercentage").shape,
            Shape::Leaf
        ));
        assert!(matches!(field(v1_spec, "metrics").shape, Shape::Unknown));
        assert!(matches!(field(v2_spec, "metrics").shape, Shape::List(_)));
    }

    #[test]
    fn every_registered_kind_has_a_schema() {
        for r in crate::registry::resources() {
            assert!(is_struct(root_shape(r)), "{} has no schema", r.kind);
        }
    }

    #[test]
    fn every_tag_names_a_real_field() {
        for t in PATCH_TAGS {
            let fields = GRAPH
                .defs
                .get(t.type_name)
                .unwrap_or_else(|| panic!("{} unknown", t.type_name));
            assert!(
                fields.contains_key(t.field),
                "{}.{} unknown",
                t.type_name,
                t.field
            );
        }
    }
}

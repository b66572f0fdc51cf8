//! Strategic-merge and list-type metadata of built-in types.
//!
//! Upstream's OpenAPI carries `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type` and `x-kubernetes-list-map-keys` from the Go struct tags
//! (`patchStrategy:"merge" patchMergeKey:"name"`, `+listType=map`). k8s-openapi's
//! `JsonSchema` impls emit descriptions and types only, so the metadata that matters for
//! `kubectl apply` (which computes its three-way strategic merge patch from the OpenAPI v3
//! document first) is kept here, transcribed from `k8s.io/api` types.

/// Metadata attached to one property of one definition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PropertyMeta {
    pub definition: &'static str,
    pub property: &'static str,
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub patch_strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` (only with list type `map`).
    pub list_map_keys: &'static [&'static str],
}

const fn merge_map(
    definition: &'static str,
    property: &'static str,
    key: &'static str,
    map_keys: &'static [&'static str],
) -> PropertyMeta {
    PropertyMeta {
        definition,
        property,
        patch_strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("map"),
        list_map_keys: map_keys,
    }
}

const fn merge_retain_map(
    definition: &'static str,
    property: &'static str,
    key: &'static str,
) -> PropertyMeta {
    PropertyMeta {
        patch_strategy: Some("merge,retainKeys"),
        ..merge_map(definition, property, key, &[])
    }
}

/// Conditions lists: merged by `type` (list-map keyed by `type`).
const fn conditions(definition: &'static str) -> PropertyMeta {
    merge_map(definition, "conditions", "type", &["type"])
}

const fn atomic(definition: &'static str, property: &'static str) -> PropertyMeta {
    PropertyMeta {
        definition,
        property,
        patch_strategy: None,
        merge_key: None,
        list_type: Some("atomic"),
        list_map_keys: &[],
    }
}

/// Every annotated property. Definition names are the full upstream schema names.
pub(crate) static PROPERTY_META: &[PropertyMeta] = &[
    // meta/v1
    PropertyMeta {
        definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        property: "finalizers",
        patch_strategy: Some("merge"),
        merge_key: None,
        list_type: Some("set"),
        list_map_keys: &[],
    },
    merge_map(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        &["uid"],
    ),
    atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "managedFields",
    ),
    atomic(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "matchExpressions",
    ),
    // core/v1 containers
    merge_map(
        "io.k8s.api.core.v1.Container",
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map("io.k8s.api.core.v1.Container", "env", "name", &["name"]),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    atomic("io.k8s.api.core.v1.Container", "envFrom"),
    atomic("io.k8s.api.core.v1.Container", "command"),
    atomic("io.k8s.api.core.v1.Container", "args"),
    atomic("io.k8s.api.core.v1.Container", "resizePolicy"),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    // core/v1 PodSpec / PodStatus
    merge_retain_map("io.k8s.api.core.v1.PodSpec", "volumes", "name"),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "name",
        &["name"],
    ),
    merge_map("io.k8s.api.core.v1.PodSpec", "hostAliases", "ip", &["ip"]),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "name",
        &["name"],
    ),
    merge_retain_map("io.k8s.api.core.v1.PodSpec", "resourceClaims", "name"),
    atomic("io.k8s.api.core.v1.PodSpec", "tolerations"),
    atomic("io.k8s.api.core.v1.PodSpec", "readinessGates"),
    conditions("io.k8s.api.core.v1.PodStatus"),
    merge_map("io.k8s.api.core.v1.PodStatus", "podIPs", "ip", &["ip"]),
    merge_map("io.k8s.api.core.v1.PodStatus", "hostIPs", "ip", &["ip"]),
    merge_retain_map(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "name",
    ),
    atomic("io.k8s.api.core.v1.PodStatus", "containerStatuses"),
    atomic("io.k8s.api.core.v1.PodStatus", "initContainerStatuses"),
    // core/v1 other kinds
    merge_map(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "port",
        &["port", "protocol"],
    ),
    atomic("io.k8s.api.core.v1.ServiceSpec", "clusterIPs"),
    atomic("io.k8s.api.core.v1.ServiceSpec", "ipFamilies"),
    conditions("io.k8s.api.core.v1.ServiceStatus"),
    PropertyMeta {
        definition: "io.k8s.api.core.v1.NodeSpec",
        property: "podCIDRs",
        patch_strategy: Some("merge"),
        merge_key: None,
        list_type: Some("set"),
        list_map_keys: &[],
    },
    atomic("io.k8s.api.core.v1.NodeSpec", "taints"),
    conditions("io.k8s.api.core.v1.NodeStatus"),
    merge_map(
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "type",
        &["type"],
    ),
    conditions("io.k8s.api.core.v1.NamespaceStatus"),
    conditions("io.k8s.api.core.v1.ReplicationControllerStatus"),
    conditions("io.k8s.api.core.v1.PersistentVolumeClaimStatus"),
    merge_map(
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "name",
        &["name"],
    ),
    PropertyMeta {
        definition: "io.k8s.api.core.v1.ResourceRequirements",
        property: "claims",
        patch_strategy: None,
        merge_key: None,
        list_type: Some("map"),
        list_map_keys: &["name"],
    },
    atomic("io.k8s.api.core.v1.LimitRangeSpec", "limits"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "addresses"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "notReadyAddresses"),
    atomic("io.k8s.api.core.v1.EndpointSubset", "ports"),
    // apps/v1
    PropertyMeta {
        definition: "io.k8s.api.apps.v1.DeploymentSpec",
        property: "strategy",
        patch_strategy: Some("retainKeys"),
        merge_key: None,
        list_type: None,
        list_map_keys: &[],
    },
    conditions("io.k8s.api.apps.v1.DeploymentStatus"),
    conditions("io.k8s.api.apps.v1.ReplicaSetStatus"),
    conditions("io.k8s.api.apps.v1.DaemonSetStatus"),
    conditions("io.k8s.api.apps.v1.StatefulSetStatus"),
    atomic("io.k8s.api.apps.v1.StatefulSetSpec", "volumeClaimTemplates"),
    // batch/v1
    PropertyMeta {
        list_type: Some("atomic"),
        list_map_keys: &[],
        ..conditions("io.k8s.api.batch.v1.JobStatus")
    },
    atomic("io.k8s.api.batch.v1.CronJobStatus", "active"),
    // autoscaling/v2, policy/v1, certificates/v1
    conditions("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus"),
    atomic(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        "metrics",
    ),
    conditions("io.k8s.api.policy.v1.PodDisruptionBudgetStatus"),
    PropertyMeta {
        patch_strategy: None,
        merge_key: None,
        ..conditions("io.k8s.api.certificates.v1.CertificateSigningRequestStatus")
    },
    // networking/v1, discovery/v1, rbac/v1
    atomic("io.k8s.api.networking.v1.IngressSpec", "rules"),
    atomic("io.k8s.api.networking.v1.IngressSpec", "tls"),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "ingress"),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "egress"),
    atomic("io.k8s.api.networking.v1.NetworkPolicySpec", "policyTypes"),
    atomic("io.k8s.api.discovery.v1.EndpointSlice", "endpoints"),
    atomic("io.k8s.api.discovery.v1.EndpointSlice", "ports"),
    atomic("io.k8s.api.rbac.v1.Role", "rules"),
    atomic("io.k8s.api.rbac.v1.ClusterRole", "rules"),
    atomic("io.k8s.api.rbac.v1.RoleBinding", "subjects"),
    atomic("io.k8s.api.rbac.v1.ClusterRoleBinding", "subjects"),
];

/// Adds the extensions of [`PROPERTY_META`] to the definitions (schema name → schema).
pub(crate) fn annotate(definitions: &mut serde_json::Map<String, serde_json::Value>) {
    for meta in PROPERTY_META {
        let Some(prop) = definitions
            .get_mut(meta.definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(meta.property))
            .and_then(|p| p.as_object_mut())
        else {
            continue;
        };
        if let Some(strategy) = meta.patch_strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
        if let Some(key) = meta.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(list_type) = meta.list_type {
            prop.insert("x-kubernetes-list-type".into(), list_type.into());
        }
        if !meta.list_map_keys.is_empty() {
            prop.insert(
                "x-kubernetes-list-map-keys".into(),
                meta.list_map_keys.into(),
            );
        }
    }
}

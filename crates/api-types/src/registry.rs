//! The resource registry: one table that knows every served kind's group, version,
//! plural, short names, scope, verbs, categories and subresources. The apiserver's
//! generic handlers, discovery, OpenAPI and kubectl all read it; adding a resource is
//! one entry here plus (optionally) its validation/defaulting strategy.

use std::sync::LazyLock;

use foldhash::HashMap;

/// A subresource served under `/<plural>/<name>/<sub>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    Eviction,
    Log,
    Exec,
    Attach,
    PortForward,
    Proxy,
    Token,
    /// `certificatesigningrequests/approval`.
    Approval,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Proxy => "proxy",
            Subresource::Token => "token",
            Subresource::Approval => "approval",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ALL_SUBRESOURCES.iter().copied().find(|s| s.name() == name)
    }

    /// The (group, version, kind) a subresource speaks, when it is not the parent's kind.
    pub fn kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Subresource::Scale => Some(("autoscaling", "v1", "Scale")),
            Subresource::Binding => Some(("", "v1", "Binding")),
            Subresource::Eviction => Some(("policy", "v1", "Eviction")),
            Subresource::Token => Some(("authentication.k8s.io", "v1", "TokenRequest")),
            _ => None,
        }
    }

    /// Verbs listed in discovery for this subresource.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale | Subresource::Approval => {
                &["get", "patch", "update"]
            }
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
            Subresource::Proxy => &["create", "delete", "get", "patch", "update"],
        }
    }
}

const ALL_SUBRESOURCES: &[Subresource] = &[
    Subresource::Status,
    Subresource::Scale,
    Subresource::Binding,
    Subresource::Eviction,
    Subresource::Log,
    Subresource::Exec,
    Subresource::Attach,
    Subresource::PortForward,
    Subresource::Proxy,
    Subresource::Token,
    Subresource::Approval,
];

/// The standard verbs of a fully served resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, the URL segment and the etcd key segment.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Objects are stored with an etcd lease of `--event-ttl` (events).
    pub ttl: bool,
}

impl ResourceInfo {
    /// `v1` for the core group, `<group>/<version>` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `pods` for core, `deployments.apps` for named groups (kubectl's error-message form).
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// Whether PUT/PATCH of the main resource ignores `.status` (true when a status
    /// subresource exists, as upstream's strategies do).
    pub fn status_is_subresource(&self) -> bool {
        self.has_subresource(Subresource::Status)
    }

    /// Whether `metadata.generation` is bumped on spec changes.
    pub fn tracks_generation(&self) -> bool {
        self.status_is_subresource()
    }

    /// The etcd key prefix of this resource, e.g. `/registry/pods/`.
    pub fn key_prefix(&self) -> String {
        self.registry_path(&[self.plural, ""])
    }

    /// The etcd key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => self.registry_path(&[self.plural, ns, name]),
            _ => self.registry_path(&[self.plural, name]),
        }
    }

    /// The prefix under which a (possibly namespaced) list reads.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => self.registry_path(&[self.plural, ns, ""]),
            _ => self.key_prefix(),
        }
    }

    /// `/registry/` and `parts` joined by `/`, in one allocation (keys are built
    /// several times per request; `format!` costs several times as much).
    fn registry_path(&self, parts: &[&str]) -> String {
        const ROOT: &str = "/registry";
        let len = ROOT.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(ROOT);
        for part in parts {
            key.push('/');
            key.push_str(part);
        }
        key
    }
}

use Subresource::*;

const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];
const RO_VERBS: &[&str] = &["get", "list", "watch"];

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $short:expr, $ns:expr, $cats:expr, $subs:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: $short,
            namespaced: $ns,
            verbs: ALL_VERBS,
            categories: $cats,
            subresources: $subs,
            ttl: false,
        }
    };
}

/// Every served resource. Order is discovery order within a group-version.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        &["ns"],
        false,
        NONE,
        &[Status]
    ),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        &["po"],
        true,
        ALL,
        &[
            Status,
            Binding,
            Eviction,
            Log,
            Exec,
            Attach,
            PortForward,
            Proxy
        ]
    ),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        &["svc"],
        true,
        ALL,
        &[Status, Proxy]
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        &["ep"],
        true,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        &["no"],
        false,
        NONE,
        &[Status, Proxy]
    ),
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        &["cm"],
        true,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        NONE,
        true,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        &["sa"],
        true,
        NONE,
        &[Token]
    ),
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        &["rc"],
        true,
        ALL,
        &[Status, Scale]
    ),
    ResourceInfo {
        ttl: true,
        ..res!(
            "",
            "v1",
            "Event",
            "events",
            "event",
            &["ev"],
            true,
            NONE,
            &[]
        )
    },
    res!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        &["limits"],
        true,
        NONE,
        &[]
    ),
    res!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        &["quota"],
        true,
        NONE,
        &[Status]
    ),
    res!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        &["pv"],
        false,
        NONE,
        &[Status]
    ),
    res!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        &["pvc"],
        true,
        NONE,
        &[Status]
    ),
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "",
            "v1",
            "Binding",
            "bindings",
            "binding",
            NONE,
            true,
            NONE,
            &[]
        )
    },
    ResourceInfo {
        verbs: RO_VERBS,
        ..res!(
            "",
            "v1",
            "ComponentStatus",
            "componentstatuses",
            "componentstatus",
            &["cs"],
            false,
            NONE,
            &[]
        )
    },
    // apps/v1
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        &["deploy"],
        true,
        ALL,
        &[Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        &["rs"],
        true,
        ALL,
        &[Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        &["ds"],
        true,
        ALL,
        &[Status]
    ),
    res!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        &["sts"],
        true,
        ALL,
        &[Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        NONE,
        true,
        NONE,
        &[]
    ),
    // batch/v1
    res!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        NONE,
        true,
        ALL,
        &[Status]
    ),
    res!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        &["cj"],
        true,
        ALL,
        &[Status]
    ),
    // autoscaling/v2
    res!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        &["hpa"],
        true,
        ALL,
        &[Status]
    ),
    // autoscaling/v1: the same objects, stored as v2 (conversion::hpa); v2 stays preferred.
    res!(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        &["hpa"],
        true,
        ALL,
        &[Status]
    ),
    // coordination.k8s.io/v1
    res!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        NONE,
        true,
        NONE,
        &[]
    ),
    // discovery.k8s.io/v1
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        NONE,
        true,
        NONE,
        &[]
    ),
    // events.k8s.io/v1 (same storage as core events upstream; kept separate here)
    // No short name: `ev` resolves to core events without an ambiguity warning.
    ResourceInfo {
        ttl: true,
        ..res!(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            NONE,
            true,
            NONE,
            &[]
        )
    },
    // policy/v1
    res!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        &["pdb"],
        true,
        NONE,
        &[Status]
    ),
    // networking.k8s.io/v1
    res!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        &["ing"],
        true,
        NONE,
        &[Status]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        &["netpol"],
        true,
        NONE,
        &[]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        NONE,
        false,
        NONE,
        &[]
    ),
    // rbac.authorization.k8s.io/v1
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        NONE,
        true,
        NONE,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        NONE,
        true,
        NONE,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        NONE,
        false,
        NONE,
        &[]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        NONE,
        false,
        NONE,
        &[]
    ),
    // authentication.k8s.io/v1 and authorization.k8s.io/v1: create-only, never stored
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            "tokenreview",
            NONE,
            false,
            NONE,
            &[]
        )
    },
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            "selfsubjectreview",
            NONE,
            false,
            NONE,
            &[]
        )
    },
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            "localsubjectaccessreview",
            NONE,
            true,
            NONE,
            &[]
        )
    },
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            NONE,
            false,
            NONE,
            &[]
        )
    },
    ResourceInfo {
        verbs: &["create"],
        ..res!(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            "subjectaccessreview",
            NONE,
            false,
            NONE,
            &[]
        )
    },
    // storage.k8s.io/v1
    res!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        &["sc"],
        false,
        NONE,
        &[]
    ),
    // certificates.k8s.io/v1
    res!(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        &["csr"],
        false,
        NONE,
        &[Status, Approval]
    ),
    // scheduling.k8s.io/v1
    res!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        &["pc"],
        false,
        NONE,
        &[]
    ),
];

/// Every served resource.
pub fn resources() -> &'static [ResourceInfo] {
    RESOURCES
}

/// Looks up a resource by group, version and plural (the URL form).
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    // Every request looks its resource up (some several times): an index, not a scan
    // of the table with three string compares per entry.
    static BY_PLURAL: LazyLock<HashMap<(&str, &str, &str), &ResourceInfo>> = LazyLock::new(|| {
        RESOURCES
            .iter()
            .rev()
            .map(|r| ((r.group, r.version, r.plural), r))
            .collect()
    });
    // Built from the table's end, so on a clash the first entry wins, as in a scan.
    // The map is covariant in its key, so it can be asked with borrowed strs.
    let index: &HashMap<(&str, &str, &str), &'static ResourceInfo> = &BY_PLURAL;
    index.get(&(group, version, plural)).copied()
}

/// Looks up a resource by apiVersion (`v1`, `apps/v1`) and kind.
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    static BY_KIND: LazyLock<HashMap<(&str, &str, &str), &ResourceInfo>> = LazyLock::new(|| {
        RESOURCES
            .iter()
            .rev()
            .map(|r| ((r.group, r.version, r.kind), r))
            .collect()
    });
    let (group, version) = split_api_version(api_version);
    let index: &HashMap<(&str, &str, &str), &'static ResourceInfo> = &BY_KIND;
    index.get(&(group, version, kind)).copied()
}

/// Finds a resource the way kubectl resolves a user-typed name: plural, singular,
/// short name or kind (case-insensitive), optionally qualified with `.group`.
pub fn resolve(name: &str) -> Option<&'static ResourceInfo> {
    let name = name.to_ascii_lowercase();
    let (base, group) = match name.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (name.clone(), None),
    };
    let mut candidates = RESOURCES.iter().filter(|r| {
        group.as_deref().is_none_or(|g| r.group == g)
            && (r.plural == base
                || r.singular == base
                || r.short_names.contains(&base.as_str())
                || r.kind.eq_ignore_ascii_case(&base))
    });
    // Prefer the core group (e.g. `events` resolves to core/v1 Event as kubectl does).
    let first = candidates.next()?;
    Some(first)
}

/// Resources belonging to one group-version, in table order.
pub fn group_version_resources<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Distinct (group, version) pairs served, in table order, core first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "duplicate {}/{}",
                    a.group,
                    a.plural
                );
            }
        }
    }

    #[test]
    fn resolves_short_names_and_kinds() {
        assert_eq!(resolve("po").map(|r| r.plural), Some("pods"));
        assert_eq!(resolve("Deployment").map(|r| r.group), Some("apps"));
        assert_eq!(
            resolve("deployments.apps").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(resolve("events").map(|r| r.group), Some(""));
        assert!(resolve("nosuchthing").is_none());
    }

    #[test]
    fn keys_follow_upstream_layout() {
        let pods = lookup("", "v1", "pods").expect("pods registered");
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        let nodes = lookup("", "v1", "nodes").expect("nodes registered");
        assert_eq!(nodes.key(None, "n1"), "/registry/nodes/n1");
        assert_eq!(
            lookup_kind("apps/v1", "Deployment").map(|r| r.plural),
            Some("deployments")
        );
    }
}

//! The message table the decoder walks: every built-in Kubernetes protobuf message with its
//! field numbers, wire types and JSON names. Generated into `schema.txt` by `gen_schema.py`
//! from the `k8s-pb` (prost) and `k8s-openapi` (JSON) sources of the versions we depend on.

use std::collections::HashMap;

use once_cell::sync::Lazy;

static SCHEMA_TEXT: &str = include_str!("schema.txt");

/// The parsed table, built on first use.
pub(super) static SCHEMA: Lazy<Schema> = Lazy::new(|| {
    Schema::parse(SCHEMA_TEXT).expect("the embedded protobuf schema.txt is well formed")
});

/// Non-pointer Go fields tagged `omitempty` whose zero value gogo-protobuf always writes.
/// Upstream's JSON leaves them out, so we drop their zero too (`MessageName.jsonName`).
/// Every other number or bool is kept as sent: a pointer field set to 0/false (`replicas: 0`,
/// `automountServiceAccountToken: false`) means something, and the wire cannot tell them apart.
const OMIT_ZERO: &[&str] = &[
    "ObjectMeta.generation",
    "DeploymentSpec.minReadySeconds",
    "DeploymentSpec.paused",
    "DeploymentStatus.observedGeneration",
    "DeploymentStatus.replicas",
    "DeploymentStatus.updatedReplicas",
    "DeploymentStatus.readyReplicas",
    "DeploymentStatus.availableReplicas",
    "DeploymentStatus.unavailableReplicas",
    "ReplicaSetSpec.minReadySeconds",
    "ReplicaSetStatus.fullyLabeledReplicas",
    "ReplicaSetStatus.readyReplicas",
    "ReplicaSetStatus.availableReplicas",
    "ReplicaSetStatus.observedGeneration",
    "ReplicationControllerSpec.minReadySeconds",
    "ReplicationControllerStatus.fullyLabeledReplicas",
    "ReplicationControllerStatus.readyReplicas",
    "ReplicationControllerStatus.availableReplicas",
    "ReplicationControllerStatus.observedGeneration",
    "StatefulSetSpec.minReadySeconds",
    "StatefulSetStatus.observedGeneration",
    "StatefulSetStatus.readyReplicas",
    "StatefulSetStatus.currentReplicas",
    "StatefulSetStatus.updatedReplicas",
    "StatefulSetStatus.availableReplicas",
    "DaemonSetSpec.minReadySeconds",
    "DaemonSetStatus.observedGeneration",
    "DaemonSetStatus.updatedNumberScheduled",
    "DaemonSetStatus.numberAvailable",
    "DaemonSetStatus.numberUnavailable",
    "JobStatus.active",
    "JobStatus.succeeded",
    "JobStatus.failed",
    "PodDisruptionBudgetStatus.observedGeneration",
    "PodSpec.hostNetwork",
    "PodSpec.hostPID",
    "PodSpec.hostIPC",
    "Container.stdin",
    "Container.stdinOnce",
    "Container.tty",
    "EphemeralContainerCommon.stdin",
    "EphemeralContainerCommon.stdinOnce",
    "EphemeralContainerCommon.tty",
    "ContainerPort.hostPort",
    "ServicePort.nodePort",
    "ServiceSpec.publishNotReadyAddresses",
    "ServiceSpec.healthCheckNodePort",
    "Probe.initialDelaySeconds",
    "Probe.timeoutSeconds",
    "Probe.periodSeconds",
    "Probe.successThreshold",
    "Probe.failureThreshold",
    "VolumeMount.readOnly",
    "NodeSpec.unschedulable",
    "Event.count",
    "ServiceBackendPort.number",
    "PriorityClass.globalDefault",
    "ContainerStateTerminated.signal",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldType {
    Scalar(Scalar),
    /// Index into [`Schema::messages`].
    Message(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Optional,
    Repeated,
    /// `map<string, T>`; the type is the value type.
    Map,
}

#[derive(Debug)]
pub(super) struct Field {
    pub tag: u32,
    pub json_name: &'static str,
    pub label: Label,
    pub ty: FieldType,
    /// Required in the JSON schema: written even when empty.
    pub required: bool,
    /// A zero number or false bool is left out (see [`OMIT_ZERO`]).
    pub omit_zero: bool,
    /// A Go embedded struct (`json:",inline"`, e.g. `Volume.volumeSource`): its JSON fields
    /// are merged into the parent object.
    pub inline: bool,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    None,
    /// metav1.Time: RFC 3339 seconds; the zero time is left out.
    Time,
    /// metav1.MicroTime: RFC 3339 with microseconds.
    MicroTime,
    /// metav1.Duration: Go duration string (`1h0m0s`).
    Duration,
    /// RawExtension, FieldsV1, apiextensions JSON: field 1 holds embedded JSON.
    RawJson,
    IntOrString,
    /// resource.Quantity: field 1 is the canonical string.
    Quantity,
    /// A named Go slice (`ExtraValue`, `Verbs`): JSON is its `items` array.
    ListWrapper,
    /// JSONSchemaPropsOrArray: the array if set, else the schema.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: the schema if set, else the bool.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: the string array if set, else the schema.
    SchemaOrStringArray,
}

#[derive(Debug)]
pub(super) struct Message {
    /// Full name, e.g. `api.core.v1.PodSpec`.
    pub name: &'static str,
    pub special: Special,
    /// Fields in declaration order (the Go struct order, which JSON follows).
    pub fields: Vec<Field>,
}

impl Message {
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }
}

#[derive(Debug)]
pub(super) struct Schema {
    pub messages: Vec<Message>,
    by_name: HashMap<&'static str, usize>,
    /// (apiVersion, kind) → message.
    kinds: HashMap<(&'static str, &'static str), usize>,
    /// apiVersion → module holding its messages (`apps/v1` → `api.apps.v1`).
    modules: HashMap<&'static str, &'static str>,
}

const META_V1: &str = "apimachinery.pkg.apis.meta.v1";

impl Schema {
    fn parse(text: &'static str) -> Result<Schema, String> {
        let mut messages: Vec<Message> = Vec::new();
        let mut kind_lines = Vec::new();
        // Field types reference messages by name; resolved once all messages are known.
        let mut pending: Vec<(usize, usize, &'static str)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let bad = || format!("schema.txt line {}: {line:?}", number + 1);
            let parts: Vec<&'static str> = line.split(' ').collect();
            match parts.as_slice() {
                [] | [""] => {}
                ["K", api_version, kind, message] => {
                    kind_lines.push((*api_version, *kind, *message))
                }
                ["M", name, flags @ ..] => messages.push(Message {
                    name,
                    special: special_for(name, flags.contains(&"L")),
                    fields: Vec::new(),
                }),
                ["F", tag, json_name, label, ty, flags @ ..] => {
                    let owner = messages.len().checked_sub(1).ok_or_else(bad)?;
                    let message = &mut messages[owner];
                    let label = match *label {
                        "o" => Label::Optional,
                        "r" => Label::Repeated,
                        "m" => Label::Map,
                        _ => return Err(bad()),
                    };
                    let ty = match *ty {
                        "string" => FieldType::Scalar(Scalar::String),
                        "bytes" => FieldType::Scalar(Scalar::Bytes),
                        "bool" => FieldType::Scalar(Scalar::Bool),
                        "int32" => FieldType::Scalar(Scalar::Int32),
                        "int64" => FieldType::Scalar(Scalar::Int64),
                        "double" => FieldType::Scalar(Scalar::Double),
                        other => {
                            let target = other.strip_prefix("m:").ok_or_else(bad)?;
                            pending.push((owner, message.fields.len(), target));
                            FieldType::Message(usize::MAX)
                        }
                    };
                    let omit_zero = OMIT_ZERO.iter().any(|entry| {
                        entry.split_once('.') == Some((message.short_name(), json_name))
                    });
                    message.fields.push(Field {
                        tag: tag.parse().map_err(|_| bad())?,
                        json_name,
                        label,
                        ty,
                        required: flags.contains(&"!"),
                        omit_zero,
                        inline: flags.contains(&"I"),
                    });
                }
                _ => return Err(bad()),
            }
        }
        let by_name: HashMap<&'static str, usize> = messages
            .iter()
            .enumerate()
            .map(|(index, m)| (m.name, index))
            .collect();
        for (message, field, target) in pending {
            let index = *by_name
                .get(target)
                .ok_or_else(|| format!("unknown message {target}"))?;
            messages[message].fields[field].ty = FieldType::Message(index);
        }
        let mut kinds = HashMap::new();
        let mut modules = HashMap::new();
        for (api_version, kind, message) in kind_lines {
            let index = *by_name
                .get(message)
                .ok_or_else(|| format!("unknown message {message}"))?;
            kinds.insert((api_version, kind), index);
            if let Some((module, _)) = message.rsplit_once('.') {
                modules.insert(api_version, module);
            }
        }
        Ok(Schema {
            messages,
            by_name,
            kinds,
            modules,
        })
    }

    pub fn message(&self, name: &str) -> Option<&Message> {
        self.by_name.get(name).map(|&index| &self.messages[index])
    }

    /// The message a `(apiVersion, kind)` is encoded with: a resource, else a message of the
    /// same name in that group-version (subresource kinds such as `Scale`, `Eviction`), else
    /// the option kinds metav1 registers into every group-version (`DeleteOptions`).
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&Message> {
        if let Some(&index) = self.kinds.get(&(api_version, kind)) {
            return Some(&self.messages[index]);
        }
        let same_module = self
            .modules
            .get(api_version)
            .and_then(|module| self.message(&format!("{module}.{kind}")));
        same_module.or_else(|| {
            const META_KINDS: &[&str] = &[
                "DeleteOptions",
                "CreateOptions",
                "UpdateOptions",
                "PatchOptions",
                "GetOptions",
                "ListOptions",
                "Status",
            ];
            let known_version =
                self.modules.contains_key(api_version) || api_version == "meta.k8s.io/v1";
            (known_version && META_KINDS.contains(&kind))
                .then(|| self.message(&format!("{META_V1}.{kind}")))
                .flatten()
        })
    }
}

fn special_for(name: &str, list_wrapper: bool) -> Special {
    if list_wrapper {
        return Special::ListWrapper;
    }
    let (module, short) = name.rsplit_once('.').unwrap_or(("", name));
    let apiextensions = module.starts_with("apiextensions_apiserver.pkg.apis.apiextensions.");
    match (module, short) {
        (META_V1, "Time") => Special::Time,
        (META_V1, "MicroTime") => Special::MicroTime,
        (META_V1, "Duration") => Special::Duration,
        (META_V1, "FieldsV1") | ("apimachinery.pkg.runtime", "RawExtension") => Special::RawJson,
        ("apimachinery.pkg.util.intstr", "IntOrString") => Special::IntOrString,
        ("apimachinery.pkg.api.resource", "Quantity") => Special::Quantity,
        (_, "Json") if apiextensions => Special::RawJson,
        (_, "JsonSchemaPropsOrArray") if apiextensions => Special::SchemaOrArray,
        (_, "JsonSchemaPropsOrBool") if apiextensions => Special::SchemaOrBool,
        (_, "JsonSchemaPropsOrStringArray") if apiextensions => Special::SchemaOrStringArray,
        _ => Special::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses_and_resolves_every_reference() {
        let schema = &*SCHEMA;
        assert!(schema.messages.len() > 1000);
        let pod_spec = schema.message("api.core.v1.PodSpec").expect("PodSpec");
        let host_ipc = pod_spec
            .fields
            .iter()
            .find(|f| f.tag == 13)
            .expect("field 13");
        assert_eq!(host_ipc.json_name, "hostIPC");
        let volume = schema.message("api.core.v1.Volume").expect("Volume");
        assert!(volume
            .fields
            .iter()
            .any(|f| f.json_name == "volumeSource" && f.inline));
        assert!(host_ipc.omit_zero);
        let containers = pod_spec
            .fields
            .iter()
            .find(|f| f.json_name == "containers")
            .expect("containers");
        assert!(containers.required);
        assert_eq!(containers.label, Label::Repeated);
        match containers.ty {
            FieldType::Message(index) => {
                assert_eq!(schema.messages[index].name, "api.core.v1.Container")
            }
            other => panic!("containers is {other:?}"),
        }
    }

    #[test]
    fn every_omit_zero_entry_names_a_real_scalar_field() {
        for entry in OMIT_ZERO {
            let (message, field) = entry.split_once('.').expect("Message.field");
            let found = SCHEMA
                .messages
                .iter()
                .filter(|m| m.short_name() == message)
                .any(|m| {
                    m.fields.iter().any(|f| {
                        f.json_name == field && f.omit_zero && matches!(f.ty, FieldType::Scalar(_))
                    })
                });
            assert!(found, "{entry} matches no scalar field");
        }
    }

    #[test]
    fn kinds_resolve_resources_subresources_and_options() {
        let schema = &*SCHEMA;
        let name = |v: &str, k: &str| schema.kind(v, k).map(|m| m.name);
        assert_eq!(
            name("apps/v1", "Deployment"),
            Some("api.apps.v1.Deployment")
        );
        assert_eq!(name("v1", "Namespace"), Some("api.core.v1.Namespace"));
        assert_eq!(
            name("autoscaling/v1", "Scale"),
            Some("api.autoscaling.v1.Scale")
        );
        assert_eq!(
            name("policy/v1", "Eviction"),
            Some("api.policy.v1.Eviction")
        );
        assert_eq!(
            name("v1", "DeleteOptions"),
            Some("apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(name("v1", "Foo"), None);
        assert_eq!(name("nope/v9", "Pod"), None);
        for resource in crate::registry::RESOURCES {
            let api_version = match resource.group {
                "" => resource.version.to_string(),
                group => format!("{group}/{}", resource.version),
            };
            assert!(
                schema.kind(&api_version, resource.kind).is_some(),
                "{api_version} {}",
                resource.kind
            );
        }
    }
}

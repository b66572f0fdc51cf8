//! Container environment as upstream's `makeEnvironmentVariables`: `envFrom`, then
//! `env` in order (value with `$(VAR)` expansion, configMapKeyRef, secretKeyRef,
//! fieldRef, resourceFieldRef).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

use super::resources;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldPath: {0}")]
    UnsupportedFieldPath(String),
    #[error("unsupported resource: {0}")]
    UnsupportedResource(String),
}

/// The ConfigMaps and Secrets of the pod's namespace that its containers refer
/// to, fetched by the worker before building container configs (`None`: absent).
#[derive(Debug, Default, Clone)]
pub struct Referenced {
    pub config_maps: HashMap<String, Option<ConfigMap>>,
    pub secrets: HashMap<String, Option<Secret>>,
    /// Service account tokens of projected volumes, by (volume, source index).
    pub tokens: super::projected::Tokens,
    /// How many reads failed (not "not found"): such a set must not replace
    /// volume contents, or an API blip would empty them.
    pub fetch_errors: usize,
    /// Resolved `persistentVolumeClaim` volumes, by volume name.
    pub claims: HashMap<String, super::pvc::ClaimVolume>,
}

impl Referenced {
    /// String data of a ConfigMap (`data` plus UTF-8 `binaryData`).
    pub fn config_map_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let cm = self.config_maps.get(name)?.as_ref()?;
        let mut data = cm.data.clone().unwrap_or_default();
        for (k, v) in cm.binary_data.iter().flatten() {
            data.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
        }
        Some(data)
    }

    /// Decoded data of a Secret (`data` plus `stringData`).
    pub fn secret_data(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.secrets.get(name)?.as_ref()?;
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        Some(data)
    }
}

/// Names of the ConfigMaps and Secrets the pod's containers and volumes use.
pub fn referenced_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    let Some(spec) = &pod.spec else {
        return (config_maps, secrets);
    };
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        for from in c.env_from.iter().flatten() {
            config_maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for env in c.env.iter().flatten() {
            let Some(source) = &env.value_from else {
                continue;
            };
            config_maps.extend(source.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(source.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    for v in spec.volumes.iter().flatten() {
        config_maps.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            config_maps.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    config_maps.sort();
    config_maps.dedup();
    secrets.sort();
    secrets.dedup();
    (config_maps, secrets)
}

/// Run-time facts fieldRefs can point at.
#[derive(Debug, Default, Clone)]
pub struct PodFacts {
    pub pod_ip: String,
    pub host_ip: String,
    pub node_name: String,
}

/// The environment of `container`, in order, duplicates resolved last-wins.
pub fn make_environment(
    pod: &Pod,
    container: &Container,
    refs: &Referenced,
    facts: &PodFacts,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, key: String, value: String| {
        if let Some(existing) = vars.iter_mut().find(|(k, _)| *k == key) {
            existing.1 = value;
        } else {
            vars.push((key, value));
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match refs.config_map_data(&r.name) {
                Some(data) => data
                    .into_iter()
                    .for_each(|(k, v)| set(&mut vars, format!("{prefix}{k}"), v)),
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match refs.secret_data(&r.name) {
                Some(data) => data.into_iter().for_each(|(k, v)| {
                    set(
                        &mut vars,
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                }),
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for env in container.env.iter().flatten() {
        let value = if let Some(source) = &env.value_from {
            if let Some(r) = &source.config_map_key_ref {
                let optional = r.optional == Some(true);
                match refs.config_map_data(&r.name) {
                    None if optional => continue,
                    None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
                    Some(data) => match data.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::ConfigMapKeyNotFound {
                                namespace: namespace.clone(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    },
                }
            } else if let Some(r) = &source.secret_key_ref {
                let optional = r.optional == Some(true);
                match refs.secret_data(&r.name) {
                    None if optional => continue,
                    None => return Err(EnvError::SecretNotFound(r.name.clone())),
                    Some(data) => match data.get(&r.key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::SecretKeyNotFound {
                                namespace: namespace.clone(),
                                name: r.name.clone(),
                                key: r.key.clone(),
                            })
                        }
                    },
                }
            } else if let Some(r) = &source.field_ref {
                field_value(pod, &r.field_path, facts)?
            } else if let Some(r) = &source.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(name) => pod
                        .spec
                        .iter()
                        .flat_map(|s| {
                            s.containers
                                .iter()
                                .chain(s.init_containers.iter().flatten())
                        })
                        .find(|c| c.name == name)
                        .unwrap_or(container),
                    None => container,
                };
                resources::resource_field_value(
                    target,
                    &r.resource,
                    r.divisor.as_ref().map(|q| q.0.as_str()),
                )
                .ok_or_else(|| EnvError::UnsupportedResource(r.resource.clone()))?
            } else {
                String::new()
            }
        } else {
            let defined: HashMap<&str, &str> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(env.value.as_deref().unwrap_or(""), &defined)
        };
        set(&mut vars, env.name.clone(), value);
    }
    Ok(vars)
}

/// The value of a downward-API `fieldPath`.
pub fn field_value(pod: &Pod, path: &str, facts: &PodFacts) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: Option<&BTreeMap<String, String>>, key: &str| {
        map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| facts.node_name.clone()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                from_map(meta.labels.as_ref(), &key)
            } else if let Some(key) = subscript("metadata.annotations['") {
                from_map(meta.annotations.as_ref(), &key)
            } else {
                return Err(EnvError::UnsupportedFieldPath(path.to_string()));
            }
        }
    })
}

/// Upstream's `expansion.Expand`: `$(VAR)` is replaced by a defined variable,
/// `$$` escapes a `$`, anything else is left as written.
pub fn expand(input: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match vars.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn expansion_as_upstream() {
        let vars = HashMap::from([("A", "x"), ("B", "y")]);
        assert_eq!(expand("$(A)-$(B)", &vars), "x-y");
        assert_eq!(expand("$$(A) $(C) $", &vars), "$(A) $(C) $");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("a$b", &vars), "a$b");
    }

    fn pod_with(container: Container) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container],
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn var(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.map(str::to_string),
            value_from: from,
        }
    }

    #[test]
    fn env_from_values_refs_and_fields() {
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                prefix: Some("CM_".into()),
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                var("GREETING", Some("hi $(POD)"), None),
                var(
                    "POD",
                    None,
                    Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var(
                    "COLOR",
                    None,
                    Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cfg".into(),
                            key: "color".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var(
                    "IP",
                    None,
                    Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "status.podIP".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var("AFTER", Some("$(POD)/$(COLOR)"), None),
            ]),
            ..Default::default()
        };
        let pod = pod_with(container.clone());
        let mut refs = Referenced::default();
        refs.config_maps.insert(
            "cfg".into(),
            Some(ConfigMap {
                data: Some(BTreeMap::from([("color".to_string(), "blue".to_string())])),
                ..Default::default()
            }),
        );
        let facts = PodFacts {
            pod_ip: "10.1.2.3".into(),
            ..Default::default()
        };
        let env = make_environment(&pod, &container, &refs, &facts).expect("env");
        let expect: Vec<(String, String)> = [
            ("CM_color", "blue"),
            ("GREETING", "hi $(POD)"), // POD is defined later: not expanded, as upstream
            ("POD", "p"),
            ("COLOR", "blue"),
            ("IP", "10.1.2.3"),
            ("AFTER", "p/blue"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expect);

        let missing = make_environment(&pod, &container, &Referenced::default(), &facts)
            .expect_err("missing configmap");
        assert_eq!(missing.to_string(), "configmap \"cfg\" not found");
    }
}

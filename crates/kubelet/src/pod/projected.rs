//! The contents of API-backed volumes (upstream's `MakePayload` of the
//! configmap, secret, downwardapi and projected plugins) and fetching what they
//! refer to: ConfigMaps, Secrets and service account tokens.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};
use kube::api::Api;
use tracing::warn;

use super::atomic_writer::{FileProjection, Payload};
use super::env::{self, PodFacts, Referenced};
use super::resources;
use super::spec;
use super::token::{TokenKey, TokenManager};

/// The ConfigMap every namespace gets (from the controller-manager's
/// root-ca-cert-publisher) and the service account admission projects.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const DEFAULT_MODE: i32 = 0o644;
const DEFAULT_TOKEN_EXPIRATION: i64 = 3600;

/// The tokens of a pod's projected volumes, by (volume, source index).
pub type Tokens = BTreeMap<(String, usize), Result<String, String>>;

/// The plugin directory of a volume whose contents come from the API.
pub fn plugin_dir(volume: &Volume) -> Option<&'static str> {
    if volume.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if volume.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if volume.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else if volume.projected.is_some() {
        Some("kubernetes.io~projected")
    } else {
        None
    }
}

fn mode(mode: Option<i32>, default: i32) -> u32 {
    (mode.unwrap_or(default) as u32) & 0o7777
}

/// `data` as files: all keys, or only `items` (renamed, with their modes).
fn key_files(
    payload: &mut Payload,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    what: &str,
) -> Result<(), String> {
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (key, value) in data {
                payload.insert(
                    key.clone(),
                    FileProjection {
                        data: value.clone(),
                        mode: mode(None, default_mode),
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(value) => {
                        payload.insert(
                            item.path.clone(),
                            FileProjection {
                                data: value.clone(),
                                mode: mode(item.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None if what == "configmap" => {
                        return Err(format!(
                            "configmap references non-existent config key: {}",
                            item.key
                        ))
                    }
                    None => {
                        return Err(format!("references non-existent secret key: {}", item.key))
                    }
                }
            }
        }
    }
    Ok(())
}

fn config_map_bytes(refs: &Referenced, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    refs.config_map_data(name)
        .map(|d| d.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())
}

fn downward_files(
    payload: &mut Payload,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    facts: &PodFacts,
) -> Result<(), String> {
    for item in items {
        let value = if let Some(field) = &item.field_ref {
            env::field_value(pod, &field.field_path, facts).map_err(|e| e.to_string())?
        } else if let Some(r) = &item.resource_field_ref {
            let container = pod
                .spec
                .iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
                .ok_or_else(|| {
                    format!(
                        "container {:?} not found in the pod",
                        r.container_name.as_deref().unwrap_or("")
                    )
                })?;
            resources::resource_field_value(
                container,
                &r.resource,
                r.divisor.as_ref().map(|q| q.0.as_str()),
            )
            .ok_or_else(|| format!("unsupported resource: {}", r.resource))?
        } else {
            continue;
        };
        payload.insert(
            item.path.clone(),
            FileProjection {
                data: value.into_bytes(),
                mode: mode(item.mode, default_mode),
            },
        );
    }
    Ok(())
}

/// The files of a configMap, secret, downwardAPI or projected volume; `None`
/// for the other kinds.
pub fn payload(
    pod: &Pod,
    volume: &Volume,
    refs: &Referenced,
    facts: &PodFacts,
) -> Option<Result<Payload, String>> {
    let mut payload = Payload::new();
    let result = if let Some(cm) = &volume.config_map {
        let optional = cm.optional == Some(true);
        match config_map_bytes(refs, &cm.name) {
            Some(data) => key_files(
                &mut payload,
                &data,
                cm.items.as_deref(),
                cm.default_mode.unwrap_or(DEFAULT_MODE),
                optional,
                "configmap",
            ),
            None if optional => Ok(()),
            None => Err(format!("configmap \"{}\" not found", cm.name)),
        }
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let optional = secret.optional == Some(true);
        match refs.secret_data(&name) {
            Some(data) => key_files(
                &mut payload,
                &data,
                secret.items.as_deref(),
                secret.default_mode.unwrap_or(DEFAULT_MODE),
                optional,
                "secret",
            ),
            None if optional => Ok(()),
            None => Err(format!("secret \"{name}\" not found")),
        }
    } else if let Some(downward) = &volume.downward_api {
        downward_files(
            &mut payload,
            pod,
            downward.items.as_deref().unwrap_or_default(),
            downward.default_mode.unwrap_or(DEFAULT_MODE),
            facts,
        )
    } else if let Some(projected) = &volume.projected {
        projected_files(
            &mut payload,
            pod,
            volume,
            refs,
            facts,
            projected.default_mode.unwrap_or(DEFAULT_MODE),
        )
    } else {
        return None;
    };
    Some(result.map(|()| payload))
}

fn projected_files(
    payload: &mut Payload,
    pod: &Pod,
    volume: &Volume,
    refs: &Referenced,
    facts: &PodFacts,
    default_mode: i32,
) -> Result<(), String> {
    let sources = volume
        .projected
        .as_ref()
        .and_then(|p| p.sources.as_deref())
        .unwrap_or_default();
    for (index, source) in sources.iter().enumerate() {
        if let Some(cm) = &source.config_map {
            let optional = cm.optional == Some(true);
            match config_map_bytes(refs, &cm.name) {
                Some(data) => key_files(
                    payload,
                    &data,
                    cm.items.as_deref(),
                    default_mode,
                    optional,
                    "configmap",
                )?,
                None if optional => {}
                // Published by the controller-manager's root-ca-cert-publisher; until
                // it exists the rest of the service account volume still mounts.
                None if cm.name == ROOT_CA_CONFIG_MAP => {
                    warn!(pod = %spec::pod_name(pod), volume = %volume.name, "configmap {ROOT_CA_CONFIG_MAP:?} not found in namespace {:?}; mounting the volume without it", spec::pod_namespace(pod));
                }
                None => return Err(format!("configmap \"{}\" not found", cm.name)),
            }
        }
        if let Some(secret) = &source.secret {
            let optional = secret.optional == Some(true);
            match refs.secret_data(&secret.name) {
                Some(data) => key_files(
                    payload,
                    &data,
                    secret.items.as_deref(),
                    default_mode,
                    optional,
                    "secret",
                )?,
                None if optional => {}
                None => return Err(format!("secret \"{}\" not found", secret.name)),
            }
        }
        if let Some(downward) = &source.downward_api {
            downward_files(
                payload,
                pod,
                downward.items.as_deref().unwrap_or_default(),
                default_mode,
                facts,
            )?;
        }
        if let Some(token) = &source.service_account_token {
            let value = match refs.tokens.get(&(volume.name.clone(), index)) {
                Some(Ok(token)) => token.clone(),
                Some(Err(err)) => return Err(err.clone()),
                None => return Err("failed to fetch token: not requested".into()),
            };
            payload.insert(
                token.path.clone(),
                FileProjection {
                    data: value.into_bytes(),
                    mode: mode(None, default_mode),
                },
            );
        }
    }
    Ok(())
}

/// The TokenRequest each `serviceAccountToken` source of the pod needs.
pub fn token_keys(pod: &Pod) -> Vec<((String, usize), TokenKey)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let service_account = spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    let mut keys = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        for (index, source) in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .enumerate()
        {
            let Some(token) = &source.service_account_token else {
                continue;
            };
            let key = TokenKey {
                namespace: spec::pod_namespace(pod).to_string(),
                service_account: service_account.clone(),
                audiences: token
                    .audience
                    .clone()
                    .filter(|a| !a.is_empty())
                    .into_iter()
                    .collect(),
                expiration_seconds: token.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION),
                pod_name: spec::pod_name(pod).to_string(),
                pod_uid: spec::pod_uid(pod).to_string(),
            };
            keys.push(((volume.name.clone(), index), key));
        }
    }
    keys
}

/// Names of the ConfigMaps and Secrets the pod's volumes use.
fn volume_referenced_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let (mut config_maps, mut secrets) = (Vec::new(), Vec::new());
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        config_maps.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            config_maps.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    for names in [&mut config_maps, &mut secrets] {
        names.sort();
        names.dedup();
    }
    (config_maps, secrets)
}

/// What to fetch: everything the pod uses, or only what its volumes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Volumes,
}

/// Fetches the ConfigMaps, Secrets and tokens the pod uses (absent objects
/// are recorded as `None`, failed tokens as errors).
pub async fn fetch_referenced(
    client: Option<&kube::Client>,
    tokens: &TokenManager,
    pod: &Pod,
    scope: Scope,
) -> Referenced {
    let mut refs = Referenced::default();
    let Some(client) = client else { return refs };
    let (config_maps, secrets) = match scope {
        Scope::All => env::referenced_names(pod),
        Scope::Volumes => volume_referenced_names(pod),
    };
    let ns = spec::pod_namespace(pod);
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for name in config_maps {
        let found = cm_api.get_opt(&name).await.unwrap_or_else(|err| {
            warn!("reading configmap {name}: {err}");
            refs.fetch_errors += 1;
            None
        });
        refs.config_maps.insert(name, found);
    }
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in secrets {
        let found = secret_api.get_opt(&name).await.unwrap_or_else(|err| {
            warn!("reading secret {name}: {err}");
            refs.fetch_errors += 1;
            None
        });
        refs.secrets.insert(name, found);
    }
    for (source, key) in token_keys(pod) {
        let token = tokens.get(Some(client), &key).await.map_err(|err| {
            warn!(service_account = %key.service_account, "{err}");
            err.to_string()
        });
        refs.tokens.insert(source, token);
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_with_volume(volume: serde_json::Value) -> (Pod, Volume) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"serviceAccountName": "robot", "containers": [{"name": "c"}], "volumes": [volume]},
        }))
        .expect("pod");
        let volume = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .map(|v| v[0].clone())
            .expect("volume");
        (pod, volume)
    }

    /// The volume upstream's ServiceAccount admission adds.
    fn service_account_volume() -> serde_json::Value {
        json!({"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}})
    }

    #[test]
    fn service_account_volume_with_and_without_the_root_ca() {
        let (pod, volume) = pod_with_volume(service_account_volume());
        let keys = token_keys(&pod);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, ("kube-api-access-abcde".to_string(), 0));
        assert_eq!(
            (
                keys[0].1.service_account.as_str(),
                keys[0].1.expiration_seconds,
                keys[0].1.audiences.len()
            ),
            ("robot", 3607, 0)
        );

        let mut refs = Referenced::default();
        refs.tokens.insert(keys[0].0.clone(), Ok("jwt".into()));
        let files = payload(&pod, &volume, &refs, &PodFacts::default())
            .expect("projected")
            .expect("payload");
        assert_eq!(files.keys().collect::<Vec<_>>(), ["namespace", "token"]);
        assert_eq!(files["namespace"].data, b"ns");
        assert_eq!(files["token"].mode, 0o644);

        let ca = ConfigMap {
            data: Some(BTreeMap::from([("ca.crt".to_string(), "PEM".to_string())])),
            ..Default::default()
        };
        refs.config_maps.insert(ROOT_CA_CONFIG_MAP.into(), Some(ca));
        let files = payload(&pod, &volume, &refs, &PodFacts::default())
            .expect("projected")
            .expect("payload");
        assert_eq!(files["ca.crt"].data, b"PEM");

        refs.tokens
            .insert(keys[0].0.clone(), Err("failed to fetch token: boom".into()));
        assert_eq!(
            payload(&pod, &volume, &refs, &PodFacts::default()).expect("projected"),
            Err("failed to fetch token: boom".to_string())
        );
    }

    #[test]
    fn missing_items_fail_unless_optional() {
        let (pod, volume) = pod_with_volume(
            json!({"name": "s", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "u"}]}}),
        );
        let mut refs = Referenced::default();
        refs.secrets.insert("creds".into(), Some(Secret::default()));
        let err = payload(&pod, &volume, &refs, &PodFacts::default()).expect("secret");
        assert_eq!(
            err,
            Err("references non-existent secret key: user".to_string())
        );
        let (pod, volume) = pod_with_volume(
            json!({"name": "s", "secret": {"secretName": "creds", "optional": true, "items": [{"key": "user", "path": "u"}]}}),
        );
        assert_eq!(
            payload(&pod, &volume, &refs, &PodFacts::default()).expect("secret"),
            Ok(Payload::new())
        );
    }
}

//! Volumes on the node (upstream `pkg/volume`): emptyDir, hostPath, configMap,
//! secret and downwardAPI are directories under
//! `<root-dir>/pods/<uid>/volumes/<plugin>/<name>` bind-mounted into containers.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

use super::env::{self, PodFacts, Referenced};
use crate::cri::api;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("unable to mount volume {volume}: {message}")]
    Setup { volume: String, message: String },
    #[error("volume {0} is mounted but not defined in the pod")]
    Undefined(String),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io { path: path.to_path_buf(), source }
}

/// Sets up every volume the container mounts and returns the CRI mounts.
pub fn prepare_mounts(pod: &Pod, container: &Container, pod_dir: &Path, refs: &Referenced, facts: &PodFacts) -> Result<Vec<api::Mount>, VolumeError> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let volume = volumes.iter().find(|v| v.name == vm.name).ok_or_else(|| VolumeError::Undefined(vm.name.clone()))?;
        let (host_path, force_readonly) = setup_volume(pod, volume, pod_dir, refs, facts)?;
        let host_path = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let p = host_path.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                }
                p
            }
            None => host_path,
        };
        mounts.push(api::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: vm.read_only.unwrap_or(false) || force_readonly,
            propagation: match vm.mount_propagation.as_deref() {
                Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer as i32,
                Some("Bidirectional") => api::MountPropagation::PropagationBidirectional as i32,
                _ => api::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        });
    }
    Ok(mounts)
}

fn setup_volume(pod: &Pod, volume: &Volume, pod_dir: &Path, refs: &Referenced, facts: &PodFacts) -> Result<(PathBuf, bool), VolumeError> {
    let dir = |plugin: &str| pod_dir.join("volumes").join(plugin).join(&volume.name);
    let setup_err = |message: String| VolumeError::Setup { volume: volume.name.clone(), message };
    if volume.empty_dir.is_some() {
        let d = dir("kubernetes.io~empty-dir");
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).map_err(io(&d))?;
        return Ok((d, false));
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        match host.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" if !path.exists() => {
                std::fs::create_dir_all(&path).map_err(io(&path))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io(&path))?;
            }
            "FileOrCreate" if !path.exists() => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                std::fs::write(&path, b"").map_err(io(&path))?;
            }
            "Directory" if !path.is_dir() => return Err(setup_err(format!("hostPath type check failed: {} is not a directory", host.path))),
            "File" if !path.is_file() => return Err(setup_err(format!("hostPath type check failed: {} is not a file", host.path))),
            "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                return Err(setup_err(format!("hostPath type check failed: {} does not exist", host.path)))
            }
            _ => {}
        }
        return Ok((path, false));
    }
    if let Some(cm) = &volume.config_map {
        let d = dir("kubernetes.io~configmap");
        let data = match refs.config_map_data(&cm.name) {
            Some(data) => data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(),
            None if cm.optional == Some(true) => BTreeMap::new(),
            None => return Err(setup_err(format!("configmap \"{}\" not found", cm.name))),
        };
        write_files(&d, &data, cm.items.as_deref(), cm.default_mode.unwrap_or(0o644))?;
        return Ok((d, true));
    }
    if let Some(secret) = &volume.secret {
        let d = dir("kubernetes.io~secret");
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = match refs.secret_data(&name) {
            Some(data) => data,
            None if secret.optional == Some(true) => BTreeMap::new(),
            None => return Err(setup_err(format!("secret \"{name}\" not found"))),
        };
        write_files(&d, &data, secret.items.as_deref(), secret.default_mode.unwrap_or(0o644))?;
        return Ok((d, true));
    }
    if let Some(downward) = &volume.downward_api {
        let d = dir("kubernetes.io~downward-api");
        let mut files = BTreeMap::new();
        for item in downward.items.iter().flatten() {
            if let Some(field) = &item.field_ref {
                let value = env::field_value(pod, &field.field_path, facts).map_err(|e| setup_err(e.to_string()))?;
                files.insert(item.path.clone(), value.into_bytes());
            }
        }
        write_files(&d, &files, None, downward.default_mode.unwrap_or(0o644))?;
        return Ok((d, true));
    }
    Err(setup_err("volume type not supported by this kubelet".into()))
}

/// Writes `data` (or only `items`, renamed) into `dir`, replacing what was there.
fn write_files(dir: &Path, data: &BTreeMap<String, Vec<u8>>, items: Option<&[KeyToPath]>, default_mode: i32) -> Result<(), VolumeError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files: Vec<(String, &Vec<u8>, i32)> = match items {
        Some(items) => items.iter().filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v, i.mode.unwrap_or(default_mode)))).collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v, default_mode)).collect(),
    };
    for (name, value, mode) in files {
        // Keys are validated by the apiserver; still never write outside the volume.
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            continue;
        }
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, value).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode((mode as u32) & 0o777)).map_err(io(&path))?;
    }
    Ok(())
}

/// Removes a pod's directory (its emptyDir, configMap, ... volumes).
pub fn remove_pod_dir(pod_dir: &Path) {
    if pod_dir.exists() {
        if let Err(err) = std::fs::remove_dir_all(pod_dir) {
            tracing::warn!("removing {}: {err}", pod_dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, PodSpec, VolumeMount};

    #[test]
    fn config_map_items_and_empty_dir_become_mounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let container = Container {
            name: "c".into(),
            volume_mounts: Some(vec![
                VolumeMount { name: "cfg".into(), mount_path: "/etc/cfg".into(), ..Default::default() },
                VolumeMount { name: "scratch".into(), mount_path: "/scratch".into(), ..Default::default() },
            ]),
            ..Default::default()
        };
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container.clone()],
                volumes: Some(vec![
                    Volume {
                        name: "cfg".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: "app".into(),
                            items: Some(vec![KeyToPath { key: "a".into(), path: "dir/renamed".into(), mode: Some(0o600) }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut refs = Referenced::default();
        let data = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
        refs.config_maps.insert("app".into(), Some(ConfigMap { data: Some(data), ..Default::default() }));
        let mounts = prepare_mounts(&pod, &container, dir.path(), &refs, &PodFacts::default()).expect("mounts");
        assert_eq!(mounts.len(), 2);
        assert!(mounts[0].readonly);
        let cfg = Path::new(&mounts[0].host_path);
        assert_eq!(std::fs::read_to_string(cfg.join("dir/renamed")).expect("file"), "1");
        assert!(!cfg.join("b").exists());
        assert_eq!(std::fs::metadata(cfg.join("dir/renamed")).expect("meta").permissions().mode() & 0o777, 0o600);
        assert!(Path::new(&mounts[1].host_path).is_dir());

        let missing = prepare_mounts(&pod, &container, dir.path(), &Referenced::default(), &PodFacts::default()).expect_err("missing");
        assert!(missing.to_string().contains("configmap \"app\" not found"), "{missing}");
    }
}

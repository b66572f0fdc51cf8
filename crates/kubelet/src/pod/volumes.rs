//! Volumes on the node (upstream `pkg/volume`): emptyDir, hostPath, configMap,
//! secret and downwardAPI are directories under
//! `<root-dir>/pods/<uid>/volumes/<plugin>/<name>` bind-mounted into containers;
//! persistentVolumeClaim volumes bind-mount their hostPath/local PV (`pvc`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, HostPathVolumeSource, Pod, Volume};
use tracing::{debug, info, warn};

use super::env::{PodFacts, Referenced};
use super::pvc::ClaimSource;
use super::{atomic_writer, projected, resources};
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
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sets up every volume the container mounts and returns the CRI mounts.
pub fn prepare_mounts(
    pod: &Pod,
    container: &Container,
    pod_dir: &Path,
    refs: &Referenced,
    facts: &PodFacts,
) -> Result<Vec<api::Mount>, VolumeError> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .iter()
            .find(|v| v.name == vm.name)
            .ok_or_else(|| VolumeError::Undefined(vm.name.clone()))?;
        let (host_path, force_readonly) = setup_volume(pod, volume, pod_dir, refs, facts)?;
        let host_path = match vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let p = host_path.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                }
                // Through the `..data` symlinks to the file of this moment: a
                // subPath mount does not see later updates, as upstream.
                p.canonicalize().map_err(io(&p))?
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

fn setup_volume(
    pod: &Pod,
    volume: &Volume,
    pod_dir: &Path,
    refs: &Referenced,
    facts: &PodFacts,
) -> Result<(PathBuf, bool), VolumeError> {
    let dir = |plugin: &str| pod_dir.join("volumes").join(plugin).join(&volume.name);
    let setup_err = |message: String| VolumeError::Setup {
        volume: volume.name.clone(),
        message,
    };
    if let Some(empty) = &volume.empty_dir {
        let d = dir("kubernetes.io~empty-dir");
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        if empty.medium.as_deref() == Some("Memory") && !is_mount_point(&d) {
            mount_tmpfs(
                &d,
                empty
                    .size_limit
                    .as_ref()
                    .and_then(|q| resources::parse_quantity(&q.0)),
            )
            .map_err(|e| setup_err(format!("mounting tmpfs: {e}")))?;
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).map_err(io(&d))?;
        return Ok((d, false));
    }
    if let Some(host) = &volume.host_path {
        return Ok((host_path(host, setup_err)?, false));
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        let resolved = refs.claims.get(&volume.name).ok_or_else(|| {
            setup_err(format!(
                "persistentvolumeclaim \"{}\" is not bound",
                claim.claim_name
            ))
        })?;
        let path = match &resolved.source {
            ClaimSource::HostPath(host) => host_path(host, setup_err)?,
            ClaimSource::Local(path) if path.is_dir() => path.clone(),
            ClaimSource::Local(path) => {
                return Err(setup_err(format!(
                    "path \"{}\" does not exist",
                    path.display()
                )))
            }
        };
        return Ok((path, resolved.read_only));
    }
    if let Some(plugin) = projected::plugin_dir(volume) {
        let d = dir(plugin);
        let files = projected::payload(pod, volume, refs, facts)
            .unwrap_or_else(|| Ok(Default::default()))
            .map_err(setup_err)?;
        atomic_writer::write(&d, &files).map_err(|e| setup_err(e.to_string()))?;
        return Ok((d, true));
    }
    Err(setup_err(
        "volume type not supported by this kubelet".into(),
    ))
}

/// A hostPath (volume or PV) checked or created as its `type` says.
fn host_path(
    host: &HostPathVolumeSource,
    setup_err: impl Fn(String) -> VolumeError,
) -> Result<PathBuf, VolumeError> {
    let path = PathBuf::from(&host.path);
    match host.type_.as_deref().unwrap_or("") {
        "DirectoryOrCreate" if !path.exists() => {
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io(&path))?;
        }
        "FileOrCreate" if !path.exists() => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, b"").map_err(io(&path))?;
        }
        "Directory" if !path.is_dir() => {
            return Err(setup_err(format!(
                "hostPath type check failed: {} is not a directory",
                host.path
            )))
        }
        "File" if !path.is_file() => {
            return Err(setup_err(format!(
                "hostPath type check failed: {} is not a file",
                host.path
            )))
        }
        "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
            return Err(setup_err(format!(
                "hostPath type check failed: {} does not exist",
                host.path
            )))
        }
        _ => {}
    }
    Ok(path)
}

/// Rewrites the configMap, secret, downwardAPI and projected volumes already set
/// up for the pod when their contents changed (atomically, see `atomic_writer`);
/// returns the names of the volumes it updated. Failures keep the old contents.
pub fn refresh(pod: &Pod, pod_dir: &Path, refs: &Referenced, facts: &PodFacts) -> Vec<String> {
    let mut updated = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(plugin) = projected::plugin_dir(volume) else {
            continue;
        };
        let dir = pod_dir.join("volumes").join(plugin).join(&volume.name);
        if !dir.join(atomic_writer::DATA_DIR).exists() {
            continue;
        }
        match projected::payload(pod, volume, refs, facts).map(|p| p.map_err(|e| e.to_string())) {
            Some(Ok(files)) => match atomic_writer::write(&dir, &files) {
                Ok(true) => {
                    info!(volume = %volume.name, "volume contents updated");
                    updated.push(volume.name.clone());
                }
                Ok(false) => {}
                Err(err) => warn!(volume = %volume.name, "updating volume: {err}"),
            },
            Some(Err(err)) => debug!(volume = %volume.name, "not updating volume: {err}"),
            None => {}
        }
    }
    updated
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(raw: &str) -> PathBuf {
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

fn is_mount_point(dir: &Path) -> bool {
    mounts_under(dir).iter().any(|p| p == dir)
}

/// `mount -t tmpfs -o size=<bytes> tmpfs <dir>` (a memory-backed emptyDir).
fn mount_tmpfs(dir: &Path, size: Option<f64>) -> std::io::Result<()> {
    let mut options = String::from("mode=0777");
    if let Some(size) = size.filter(|s| *s > 0.0) {
        options.push_str(&format!(",size={}", size.ceil() as u64));
    }
    let data = std::ffi::CString::new(options).map_err(std::io::Error::other)?;
    rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )?;
    info!(dir = %dir.display(), size = ?size, "tmpfs mounted for a memory-backed emptyDir");
    Ok(())
}

/// Removes a pod's directory (its emptyDir, configMap, ... volumes), unmounting
/// the tmpfs of memory-backed emptyDirs first.
pub fn remove_pod_dir(pod_dir: &Path) {
    for mount in mounts_under(pod_dir) {
        if let Err(err) = rustix::mount::unmount(&mount, rustix::mount::UnmountFlags::DETACH) {
            warn!("unmounting {}: {err}", mount.display());
        }
    }
    if pod_dir.exists() {
        if let Err(err) = std::fs::remove_dir_all(pod_dir) {
            tracing::warn!("removing {}: {err}", pod_dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, KeyToPath, PodSpec, VolumeMount,
    };
    use std::collections::BTreeMap;

    #[test]
    fn config_map_items_and_empty_dir_become_mounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let container = Container {
            name: "c".into(),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "cfg".into(),
                    mount_path: "/etc/cfg".into(),
                    ..Default::default()
                },
                VolumeMount {
                    name: "scratch".into(),
                    mount_path: "/scratch".into(),
                    ..Default::default()
                },
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
                            items: Some(vec![KeyToPath {
                                key: "a".into(),
                                path: "dir/renamed".into(),
                                mode: Some(0o600),
                            }]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    Volume {
                        name: "scratch".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut refs = Referenced::default();
        let data = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]);
        refs.config_maps.insert(
            "app".into(),
            Some(ConfigMap {
                data: Some(data),
                ..Default::default()
            }),
        );
        let mounts = prepare_mounts(&pod, &container, dir.path(), &refs, &PodFacts::default())
            .expect("mounts");
        assert_eq!(mounts.len(), 2);
        assert!(mounts[0].readonly);
        let cfg = Path::new(&mounts[0].host_path);
        assert_eq!(
            std::fs::read_to_string(cfg.join("dir/renamed")).expect("file"),
            "1"
        );
        assert!(!cfg.join("b").exists());
        assert_eq!(
            std::fs::metadata(cfg.join("dir/renamed"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(Path::new(&mounts[1].host_path).is_dir());

        let missing = prepare_mounts(
            &pod,
            &container,
            dir.path(),
            &Referenced::default(),
            &PodFacts::default(),
        )
        .expect_err("missing");
        assert!(
            missing.to_string().contains("configmap \"app\" not found"),
            "{missing}"
        );
    }
}

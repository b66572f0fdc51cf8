//! Static pods (upstream `pkg/kubelet/config/file.go` and `mirror_client.go`):
//! pods read from `--pod-manifest-path`, run by this kubelet without the API
//! server, and shown in the API as mirror pods `<name>-<node>` carrying
//! `kubernetes.io/config.mirror`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;
use tracing::warn;

pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
pub const CONFIG_SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";
pub const CONFIG_MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// How often the manifest directory is re-read (upstream `--file-check-frequency`
/// is 20 s plus inotify; a cheap poll keeps this simple and prompt).
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing static pod manifest {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error("static pod manifest {path} is a {kind}, not a Pod")]
    NotAPod { path: PathBuf, kind: String },
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// A pod this kubelet read from a file.
pub fn is_static(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE_ANNOTATION).is_some_and(|s| s != "api")
}

/// A mirror pod in the API (never run by the kubelet itself).
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR_ANNOTATION).is_some()
}

/// The static pod's hash its mirror must carry.
pub fn config_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_HASH_ANNOTATION)
}

pub fn mirror_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_MIRROR_ANNOTATION)
}

/// FNV-1a 64 of `bytes` from `seed` (stable across runs: the uid must survive a
/// kubelet restart so running containers are adopted).
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Upstream's `applyDefaults` for file pods: name `<name>-<node>`, namespace
/// `default`, a uid hashed from the manifest, the node, config annotations and
/// a NoExecute toleration.
pub fn apply_defaults(mut pod: Pod, source: &Path, manifest: &[u8], node_name: &str) -> Pod {
    let mut input = manifest.to_vec();
    input.extend_from_slice(format!("\0file:{}\0{node_name}", source.display()).as_bytes());
    let hash = format!(
        "{:016x}{:016x}",
        fnv1a(0xcbf2_9ce4_8422_2325, &input),
        fnv1a(0x6c62_272e_07bb_0142, &input)
    );
    let meta = &mut pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    meta.name = Some(format!("{name}-{node_name}"));
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".into());
    }
    meta.uid = Some(hash.clone());
    meta.resource_version = None;
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_SOURCE_ANNOTATION.into(), "file".into());
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), hash);
    annotations.insert(CONFIG_SEEN_ANNOTATION.into(), Timestamp::now().to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node_name.into());
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    tolerations.push(Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    });
    pod.status = None;
    pod
}

/// Reads one manifest file.
pub fn read_manifest(path: &Path, node_name: &str) -> Result<Pod, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    let value: serde_json::Value =
        serde_norway::from_slice(&bytes).map_err(|source| Error::Parse {
            path: path.into(),
            source,
        })?;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("Pod");
    if kind != "Pod" {
        return Err(Error::NotAPod {
            path: path.into(),
            kind: kind.into(),
        });
    }
    let pod: Pod = serde_json::from_value(value).map_err(|e| Error::Parse {
        path: path.into(),
        source: serde::de::Error::custom(e),
    })?;
    Ok(apply_defaults(pod, path, &bytes, node_name))
}

/// Every pod in `path` (a directory: its non-hidden files, in name order; or
/// one file). Unreadable manifests are logged and skipped, as upstream does.
pub fn read_all(path: &Path, node_name: &str) -> Vec<Pod> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|f| {
            f.is_file()
                && !f
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        });
        files.sort();
        files
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    let mut pods: Vec<Pod> = Vec::new();
    for file in files {
        match read_manifest(&file, node_name) {
            Ok(pod)
                if pods.iter().any(|p| {
                    p.metadata.name == pod.metadata.name
                        && p.metadata.namespace == pod.metadata.namespace
                }) =>
            {
                warn!(
                    "{}: duplicate static pod {:?}, ignored",
                    file.display(),
                    pod.metadata.name
                )
            }
            Ok(pod) => pods.push(pod),
            Err(err) => warn!("{err}"),
        }
    }
    pods
}

/// Polls `path` and sends the full set of static pods whenever it changes.
pub async fn watch_manifests(path: PathBuf, node_name: String, tx: mpsc::Sender<Vec<Pod>>) {
    let mut last: Option<Vec<String>> = None;
    let mut tick = tokio::time::interval(FILE_CHECK_INTERVAL);
    loop {
        tick.tick().await;
        let pods = read_all(&path, &node_name);
        let uids: Vec<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
        if last.as_ref() != Some(&uids) {
            last = Some(uids);
            if tx.send(pods).await.is_err() {
                return;
            }
        }
    }
}

/// The mirror pod of a static pod, ready to create.
pub fn mirror_pod(pod: &Pod) -> Pod {
    let mut mirror = pod.clone();
    mirror.metadata.uid = None;
    mirror.metadata.resource_version = None;
    let hash = config_hash(pod).unwrap_or_default().to_string();
    mirror
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR_ANNOTATION.into(), hash);
    mirror.status = None;
    mirror
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_static_pods_with_stable_uids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n";
        std::fs::write(dir.path().join("web.yaml"), manifest).expect("write");
        std::fs::write(dir.path().join(".hidden.yaml"), manifest).expect("write");
        std::fs::write(
            dir.path().join("cm.yaml"),
            "kind: ConfigMap\nmetadata: {name: x}\n",
        )
        .expect("write");
        let pods = read_all(dir.path(), "node-1");
        assert_eq!(pods.len(), 1);
        let pod = &pods[0];
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("node-1")
        );
        assert!(is_static(pod) && !is_mirror(pod));
        let uid = pod.metadata.uid.clone().expect("uid");
        assert_eq!(uid.len(), 32);
        assert_eq!(config_hash(pod), Some(uid.as_str()));
        assert_eq!(
            read_all(dir.path(), "node-1")[0].metadata.uid.as_deref(),
            Some(uid.as_str()),
            "stable across reads"
        );
        assert_ne!(
            read_all(dir.path(), "node-2")[0].metadata.uid.as_deref(),
            Some(uid.as_str())
        );

        let mirror = mirror_pod(pod);
        assert!(is_mirror(&mirror));
        assert_eq!(mirror_hash(&mirror), Some(uid.as_str()));
        assert_eq!(mirror.metadata.uid, None);
    }
}

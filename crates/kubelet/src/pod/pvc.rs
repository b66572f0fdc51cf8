//! `persistentVolumeClaim` volumes (upstream: the volume manager's
//! desired-state populator resolving claim → PV, then the hostPath or local
//! plugin mounting it). Only PVs backed by a node directory are supported:
//! `spec.hostPath` and `spec.local`. Until every claim of a pod resolves, the
//! pod waits with its containers `ContainerCreating` and a `FailedMount` event,
//! and starts once the claims are bound.

use std::collections::HashMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim, Pod,
};
use kube::api::Api;

/// Where a resolved claim's data lives on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimVolume {
    pub claim: String,
    pub volume_name: String,
    pub source: ClaimSource,
    /// The pod asked for it read-only, or the claim only grants ReadOnlyMany.
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimSource {
    /// A hostPath PV: handled like a hostPath volume (its `type` checked/created).
    HostPath(HostPathVolumeSource),
    /// A local PV: the directory must exist.
    Local(PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PvcError {
    /// As the scheduler's claim lister words it.
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is being deleted")]
    ClaimDeleting(String),
    /// Upstream kubelet: "PVC is not bound"; with the claim named.
    #[error("persistentvolumeclaim \"{0}\" is not bound")]
    NotBound(String),
    #[error("persistentvolume \"{0}\" not found")]
    VolumeNotFound(String),
    #[error("persistentvolume \"{volume}\" is bound to a different claim than \"{claim}\"")]
    ClaimRefMismatch { volume: String, claim: String },
    #[error("persistentvolume \"{0}\" is neither a hostPath nor a local volume; this kubelet cannot mount it")]
    Unsupported(String),
    #[error("reading {what}: {message}")]
    Api { what: String, message: String },
}

/// The PVC volumes of the pod: (volume name, claim name, pod's readOnly).
pub fn claim_volumes(pod: &Pod) -> Vec<(String, String, bool)> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            v.persistent_volume_claim.as_ref().map(|c| {
                (
                    v.name.clone(),
                    c.claim_name.clone(),
                    c.read_only.unwrap_or(false),
                )
            })
        })
        .collect()
}

/// Checks a claim and its volume (no IO): the PV for a bound claim.
pub fn check_claim(
    namespace: &str,
    claim_name: &str,
    pvc: &PersistentVolumeClaim,
) -> Result<String, PvcError> {
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(PvcError::ClaimDeleting(claim_name.into()));
    }
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    let volume = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    if phase != Some("Bound") || volume.is_empty() {
        tracing::debug!(claim = %format!("{namespace}/{claim_name}"), ?phase, volume, "claim not bound");
        return Err(PvcError::NotBound(claim_name.into()));
    }
    Ok(volume)
}

/// Where the bound PV keeps its data.
pub fn check_volume(
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    claim_name: &str,
    pod_read_only: bool,
) -> Result<ClaimVolume, PvcError> {
    let volume_name = pv.metadata.name.clone().unwrap_or_default();
    let spec = pv.spec.as_ref();
    let claim_ref_uid = spec
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|r| r.uid.clone());
    if let (Some(bound_to), Some(uid)) = (claim_ref_uid, pvc.metadata.uid.as_ref()) {
        if &bound_to != uid {
            return Err(PvcError::ClaimRefMismatch {
                volume: volume_name,
                claim: claim_name.into(),
            });
        }
    }
    let source = if let Some(host) = spec.and_then(|s| s.host_path.as_ref()) {
        ClaimSource::HostPath(HostPathVolumeSource {
            path: host.path.clone(),
            type_: host.type_.clone(),
        })
    } else if let Some(local) = spec.and_then(|s| s.local.as_ref()) {
        ClaimSource::Local(PathBuf::from(&local.path))
    } else {
        return Err(PvcError::Unsupported(volume_name));
    };
    let modes = pvc
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    let claim_read_only = !modes.is_empty() && modes.iter().all(|m| m == "ReadOnlyMany");
    Ok(ClaimVolume {
        claim: claim_name.into(),
        volume_name,
        source,
        read_only: pod_read_only || claim_read_only,
    })
}

async fn resolve(
    client: &kube::Client,
    namespace: &str,
    claim_name: &str,
    pod_read_only: bool,
) -> Result<ClaimVolume, PvcError> {
    let api_err = |what: String| {
        move |e: kube::Error| PvcError::Api {
            what,
            message: e.to_string(),
        }
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = claims
        .get_opt(claim_name)
        .await
        .map_err(api_err(format!(
            "persistentvolumeclaim {namespace}/{claim_name}"
        )))?
        .ok_or_else(|| PvcError::ClaimNotFound(claim_name.into()))?;
    let volume = check_claim(namespace, claim_name, &pvc)?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes
        .get_opt(&volume)
        .await
        .map_err(api_err(format!("persistentvolume {volume}")))?
        .ok_or(PvcError::VolumeNotFound(volume))?;
    check_volume(&pvc, &pv, claim_name, pod_read_only)
}

/// Resolves the pod's claims not in `resolved` yet (by volume name). `Err`
/// carries upstream's FailedMount message naming the volumes that failed.
pub async fn resolve_pod(
    client: Option<&kube::Client>,
    pod: &Pod,
    resolved: &mut HashMap<String, ClaimVolume>,
) -> Result<(), String> {
    let wanted = claim_volumes(pod);
    if wanted
        .iter()
        .all(|(volume, _, _)| resolved.contains_key(volume))
    {
        return Ok(());
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for (volume, claim, read_only) in wanted {
        if resolved.contains_key(&volume) {
            continue;
        }
        let result = match client {
            Some(client) => resolve(client, namespace, &claim, read_only).await,
            None => Err(PvcError::ClaimNotFound(claim.clone())),
        };
        match result {
            Ok(found) => {
                tracing::info!(volume = %volume, claim = %claim, pv = %found.volume_name, "persistent volume claim resolved");
                resolved.insert(volume, found);
            }
            Err(err) => {
                errors.push(format!("error processing PVC {namespace}/{claim}: {err}"));
                failed.push(volume);
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let list = failed.join(" ");
    Err(format!("Unable to attach or mount volumes: unmounted volumes=[{list}], unattached volumes=[], failed to process volumes=[{list}]: {}", errors.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pvc(value: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(value).expect("pvc")
    }

    #[test]
    fn unbound_claims_and_bound_volumes() {
        let pending = pvc(
            json!({"metadata": {"name": "data", "uid": "u1"}, "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}),
        );
        assert_eq!(
            check_claim("default", "data", &pending),
            Err(PvcError::NotBound("data".into()))
        );
        assert_eq!(
            PvcError::NotBound("data".into()).to_string(),
            "persistentvolumeclaim \"data\" is not bound"
        );
        assert_eq!(
            PvcError::ClaimNotFound("x".into()).to_string(),
            "persistentvolumeclaim \"x\" not found"
        );

        let bound = pvc(
            json!({"metadata": {"name": "data", "uid": "u1"}, "spec": {"accessModes": ["ReadOnlyMany"], "volumeName": "pv1"}, "status": {"phase": "Bound"}}),
        );
        assert_eq!(check_claim("default", "data", &bound), Ok("pv1".into()));
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": "pv1"},
            "spec": {"local": {"path": "/mnt/disk"}, "claimRef": {"name": "data", "namespace": "default", "uid": "u1"}},
        }))
        .expect("pv");
        let found = check_volume(&bound, &pv, "data", false).expect("volume");
        assert_eq!(found.source, ClaimSource::Local("/mnt/disk".into()));
        assert!(found.read_only, "a ReadOnlyMany claim mounts read-only");

        let other: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": "pv1"},
            "spec": {"hostPath": {"path": "/srv"}, "claimRef": {"name": "data", "namespace": "default", "uid": "someone-else"}},
        }))
        .expect("pv");
        assert!(matches!(
            check_volume(&bound, &other, "data", false),
            Err(PvcError::ClaimRefMismatch { .. })
        ));
        let nfs: PersistentVolume = serde_json::from_value(
            json!({"metadata": {"name": "pv2"}, "spec": {"nfs": {"server": "s", "path": "/"}}}),
        )
        .expect("pv");
        assert_eq!(
            check_volume(&bound, &nfs, "data", false),
            Err(PvcError::Unsupported("pv2".into()))
        );
    }

    #[tokio::test]
    async fn failed_mount_message_names_the_volumes() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}]},
        }))
        .expect("pod");
        let mut resolved = HashMap::new();
        let message = resolve_pod(None, &pod, &mut resolved)
            .await
            .expect_err("no API");
        assert_eq!(
            message,
            "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: \
             error processing PVC ns/claim: persistentvolumeclaim \"claim\" not found"
        );
    }
}

//! The persistentvolume binder: claims bound to matching volumes (smallest fit,
//! pre-bound by volumeName), phases Available/Bound/Released, annotations.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::common::{wait_for, Cluster};

const T: Duration = Duration::from_secs(30);

fn volume(name: &str, size: &str) -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size},
        "hostPath": {"path": format!("/tmp/{name}")}, "persistentVolumeReclaimPolicy": "Retain"}}))
    .expect("pv")
}

fn claim(name: &str, size: &str, volume_name: Option<&str>) -> PersistentVolumeClaim {
    let mut spec = json!({"storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}});
    if let Some(v) = volume_name {
        spec["volumeName"] = json!(v);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pvc")
}

fn pv_phase(v: &PersistentVolume) -> String {
    v.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

async fn bound_claim(claims: &Api<PersistentVolumeClaim>, name: &str) -> PersistentVolumeClaim {
    wait_for(&format!("claim {name} Bound"), T, || async {
        let c = claims.get(name).await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await
}

#[tokio::test]
async fn persistentvolume_binder_binds_claims_and_releases_volumes() {
    let cluster = Cluster::start(&["--controllers=persistentvolume-binder-controller"]);
    let client = cluster.client().await;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    volumes
        .create(&pp, &volume("small", "1Gi"))
        .await
        .expect("pv");
    volumes
        .create(&pp, &volume("big", "5Gi"))
        .await
        .expect("pv");
    wait_for("big Available", T, || async {
        (pv_phase(&volumes.get("big").await.ok()?) == "Available").then_some(())
    })
    .await;

    // The smallest volume that fits; both sides annotated and Bound.
    claims
        .create(&pp, &claim("data", "1Gi", None))
        .await
        .expect("pvc");
    let data = bound_claim(&claims, "data").await;
    assert_eq!(
        data.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("small")
    );
    let annotations = data.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("pv.kubernetes.io/bind-completed")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        annotations
            .get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );
    let capacity = data
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone());
    assert_eq!(capacity.as_deref(), Some("1Gi"));
    let small = wait_for("small Bound", T, || async {
        let v = volumes.get("small").await.ok()?;
        (pv_phase(&v) == "Bound").then_some(v)
    })
    .await;
    let claim_ref = small.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(
        (claim_ref.name.as_deref(), claim_ref.uid.as_deref()),
        (Some("data"), data.metadata.uid.as_deref())
    );

    // Nothing fits: Pending until a volume that does appears.
    claims
        .create(&pp, &claim("huge", "10Gi", None))
        .await
        .expect("pvc");
    wait_for("huge Pending", T, || async {
        (claims.get("huge").await.ok()?.status?.phase.as_deref() == Some("Pending")).then_some(())
    })
    .await;
    volumes
        .create(&pp, &volume("giant", "20Gi"))
        .await
        .expect("pv");
    let huge = bound_claim(&claims, "huge").await;
    assert_eq!(
        huge.spec.and_then(|s| s.volume_name).as_deref(),
        Some("giant")
    );

    // A claim pre-bound by volumeName gets exactly that volume.
    volumes
        .create(&pp, &volume("chosen", "3Gi"))
        .await
        .expect("pv");
    claims
        .create(&pp, &claim("pre", "1Gi", Some("chosen")))
        .await
        .expect("pvc");
    bound_claim(&claims, "pre").await;
    wait_for("chosen Bound", T, || async {
        (pv_phase(&volumes.get("chosen").await.ok()?) == "Bound").then_some(())
    })
    .await;
    assert_eq!(
        pv_phase(&volumes.get("big").await.expect("big")),
        "Available"
    );

    // Deleting a claim releases its volume (Retain), which is not reused.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("small Released", T, || async {
        (pv_phase(&volumes.get("small").await.ok()?) == "Released").then_some(())
    })
    .await;
    claims
        .create(&pp, &claim("again", "1Gi", None))
        .await
        .expect("pvc");
    let again = bound_claim(&claims, "again").await;
    assert_eq!(
        again.spec.and_then(|s| s.volume_name).as_deref(),
        Some("big")
    );
}

//! persistentVolumeClaim volumes backed by hostPath and local PVs: real etcd +
//! our apiserver + containerd + the kubelet. No binder runs here, so the test
//! binds claims itself the way the persistentvolume controller does.

mod common;

use std::time::Duration;

use common::cluster::{busybox, container_status, phase, pod, wait_pod, Cluster};
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn with_claim(mut p: Pod, claim: &str, read_only: bool) -> Pod {
    let spec = p.spec.as_mut().expect("spec");
    spec.volumes = Some(vec![serde_json::from_value(json!({"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})).expect("volume")]);
    spec.containers[0].volume_mounts = Some(vec![serde_json::from_value(
        json!({"name": "data", "mountPath": "/data"}),
    )
    .expect("mount")]);
    p
}

async fn create_claim(client: &kube::Client, name: &str) -> PersistentVolumeClaim {
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    Api::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &claim)
        .await
        .expect("create claim")
}

async fn create_volume(client: &kube::Client, name: &str, source: serde_json::Value) {
    let mut spec = json!({
        "storageClassName": "manual", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
        "persistentVolumeReclaimPolicy": "Retain",
    });
    spec.as_object_mut()
        .expect("spec")
        .extend(source.as_object().expect("source").clone());
    let pv: PersistentVolume =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pv");
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .expect("create pv");
}

/// What the binder does: claimRef + Bound on the PV, volumeName + Bound on the claim.
async fn bind(client: &kube::Client, claim: &PersistentVolumeClaim, pv: &str) {
    let name = claim.metadata.name.clone().expect("name");
    let uid = claim.metadata.uid.clone().expect("uid");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let claim_ref = json!({"spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default", "name": name, "uid": uid}}});
    pvs.patch(pv, &PatchParams::default(), &Patch::Merge(&claim_ref))
        .await
        .expect("claimRef");
    pvs.patch_status(
        pv,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Bound"}})),
    )
    .await
    .expect("pv status");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let volume = json!({"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}}, "spec": {"volumeName": pv}});
    claims
        .patch(&name, &PatchParams::default(), &Patch::Merge(&volume))
        .await
        .expect("volumeName");
    let status = json!({"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}});
    claims
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("claim status");
}

async fn failed_mount_messages(client: &kube::Client, pod: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .expect("events");
    list.items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedMount"))
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn claims_bound_to_host_path_and_local_volumes() {
    if !common::can_run_containers() {
        return;
    }
    let cluster = Cluster::start(false).await;
    let client = cluster.client.clone();
    let pods = cluster.pods();
    let host = tempfile::tempdir().expect("host dir");

    // A bound hostPath PV: the pod reads what the host wrote and writes back.
    let host_dir = host.path().join("host-pv");
    std::fs::create_dir(&host_dir).expect("mkdir");
    std::fs::write(host_dir.join("hello.txt"), "from-the-host\n").expect("write");
    create_volume(
        &client,
        "pv-host",
        json!({"hostPath": {"path": host_dir.display().to_string(), "type": "Directory"}}),
    )
    .await;
    let claim = create_claim(&client, "claim-host").await;
    bind(&client, &claim, "pv-host").await;
    let reader = with_claim(
        pod(
            "reader",
            &cluster.node,
            "Always",
            json!([busybox(
                "main",
                "cat /data/hello.txt; echo from-the-pod > /data/back.txt; exec sleep 3600"
            )]),
        ),
        "claim-host",
        false,
    );
    pods.create(&PostParams::default(), &reader)
        .await
        .expect("reader");
    wait_pod(&pods, "reader", "Running", |p| phase(p) == "Running").await;
    common::wait_for(
        Duration::from_secs(20),
        "the pod's file on the host",
        || async {
            std::fs::read_to_string(host_dir.join("back.txt"))
                .ok()
                .filter(|s| s == "from-the-pod\n")
        },
    )
    .await;
    assert_eq!(
        cluster.kubectl(&["logs", "reader"]).assert_success().stdout,
        "from-the-host\n"
    );
    // Files written on the host later show through the bind mount.
    std::fs::write(host_dir.join("later.txt"), "later\n").expect("write");
    assert_eq!(
        cluster
            .kubectl(&["exec", "reader", "--", "cat", "/data/later.txt"])
            .assert_success()
            .stdout,
        "later\n"
    );

    // readOnly on the pod's volume makes the mount read-only.
    let ro = with_claim(
        pod(
            "ro",
            &cluster.node,
            "Always",
            json!([busybox("main", "exec sleep 3600")]),
        ),
        "claim-host",
        true,
    );
    pods.create(&PostParams::default(), &ro).await.expect("ro");
    wait_pod(&pods, "ro", "Running", |p| phase(p) == "Running").await;
    assert_eq!(
        cluster
            .kubectl(&["exec", "ro", "--", "cat", "/data/hello.txt"])
            .assert_success()
            .stdout,
        "from-the-host\n"
    );
    let write = cluster.kubectl(&["exec", "ro", "--", "touch", "/data/nope"]);
    assert_ne!(write.status, 0, "{write}");
    assert!(!host_dir.join("nope").exists());

    // A claim that does not exist yet: the pod waits with FailedMount.
    let waiter = with_claim(
        pod(
            "waiter",
            &cluster.node,
            "Always",
            json!([busybox("main", "cat /data/local.txt; exec sleep 3600")]),
        ),
        "later",
        false,
    );
    pods.create(&PostParams::default(), &waiter)
        .await
        .expect("waiter");
    common::wait_for(
        Duration::from_secs(30),
        "FailedMount for a missing claim",
        || async {
            failed_mount_messages(&client, "waiter")
                .await
                .into_iter()
                .find(|m| m.contains("persistentvolumeclaim \"later\" not found"))
        },
    )
    .await;
    let waiting = pods.get("waiter").await.expect("waiter");
    assert_eq!(phase(&waiting), "Pending");
    let reason = container_status(&waiting, "main").and_then(|s| s.state?.waiting?.reason);
    assert_eq!(reason.as_deref(), Some("ContainerCreating"));

    // The claim appears unbound: still waiting, with the reason.
    let later = create_claim(&client, "later").await;
    common::wait_for(
        Duration::from_secs(30),
        "FailedMount for an unbound claim",
        || async {
            failed_mount_messages(&client, "waiter")
                .await
                .into_iter()
                .find(|m| m.contains("persistentvolumeclaim \"later\" is not bound"))
        },
    )
    .await;
    assert_eq!(phase(&pods.get("waiter").await.expect("waiter")), "Pending");

    // Bound to a local PV: the pod starts and sees the PV's files.
    let local_dir = host.path().join("local-pv");
    std::fs::create_dir(&local_dir).expect("mkdir");
    std::fs::write(local_dir.join("local.txt"), "from-a-local-pv\n").expect("write");
    let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [cluster.node]}]}]}});
    create_volume(
        &client,
        "pv-local",
        json!({"local": {"path": local_dir.display().to_string()}, "nodeAffinity": affinity}),
    )
    .await;
    bind(&client, &later, "pv-local").await;
    wait_pod(&pods, "waiter", "Running once bound", |p| {
        phase(p) == "Running"
    })
    .await;
    common::wait_for(
        Duration::from_secs(20),
        "the local PV's file in the log",
        || async {
            let logs = cluster.kubectl(&["logs", "waiter"]);
            (logs.stdout == "from-a-local-pv\n").then_some(())
        },
    )
    .await;

    cluster.assert_kubelet_healthy();
}

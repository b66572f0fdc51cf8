use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use crate::common::{live_pods, spawn_fake_kubelet, wait_default_sa, wait_for, Cluster};

const T: Duration = Duration::from_secs(60);

async fn replica_sets(client: &kube::Client) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut items = api
        .list(&ListParams::default())
        .await
        .expect("list rs")
        .items;
    items.sort_by_key(|rs| {
        rs.annotations()
            .get("deployment.kubernetes.io/revision")
            .cloned()
            .unwrap_or_default()
    });
    items
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

fn revision(rs: &ReplicaSet) -> &str {
    rs.annotations()
        .get("deployment.kubernetes.io/revision")
        .map(String::as_str)
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_with_kubectl_rollout_status_history_and_undo() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let _kubelet = spawn_fake_kubelet(client.clone(), "default", "never-ready");

    cluster
        .kubectl(&[
            "create",
            "deployment",
            "web",
            "--image=busybox:1",
            "--replicas=3",
        ])
        .assert_success();
    let out = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );

    let rss = replica_sets(&client).await;
    assert_eq!(rss.len(), 1);
    let first = &rss[0];
    let hash = first
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert_eq!(revision(first), "1");
    let owner = &first.owner_references()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", "web", Some(true), Some(true))
    );
    assert_eq!(
        live_pods(&client, "default", &format!("pod-template-hash={hash}"))
            .await
            .len(),
        3
    );

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deploys.get("web").await.expect("get deployment");
    let status = d.status.clone().expect("status");
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    let conds = status.conditions.expect("conditions");
    let progressing = conds
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("ReplicaSet \"web-{hash}\" has successfully progressed.").as_str())
    );
    assert!(conds.iter().any(|c| c.type_ == "Available"
        && c.status == "True"
        && c.reason.as_deref() == Some("MinimumReplicasAvailable")));
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );

    // A new image: a second ReplicaSet (revision 2) takes over, the first goes to 0.
    cluster
        .kubectl(&["set", "image", "deployment/web", "busybox=busybox:2"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .assert_success();
    let rss = replica_sets(&client).await;
    assert_eq!(rss.len(), 2);
    assert_eq!(
        (
            revision(&rss[0]),
            image_of(&rss[0]).as_str(),
            rss[0].spec.as_ref().and_then(|s| s.replicas)
        ),
        ("1", "busybox:1", Some(0))
    );
    assert_eq!(
        (
            revision(&rss[1]),
            image_of(&rss[1]).as_str(),
            rss[1].spec.as_ref().and_then(|s| s.replicas)
        ),
        ("2", "busybox:2", Some(3))
    );

    let history = cluster.kubectl(&["rollout", "history", "deployment/web"]);
    history.assert_success();
    let revisions: Vec<&str> = history
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // Undo: the first ReplicaSet comes back as revision 3.
    cluster
        .kubectl(&["rollout", "undo", "deployment/web"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .assert_success();
    let rss = replica_sets(&client).await;
    assert_eq!(rss.len(), 2);
    let back = rss
        .iter()
        .find(|rs| image_of(rs) == "busybox:1")
        .expect("first RS");
    assert_eq!(back.name_any(), format!("web-{hash}"));
    assert_eq!(revision(back), "3");
    assert_eq!(back.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        back.annotations()
            .get("deployment.kubernetes.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
    let d = deploys.get("web").await.expect("get");
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );

    // Scale through kubectl: the active ReplicaSet follows.
    cluster
        .kubectl(&["scale", "deployment/web", "--replicas=5"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .assert_success();
    assert_eq!(
        live_pods(&client, "default", &format!("pod-template-hash={hash}"))
            .await
            .len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_keeps_old_pods_and_exceeds_deadline_and_pause_holds_rollout() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let _kubelet = spawn_fake_kubelet(client.clone(), "default", "never-ready");
    cluster
        .kubectl(&[
            "create",
            "deployment",
            "api",
            "--image=busybox:1",
            "--replicas=4",
        ])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/api", "--timeout=60s"])
        .assert_success();
    cluster
        .kubectl(&[
            "patch",
            "deployment/api",
            "-p",
            r#"{"spec":{"progressDeadlineSeconds":3}}"#,
        ])
        .assert_success();

    // An image that never becomes ready: one surge pod, no old pod removed beyond maxUnavailable (1 of 4).
    cluster
        .kubectl(&["set", "image", "deployment/api", "busybox=never-ready:1"])
        .assert_success();
    let out = cluster.kubectl(&["rollout", "status", "deployment/api", "--timeout=30s"]);
    out.assert_failure();
    assert!(
        out.stderr.contains("exceeded its progress deadline"),
        "{out}"
    );
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deploys.get("api").await.expect("get");
    let cond = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Progressing").cloned())
        .expect("cond");
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    let rss = replica_sets(&client).await;
    let old = rss
        .iter()
        .find(|rs| image_of(rs) == "busybox:1")
        .expect("old");
    let new = rss
        .iter()
        .find(|rs| image_of(rs) == "never-ready:1")
        .expect("new");
    assert_eq!(
        old.status.as_ref().and_then(|s| s.ready_replicas),
        Some(3),
        "old pods keep serving"
    );
    // 4 replicas: maxSurge 1, maxUnavailable 1 → total 5, at least 3 available.
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(new.spec.as_ref().and_then(|s| s.replicas), Some(2));

    // Undo back to the working template, then pause: a template change makes no new ReplicaSet.
    cluster
        .kubectl(&["rollout", "undo", "deployment/api"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/api", "--timeout=60s"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "pause", "deployment/api"])
        .assert_success();
    cluster
        .kubectl(&["set", "image", "deployment/api", "busybox=busybox:3"])
        .assert_success();
    wait_for("paused condition", T, || {
        let deploys = deploys.clone();
        async move {
            let d = deploys.get("api").await.ok()?;
            let c = d
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Progressing")?;
            (c.reason.as_deref() == Some("DeploymentPaused") && c.status == "Unknown").then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !replica_sets(&client)
            .await
            .iter()
            .any(|rs| image_of(rs) == "busybox:3"),
        "paused deployment rolled out"
    );
    cluster
        .kubectl(&["rollout", "resume", "deployment/api"])
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/api", "--timeout=60s"])
        .assert_success();
    let rss = replica_sets(&client).await;
    let v3 = rss
        .iter()
        .find(|rs| image_of(rs) == "busybox:3")
        .expect("v3");
    assert_eq!(v3.spec.as_ref().and_then(|s| s.replicas), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_scales_old_to_zero_before_creating_new() {
    let cluster = Cluster::start(&[]);
    let client = cluster.client().await;
    wait_default_sa(&client, "default").await;
    let _kubelet = spawn_fake_kubelet(client.clone(), "default", "never-ready");
    cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"db"},
                "spec":{"replicas":2,"strategy":{"type":"Recreate"},"selector":{"matchLabels":{"app":"db"}},
                "template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"busybox:1"}]}}}}"#,
        )
        .assert_success();
    cluster
        .kubectl(&["rollout", "status", "deployment/db", "--timeout=60s"])
        .assert_success();
    cluster
        .kubectl(&["set", "image", "deployment/db", "db=busybox:2"])
        .assert_success();
    // Never both ReplicaSets with pods at the same time.
    let deadline = std::time::Instant::now() + T;
    loop {
        let rss = replica_sets(&client).await;
        let active: Vec<String> = rss
            .iter()
            .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
            .map(image_of)
            .collect();
        assert!(active.len() <= 1, "both ReplicaSets active: {active:?}");
        let pods = live_pods(&client, "default", "app=db").await;
        let images: std::collections::HashSet<String> = pods
            .iter()
            .filter_map(|p| p.spec.as_ref().and_then(|s| s.containers[0].image.clone()))
            .collect();
        assert!(images.len() <= 1, "old and new pods together: {images:?}");
        if active == ["busybox:2"] && pods.len() == 2 && images.contains("busybox:2") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recreate did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster
        .kubectl(&["rollout", "status", "deployment/db", "--timeout=60s"])
        .assert_success();
}

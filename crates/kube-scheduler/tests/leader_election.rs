//! Leader election on a real apiserver: `kube_common::leader` contenders in-process,
//! and two scheduler processes of which only the leader binds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube_common::leader::{run_leader_elected, LeaderElectionArgs};
use serde_json::json;
use tokio::sync::oneshot;

fn fast_args(name: &str) -> LeaderElectionArgs {
    LeaderElectionArgs {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
        resource_name: Some(name.to_string()),
        ..LeaderElectionArgs::default()
    }
}

async fn lease(client: &kube::Client, name: &str) -> Option<Lease> {
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt(name)
        .await
        .expect("get lease")
}

fn holder(l: &Lease) -> String {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_contender_leads_hands_over_on_release_and_exits_when_lease_is_lost() {
    let cluster = Cluster::start();
    let client = cluster.client().await;
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));

    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for id in ["a", "b"] {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        stops.push(stop_tx);
        let (client, running, max_running) = (client.clone(), running.clone(), max_running.clone());
        tasks.push(tokio::spawn(async move {
            run_leader_elected(
                client,
                &fast_args("contest"),
                "unused",
                id.to_string(),
                move || async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    max_running.fetch_max(now, Ordering::SeqCst);
                    // Counts down when run ends or is dropped (leadership lost).
                    struct Running(Arc<AtomicUsize>);
                    impl Drop for Running {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _running = Running(running);
                    let _ = stop_rx.await;
                    Ok(())
                },
            )
            .await
        }));
    }
    let first = eventually(Duration::from_secs(10), "a leader", || async {
        lease(&client, "contest")
            .await
            .map(|l| holder(&l))
            .filter(|h| !h.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        running.load(Ordering::SeqCst),
        1,
        "exactly one contender runs"
    );
    let l = lease(&client, "contest").await.expect("lease");
    let spec = l.spec.clone().expect("spec");
    assert_eq!(
        holder(&l),
        first,
        "the leader keeps the lease by renewing it"
    );
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(0));
    assert!(spec.renew_time.expect("renewTime").0 > spec.acquire_time.expect("acquireTime").0);

    // The leader finishes: it releases the lease and the other takes over at once.
    let leader_idx = if first == "a" { 0 } else { 1 };
    let other = if first == "a" { "b" } else { "a" };
    let released_at = Instant::now();
    let _ = stops.remove(leader_idx).send(());
    let leader_task = tasks.remove(leader_idx);
    leader_task
        .await
        .expect("join")
        .expect("leader's run ends cleanly");
    eventually(
        Duration::from_secs(5),
        "the other contender to lead",
        || async {
            lease(&client, "contest")
                .await
                .filter(|l| holder(l) == other)
                .map(|_| ())
        },
    )
    .await;
    assert!(
        released_at.elapsed() < Duration::from_secs(2),
        "a released lease is taken without waiting out its duration"
    );
    let l = lease(&client, "contest").await.expect("lease");
    assert_eq!(l.spec.as_ref().and_then(|s| s.lease_transitions), Some(1));
    assert_eq!(max_running.load(Ordering::SeqCst), 1);

    // Someone else overwrites the lease: the current leader loses it and errors out.
    let mut stolen = l.clone();
    if let Some(spec) = stolen.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
        spec.lease_duration_seconds = Some(60);
    }
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .replace("contest", &PostParams::default(), &stolen)
        .await
        .expect("steal");
    let result = tokio::time::timeout(Duration::from_secs(10), tasks.remove(0))
        .await
        .expect("leader gives up within the renew deadline")
        .expect("join");
    let err = result.expect_err("leadership lost is an error");
    assert_eq!(err.to_string(), "leaderelection lost");
    assert_eq!(
        running.load(Ordering::SeqCst),
        0,
        "run is stopped when leadership is lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_elect_false_just_runs() {
    // No apiserver at all: nothing is contacted.
    let client = kube_common::client::build_client(Some("http://127.0.0.1:9"), None, "t")
        .await
        .expect("client");
    let args = LeaderElectionArgs {
        leader_elect: false,
        ..LeaderElectionArgs::default()
    };
    let ran = run_leader_elected(client, &args, "x", "me".into(), || async { Ok(()) }).await;
    assert!(ran.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_hand_over_when_the_leader_dies_and_never_bind_twice() {
    let cluster = Cluster::start();
    let client = cluster.client().await;
    for i in 0..3 {
        create_node(
            &client,
            node_json(&format!("node-{i}"), "8", json!({}), json!([])),
        )
        .await;
    }
    let le = [
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut schedulers = [
        SchedulerProcess::start(&cluster.apiserver.url(), &le),
        SchedulerProcess::start(&cluster.apiserver.url(), &le),
    ];

    for i in 0..20 {
        create_pod(&client, pod_json(&format!("before-{i}"), json!({}))).await;
    }
    for i in 0..20 {
        wait_bound(&client, &format!("before-{i}"), Duration::from_secs(20)).await;
    }
    let leader_idx = schedulers
        .iter()
        .position(|s| s.log().contains("successfully acquired lease"))
        .expect("a leader");
    let follower_idx = 1 - leader_idx;
    assert!(
        !schedulers[follower_idx]
            .log()
            .contains("successfully acquired lease"),
        "only one leader"
    );
    let lease_before = lease(&client, "kube-scheduler")
        .await
        .expect("kube-system/kube-scheduler lease");

    schedulers[leader_idx].kill();
    let killed_at = Instant::now();
    for i in 0..20 {
        create_pod(&client, pod_json(&format!("after-{i}"), json!({}))).await;
    }
    for i in 0..20 {
        wait_bound(&client, &format!("after-{i}"), Duration::from_secs(20)).await;
    }
    let handover = killed_at.elapsed();
    assert!(
        handover < Duration::from_secs(4 + 4),
        "handover took {handover:?} (lease duration 4s)"
    );
    let lease_after = lease(&client, "kube-scheduler").await.expect("lease");
    assert_ne!(holder(&lease_after), holder(&lease_before));
    assert_eq!(
        lease_after.spec.as_ref().and_then(|s| s.lease_transitions),
        lease_before
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .map(|t| t + 1)
    );

    // Every pod was bound exactly once: one Scheduled event each, no rejected binds.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let all = eventually(Duration::from_secs(10), "40 Scheduled events", || async {
        let list = events
            .list(&Default::default())
            .await
            .expect("events")
            .items;
        let scheduled = list
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .count();
        (scheduled >= 40).then_some(list)
    })
    .await;
    let mut per_pod = std::collections::BTreeMap::<String, usize>::new();
    for e in all
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Scheduled"))
    {
        *per_pod
            .entry(e.involved_object.name.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(per_pod.len(), 40);
    assert!(per_pod.values().all(|n| *n == 1), "{per_pod:?}");
    assert!(
        !all.iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling")),
        "no failed or rejected binds"
    );
    assert!(!schedulers[follower_idx].log().contains("binding failed"));
}

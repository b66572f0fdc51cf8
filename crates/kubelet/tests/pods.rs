//! The kubelet end to end, as root: real etcd + our apiserver + a containerd +
//! the kubelet binary, and the real upstream kubectl. Pods are created pre-bound
//! (`spec.nodeName`). Each test starts one cluster; both run in parallel.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::cluster::{
    busybox, condition, container_id, container_status, phase, pod, wait_pod, waiting_reason,
    Cluster,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kubelet::cri::{RemoteRuntime, RuntimeService};
use serde_json::json;

fn with(pod: Pod, pointer: &str, value: serde_json::Value) -> Pod {
    let mut v = serde_json::to_value(&pod).expect("json");
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    v.pointer_mut(parent)
        .and_then(|p| p.as_object_mut())
        .expect("parent object")
        .insert(key.to_string(), value);
    serde_json::from_value(v).expect("pod")
}

async fn event_reasons(client: &kube::Client, pod: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await
        .expect("events");
    list.items.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test]
async fn pods_run_report_status_and_terminate() {
    if !common::can_run_containers() {
        return;
    }
    let cluster = Cluster::start(false).await;
    let pods = cluster.pods();

    // The node registers Ready with capacity, the containerd version and our port.
    let status = cluster.wait_node_ready().await.status.expect("node status");
    assert_eq!(
        status
            .capacity
            .as_ref()
            .and_then(|c| c.get("pods"))
            .map(|q| q.0.as_str()),
        Some("110")
    );
    let runtime = status
        .node_info
        .expect("nodeInfo")
        .container_runtime_version;
    assert!(runtime.starts_with("containerd://1."), "{runtime}");
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port);
    assert_eq!(port, Some(i32::from(cluster.kubelet_port)));
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    let lease = common::wait_for(Duration::from_secs(10), "node lease", || async {
        leases.get_opt(&cluster.node).await.ok().flatten()
    })
    .await;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(cluster.node.as_str())
    );

    let config: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "app-config"},
        "data": {"color": "blue", "index.html": "from-configmap"},
    }))
    .expect("configmap");
    Api::<ConfigMap>::namespaced(cluster.client.clone(), "default")
        .create(&PostParams::default(), &config)
        .await
        .expect("configmap");

    // Two containers sharing the pod's network namespace.
    let web = pod(
        "web",
        &cluster.node,
        "Always",
        json!([
            busybox("httpd", "mkdir -p /www && echo hello-from-$(POD_NAME) > /www/index.html && echo serving && exec httpd -f -p 80 -h /www"),
            busybox("client", "exec sleep 3600"),
        ]),
    );
    let web = with(
        web,
        "/spec/containers/0/env",
        json!([{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
    );
    // A ConfigMap as env (one key, and all keys with a prefix) and as a volume.
    let configured = pod(
        "configured",
        &cluster.node,
        "Always",
        json!([busybox(
            "main",
            "echo color=$COLOR cm=$CM_color; cat /etc/app/index.html; echo; exec sleep 3600"
        )]),
    );
    let configured = with(
        configured,
        "/spec/containers/0/env",
        json!([{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "color"}}}]),
    );
    let configured = with(
        configured,
        "/spec/containers/0/envFrom",
        json!([{"prefix": "CM_", "configMapRef": {"name": "app-config"}}]),
    );
    let configured = with(
        configured,
        "/spec/containers/0/volumeMounts",
        json!([{"name": "cfg", "mountPath": "/etc/app"}]),
    );
    let configured = with(
        configured,
        "/spec/volumes",
        json!([{"name": "cfg", "configMap": {"name": "app-config"}}]),
    );
    // Init containers run in order, each to completion, before the app.
    let init = pod(
        "init",
        &cluster.node,
        "Always",
        json!([busybox("main", "cat /work/order; exec sleep 3600")]),
    );
    let init = with(
        init,
        "/spec/initContainers",
        json!([
            busybox("first", "sleep 1; echo first > /work/order"),
            busybox("second", "echo second >> /work/order")
        ]),
    );
    let init = with(
        init,
        "/spec/volumes",
        json!([{"name": "work", "emptyDir": {}}]),
    );
    let init = with(
        init,
        "/spec/containers/0/volumeMounts",
        json!([{"name": "work", "mountPath": "/work"}]),
    );
    let init = with(
        init,
        "/spec/initContainers/0/volumeMounts",
        json!([{"name": "work", "mountPath": "/work"}]),
    );
    let init = with(
        init,
        "/spec/initContainers/1/volumeMounts",
        json!([{"name": "work", "mountPath": "/work"}]),
    );
    // Probes: a liveness probe that starts failing, a readiness probe that never
    // passes (behind a startup probe that does).
    let probes = pod(
        "probes",
        &cluster.node,
        "Always",
        json!([
            busybox(
                "live",
                "touch /tmp/healthy; sleep 1; rm /tmp/healthy; exec sleep 3600"
            ),
            busybox("unready", "mkdir -p /www && exec httpd -f -p 8080 -h /www"),
        ]),
    );
    let probes = with(
        probes,
        "/spec/containers/0/livenessProbe",
        json!({"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2, "terminationGracePeriodSeconds": 1}),
    );
    let probes = with(
        probes,
        "/spec/containers/1/ports",
        json!([{"name": "http", "containerPort": 8080}]),
    );
    let probes = with(
        probes,
        "/spec/containers/1/readinessProbe",
        json!({"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1}),
    );
    let probes = with(
        probes,
        "/spec/containers/1/startupProbe",
        json!({"tcpSocket": {"port": 8080}, "periodSeconds": 1}),
    );
    // An image no registry has.
    let missing = pod(
        "missing",
        &cluster.node,
        "Always",
        json!([{"name": "main", "image": "docker.io/library/nope:1", "imagePullPolicy": "IfNotPresent"}]),
    );
    let never_ok = pod(
        "ok",
        &cluster.node,
        "Never",
        json!([busybox("main", "echo done")]),
    );
    let never_fail = pod(
        "fail",
        &cluster.node,
        "Never",
        json!([busybox("main", "exit 3")]),
    );
    for p in [
        &web,
        &configured,
        &init,
        &probes,
        &missing,
        &never_ok,
        &never_fail,
    ] {
        pods.create(&PostParams::default(), p)
            .await
            .expect("create pod");
    }

    let running = wait_pod(&pods, "web", "web Running and 2/2 ready", |p| {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.len() == 2 && cs.iter().all(|c| c.ready));
        phase(p) == "Running" && ready
    })
    .await;
    let status = running.status.clone().expect("status");
    let pod_ip = status.pod_ip.clone().expect("podIP");
    assert!(
        pod_ip.starts_with(cluster.containerd.pod_cidr.trim_end_matches("0/24")),
        "{pod_ip} not in {}",
        cluster.containerd.pod_cidr
    );
    assert!(status.host_ip.is_some());
    for wanted in ["Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert_eq!(
            condition(&running, wanted).as_deref(),
            Some("True"),
            "{wanted}"
        );
    }

    // The second container reaches the first over localhost.
    let cri = RemoteRuntime::connect(&cluster.containerd.endpoint())
        .await
        .expect("cri");
    let client_id = container_id(&running, "client");
    let fetched = common::wait_for(Duration::from_secs(10), "httpd via localhost", || async {
        let cmd = vec!["wget".into(), "-qO-".into(), "http://127.0.0.1:80/".into()];
        let out = cri
            .exec_sync(&client_id, cmd, Duration::from_secs(5))
            .await
            .ok()?;
        (out.exit_code == 0).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert_eq!(fetched, "hello-from-web\n");

    // Logs from the kubelet's HTTP server, and through the apiserver with kubectl.
    let logs = cluster.kubelet_get("/containerLogs/default/web/httpd");
    assert_eq!((logs.status, logs.body.as_str()), (200, "serving\n"));
    assert_eq!(
        cluster
            .kubectl(&["logs", "web", "-c", "httpd"])
            .assert_success()
            .stdout,
        "serving\n"
    );
    // exec (kubectl tries WebSocket v5 first; containerd refuses it and kubectl
    // falls back to SPDY), with and without stdin.
    assert_eq!(
        cluster
            .kubectl(&["exec", "web", "-c", "client", "--", "echo", "hi"])
            .assert_success()
            .stdout,
        "hi\n"
    );
    let out = cluster.kubectl_stdin(
        &[
            "exec",
            "-i",
            "web",
            "-c",
            "client",
            "--",
            "sh",
            "-c",
            "cat; echo eof",
        ],
        "line one\nline two\n",
    );
    assert_eq!(out.assert_success().stdout, "line one\nline two\neof\n");
    let out = cluster.kubectl(&["exec", "web", "-c", "client", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status, 7, "{out}");
    // logs -f streams what the container writes later.
    let (follow, follow_out) =
        cluster.kubectl_background("logs-f", &["logs", "-f", "web", "-c", "httpd"]);
    common::wait_for(Duration::from_secs(15), "logs -f to start", || async {
        std::fs::read_to_string(&follow_out)
            .ok()
            .filter(|s| s.contains("serving"))
    })
    .await;
    cluster
        .kubectl(&[
            "exec",
            "web",
            "-c",
            "httpd",
            "--",
            "sh",
            "-c",
            "echo appended-later > /proc/1/fd/1",
        ])
        .assert_success();
    common::wait_for(Duration::from_secs(15), "logs -f to follow", || async {
        std::fs::read_to_string(&follow_out)
            .ok()
            .filter(|s| s.contains("appended-later"))
    })
    .await;
    drop(follow);
    // port-forward to the httpd.
    let local = test_support::free_port();
    let (forward, forward_out) = cluster.kubectl_background(
        "port-forward",
        &["port-forward", "pod/web", &format!("{local}:80")],
    );
    common::wait_for(
        Duration::from_secs(15),
        "port-forward to listen",
        || async {
            std::fs::read_to_string(&forward_out)
                .ok()
                .filter(|s| s.contains("Forwarding from"))
        },
    )
    .await;
    for _ in 0..2 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local))
            .expect("connect to the forwarded port");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("response");
        assert!(response.ends_with("hello-from-web\n"), "{response}");
    }
    drop(forward);

    // ConfigMap as env and as a volume.
    wait_pod(&pods, "configured", "configured Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let logs = common::wait_for(Duration::from_secs(10), "configured logs", || async {
        let out = cluster.kubectl(&["logs", "configured"]);
        out.stdout.contains("from-configmap").then_some(out.stdout)
    })
    .await;
    assert_eq!(logs, "color=blue cm=blue\nfrom-configmap\n");

    // Init containers ran in order and completed.
    let init = wait_pod(&pods, "init", "init Running", |p| phase(p) == "Running").await;
    let init_states: Vec<Option<String>> = init
        .status
        .and_then(|s| s.init_container_statuses)
        .expect("init statuses")
        .into_iter()
        .map(|s| s.state.and_then(|st| st.terminated).and_then(|t| t.reason))
        .collect();
    assert_eq!(
        init_states,
        [Some("Completed".to_string()), Some("Completed".to_string())]
    );
    assert_eq!(
        cluster.kubectl(&["logs", "init"]).assert_success().stdout,
        "first\nsecond\n"
    );

    // restartPolicy Never: terminal phase with the exit code.
    let ok = wait_pod(&pods, "ok", "ok Succeeded", |p| phase(p) == "Succeeded").await;
    let ok_state = container_status(&ok, "main")
        .and_then(|s| s.state)
        .expect("state");
    assert_eq!(
        ok_state.terminated.map(|t| (t.exit_code, t.reason)),
        Some((0, Some("Completed".into())))
    );
    let failed = wait_pod(&pods, "fail", "fail Failed", |p| phase(p) == "Failed").await;
    let failed_state = container_status(&failed, "main")
        .and_then(|s| s.state)
        .expect("state");
    assert_eq!(
        failed_state.terminated.map(|t| (t.exit_code, t.reason)),
        Some((3, Some("Error".into())))
    );

    // Liveness failure: killed and restarted, then held back in CrashLoopBackOff.
    let crashing = wait_pod(
        &pods,
        "probes",
        "live in CrashLoopBackOff after a restart",
        |p| {
            let restarts = container_status(p, "live").map_or(0, |s| s.restart_count);
            restarts >= 1 && waiting_reason(p, "live").as_deref() == Some("CrashLoopBackOff")
        },
    )
    .await;
    let live = container_status(&crashing, "live").expect("live");
    let message = live
        .state
        .and_then(|s| s.waiting)
        .and_then(|w| w.message)
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off 10s restarting failed container=live"),
        "{message}"
    );
    // Readiness failure: running and started, but not ready.
    let unready = container_status(&crashing, "unready").expect("unready");
    assert!(unready.state.and_then(|s| s.running).is_some());
    assert_eq!((unready.ready, unready.started), (false, Some(true)));
    assert_eq!(condition(&crashing, "Ready").as_deref(), Some("False"));
    assert_eq!(
        condition(&crashing, "ContainersReady").as_deref(),
        Some("False")
    );
    let reasons = common::wait_for(Duration::from_secs(10), "probe events", || async {
        let reasons = event_reasons(&cluster.client, "probes").await;
        [
            "Pulled",
            "Created",
            "Started",
            "Unhealthy",
            "Killing",
            "BackOff",
        ]
        .iter()
        .all(|r| reasons.iter().any(|x| x == r))
        .then_some(reasons)
    })
    .await;
    assert!(reasons.len() >= 6, "{reasons:?}");

    // A missing image: ErrImagePull then ImagePullBackOff; the others are undisturbed.
    let missing = wait_pod(&pods, "missing", "ImagePullBackOff", |p| {
        waiting_reason(p, "main").as_deref() == Some("ImagePullBackOff")
    })
    .await;
    assert_eq!(phase(&missing), "Pending");
    let reasons = event_reasons(&cluster.client, "missing").await;
    for wanted in ["Pulling", "Failed", "BackOff"] {
        assert!(
            reasons.iter().any(|r| r == wanted),
            "{wanted} not in {reasons:?}"
        );
    }
    let web_now = pods.get("web").await.expect("web");
    assert_eq!(
        container_id(&web_now, "httpd"),
        container_id(&running, "httpd")
    );

    // /stats/summary: the node and each pod's containers.
    let summary: serde_json::Value =
        serde_json::from_str(&cluster.kubelet_get("/stats/summary").body).expect("summary json");
    assert_eq!(summary["node"]["nodeName"], cluster.node.as_str());
    let web_stats = summary["pods"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["podRef"]["name"] == "web"))
        .cloned()
        .expect("web stats");
    assert_eq!(web_stats["containers"].as_array().map(Vec::len), Some(2));
    assert!(
        web_stats["memory"]["workingSetBytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{web_stats}"
    );

    // Graceful deletion: the kubelet stops the containers, then removes the pod.
    pods.delete("web", &DeleteParams::default())
        .await
        .expect("delete web");
    common::wait_for(
        Duration::from_secs(30),
        "web removed by the kubelet",
        || async { matches!(pods.get_opt("web").await, Ok(None)).then_some(()) },
    )
    .await;
    let web_uid = running.metadata.uid.clone().expect("uid");
    common::wait_for(Duration::from_secs(10), "web sandbox removed", || async {
        let sandboxes = cri.list_pod_sandbox(None).await.ok()?;
        (!sandboxes
            .iter()
            .any(|s| s.labels.get("io.kubernetes.pod.uid") == Some(&web_uid)))
        .then_some(())
    })
    .await;
    assert!(event_reasons(&cluster.client, "web")
        .await
        .iter()
        .any(|r| r == "Killing"));
    cluster.assert_kubelet_healthy();
}

#[tokio::test]
async fn static_pods_mirror_pods_and_kubelet_restart_adoption() {
    if !common::can_run_containers() {
        return;
    }
    let mut cluster = Cluster::start(true).await;
    let pods = cluster.pods();
    let manifest = cluster.manifests.join("static.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static\nspec:\n  containers:\n  - name: main\n    image: busybox\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, 'echo static; exec sleep 3600']\n",
    )
    .expect("manifest");
    let regular = pod(
        "regular",
        &cluster.node,
        "Always",
        json!([busybox("main", "exec sleep 3600")]),
    );
    pods.create(&PostParams::default(), &regular)
        .await
        .expect("create regular");

    // The static pod runs and shows up as a mirror pod `<name>-<node>`.
    let mirror_name = format!("static-{}", cluster.node);
    let mirror = wait_pod(&pods, &mirror_name, "mirror pod Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let annotations = mirror.metadata.annotations.clone().unwrap_or_default();
    let hash = annotations
        .get("kubernetes.io/config.mirror")
        .cloned()
        .expect("config.mirror annotation");
    assert_eq!(annotations.get("kubernetes.io/config.hash"), Some(&hash));
    assert_eq!(
        annotations
            .get("kubernetes.io/config.source")
            .map(String::as_str),
        Some("file")
    );
    let static_id = container_id(&mirror, "main");
    assert_eq!(
        cluster
            .kubectl(&["logs", &mirror_name])
            .assert_success()
            .stdout,
        "static\n"
    );
    let regular = wait_pod(&pods, "regular", "regular Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let regular_id = container_id(&regular, "main");

    // Deleting the mirror pod recreates it; the container keeps running.
    pods.delete(&mirror_name, &DeleteParams::default())
        .await
        .expect("delete mirror");
    let old_uid = mirror.metadata.uid.clone();
    let recreated = wait_pod(&pods, &mirror_name, "mirror pod recreated", |p| {
        p.metadata.uid != old_uid && phase(p) == "Running"
    })
    .await;
    assert_eq!(container_id(&recreated, "main"), static_id);

    // A kubelet restart adopts what runs: same containers, no restarts.
    let cri = RemoteRuntime::connect(&cluster.containerd.endpoint())
        .await
        .expect("cri");
    let before: Vec<String> = cri
        .list_containers(None)
        .await
        .expect("containers")
        .into_iter()
        .map(|c| c.id)
        .collect();
    cluster.restart_kubelet();
    cluster.wait_node_ready().await;
    let probe = pod(
        "after-restart",
        &cluster.node,
        "Always",
        json!([busybox("main", "exec sleep 3600")]),
    );
    pods.create(&PostParams::default(), &probe)
        .await
        .expect("create after-restart");
    wait_pod(
        &pods,
        "after-restart",
        "a new pod runs after the restart",
        |p| phase(p) == "Running",
    )
    .await;
    for (name, id) in [(mirror_name.as_str(), &static_id), ("regular", &regular_id)] {
        let p = pods.get(name).await.expect("pod");
        assert_eq!(&container_id(&p, "main"), id, "{name} was restarted");
        assert_eq!(
            container_status(&p, "main").map(|s| s.restart_count),
            Some(0)
        );
        assert_eq!(phase(&p), "Running");
    }
    let after: Vec<String> = cri
        .list_containers(None)
        .await
        .expect("containers")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert!(
        before.iter().all(|id| after.contains(id)),
        "containers lost: {before:?} → {after:?}"
    );
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the new pod's container was created"
    );

    // Removing the manifest stops the static pod and removes its mirror.
    std::fs::remove_file(&manifest).expect("remove manifest");
    common::wait_for(Duration::from_secs(20), "mirror pod removed", || async {
        matches!(pods.get_opt(&mirror_name).await, Ok(None)).then_some(())
    })
    .await;
    common::wait_for(
        Duration::from_secs(20),
        "static container removed",
        || async {
            let ids: Vec<String> = cri
                .list_containers(None)
                .await
                .ok()?
                .into_iter()
                .map(|c| c.id)
                .collect();
            (!ids.contains(&static_id)).then_some(())
        },
    )
    .await;
    cluster.assert_kubelet_healthy();
}

/// `sh -c script` in a container of a pod (through CRI); stdout, or `None` on failure.
async fn exec(cri: &RemoteRuntime, pod: &Pod, container: &str, script: &str) -> Option<String> {
    let cmd = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    let out = cri
        .exec_sync(&container_id(pod, container), cmd, Duration::from_secs(10))
        .await
        .ok()?;
    (out.exit_code == 0).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn apply_config_map(client: &kube::Client, name: &str, data: serde_json::Value) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}, "data": data}))
        .expect("configmap");
    let params = kube::api::PatchParams::apply("test").force();
    api.patch(name, &params, &kube::api::Patch::Apply(&cm))
        .await
        .expect("apply configmap");
}

#[tokio::test]
async fn projected_token_volume_updates_and_memory_empty_dir() {
    if !common::can_run_containers() {
        return;
    }
    let cluster = Cluster::start(false).await;
    let pods = cluster.pods();
    let client = cluster.client.clone();
    // The controller-manager would create the account; nobody publishes kube-root-ca.crt yet.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "default");
    let sa = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
    let _ = accounts.create(&PostParams::default(), &sa).await;
    apply_config_map(&client, "live", json!({"color": "blue", "size": "s"})).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let secret = serde_json::from_value(
        json!({"metadata": {"name": "creds"}, "stringData": {"user": "alice"}}),
    )
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");

    // The volume upstream's ServiceAccount admission adds, plus configMap/secret volumes.
    let p = pod(
        "sa",
        &cluster.node,
        "Always",
        json!([busybox("main", "exec sleep 3600")]),
    );
    let p = with(
        p,
        "/spec/volumes",
        json!([
            {"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]}},
            {"name": "live", "configMap": {"name": "live"}},
            {"name": "creds", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "username", "mode": 256}]}},
        ]),
    );
    let p = with(
        p,
        "/spec/containers/0/volumeMounts",
        json!([
            {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true},
            {"name": "live", "mountPath": "/etc/live"},
            {"name": "live", "mountPath": "/etc/pinned/color", "subPath": "color"},
            {"name": "creds", "mountPath": "/etc/creds"},
        ]),
    );
    // A memory-backed emptyDir with a size limit.
    let mem = pod(
        "mem",
        &cluster.node,
        "Always",
        json!([busybox("main", "exec sleep 3600")]),
    );
    let mem = with(
        mem,
        "/spec/volumes",
        json!([{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]),
    );
    let mem = with(
        mem,
        "/spec/containers/0/volumeMounts",
        json!([{"name": "cache", "mountPath": "/cache"}]),
    );
    for p in [&p, &mem] {
        pods.create(&PostParams::default(), p)
            .await
            .expect("create pod");
    }
    let running = wait_pod(&pods, "sa", "sa Running", |p| phase(p) == "Running").await;
    let cri = RemoteRuntime::connect(&cluster.containerd.endpoint())
        .await
        .expect("cri");

    // Token and namespace without ca.crt (the ConfigMap is missing: mounted anyway).
    let sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let listing = exec(&cri, &running, "main", &format!("ls {sa_dir}"))
        .await
        .expect("ls");
    assert_eq!(listing, "namespace\ntoken\n");
    assert_eq!(
        exec(&cri, &running, "main", &format!("cat {sa_dir}/namespace"))
            .await
            .as_deref(),
        Some("default")
    );
    let token = exec(&cri, &running, "main", &format!("cat {sa_dir}/token"))
        .await
        .expect("token");
    let review: k8s_openapi::api::authentication::v1::TokenReview =
        serde_json::from_value(json!({"spec": {"token": token}})).expect("review");
    let reviews: Api<k8s_openapi::api::authentication::v1::TokenReview> = Api::all(client.clone());
    let reviewed = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("token review")
        .status
        .expect("review status");
    assert_eq!(reviewed.authenticated, Some(true), "{reviewed:?}");
    let user = reviewed.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:default")
    );
    // Bound to the pod, with the requested lifetime.
    use base64::Engine as _;
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .expect("JWT payload");
    let claims: serde_json::Value = serde_json::from_slice(&claims).expect("claims");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "sa", "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        running.metadata.uid.clone().expect("uid").as_str()
    );
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(3607),
        "{claims}"
    );
    // The upstream layout: ..data → ..<timestamp>, each key a symlink through ..data.
    let layout = exec(
        &cri,
        &running,
        "main",
        "readlink /etc/live/..data; readlink /etc/live/color",
    )
    .await
    .expect("readlink");
    assert!(
        layout.starts_with("..20") && layout.ends_with("\n..data/color\n"),
        "{layout}"
    );
    assert_eq!(
        exec(
            &cri,
            &running,
            "main",
            "stat -L -c %a /etc/creds/username; cat /etc/creds/username"
        )
        .await
        .as_deref(),
        Some("400\nalice")
    );

    // kube-root-ca.crt published later: ca.crt appears.
    apply_config_map(
        &client,
        "kube-root-ca.crt",
        json!({"ca.crt": "-----BEGIN CERTIFICATE-----\n"}),
    )
    .await;
    common::wait_for(
        Duration::from_secs(15),
        "ca.crt in the token volume",
        || async {
            exec(&cri, &running, "main", &format!("cat {sa_dir}/ca.crt"))
                .await
                .filter(|s| s.starts_with("-----BEGIN CERTIFICATE"))
        },
    )
    .await;
    // ConfigMap and Secret updates reach the volume; the subPath mount keeps the old value.
    // (The whole configuration: an apply that left `size` out would remove it.)
    apply_config_map(&client, "live", json!({"color": "green", "size": "s"})).await;
    let patch = json!({"stringData": {"user": "bob"}});
    secrets
        .patch(
            "creds",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("patch secret");
    common::wait_for(
        Duration::from_secs(15),
        "configmap update in the volume",
        || async {
            exec(&cri, &running, "main", "cat /etc/live/color")
                .await
                .filter(|s| s == "green")
        },
    )
    .await;
    // A key removed from the ConfigMap disappears from the volume.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.patch(
        "live",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/data/size"}])).expect("patch"),
        ),
    )
    .await
    .expect("remove key");
    common::wait_for(
        Duration::from_secs(15),
        "removed key gone from the volume",
        || async {
            exec(&cri, &running, "main", "ls /etc/live")
                .await
                .filter(|s| s == "color\n")
        },
    )
    .await;
    common::wait_for(
        Duration::from_secs(15),
        "secret update in the volume",
        || async {
            exec(&cri, &running, "main", "cat /etc/creds/username")
                .await
                .filter(|s| s == "bob")
        },
    )
    .await;
    assert_eq!(
        exec(&cri, &running, "main", "cat /etc/pinned/color")
            .await
            .as_deref(),
        Some("blue")
    );

    // emptyDir medium Memory: a tmpfs of the given size, unmounted when the pod goes.
    let mem = wait_pod(&pods, "mem", "mem Running", |p| phase(p) == "Running").await;
    let mounts = exec(&cri, &mem, "main", "grep ' /cache ' /proc/mounts")
        .await
        .expect("mounts");
    assert!(
        mounts.starts_with("tmpfs /cache tmpfs") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    assert!(exec(
        &cri,
        &mem,
        "main",
        "dd if=/dev/zero of=/cache/fill bs=1024 count=512 2>/dev/null && echo ok"
    )
    .await
    .is_some());
    assert!(
        exec(
            &cri,
            &mem,
            "main",
            "dd if=/dev/zero of=/cache/more bs=1024 count=1024 2>/dev/null"
        )
        .await
        .is_none(),
        "wrote past the size limit"
    );
    let uid = mem.metadata.uid.clone().expect("uid");
    let pod_dir = cluster.root_dir().join("pods").join(&uid);
    let host_mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        host_mounts().contains(&pod_dir.display().to_string()),
        "no host tmpfs for the emptyDir"
    );
    pods.delete("mem", &DeleteParams::default())
        .await
        .expect("delete mem");
    common::wait_for(Duration::from_secs(30), "mem removed", || async {
        matches!(pods.get_opt("mem").await, Ok(None)).then_some(())
    })
    .await;
    common::wait_for(
        Duration::from_secs(10),
        "tmpfs unmounted and pod dir removed",
        || async {
            (!host_mounts().contains(&pod_dir.display().to_string()) && !pod_dir.exists())
                .then_some(())
        },
    )
    .await;
    cluster.assert_kubelet_healthy();
}

#[tokio::test]
async fn lifecycle_hooks_post_start_and_pre_stop() {
    if !common::can_run_containers() {
        return;
    }
    let cluster = Cluster::start(false).await;
    let pods = cluster.pods();
    let out = tempfile::tempdir().expect("tempdir");
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = common::servers::request_recorder(requests.clone()).await;

    // postStart exec and httpGet (to a recorder on the host), preStop exec before SIGTERM.
    let hooks = pod(
        "hooks",
        &cluster.node,
        "Always",
        json!([
            busybox(
                "main",
                "trap 'echo term >> /out/log; exit 0' TERM; while true; do sleep 1; done"
            ),
            busybox("web", "exec sleep 3600"),
        ]),
    );
    let hooks = with(
        hooks,
        "/spec/volumes",
        json!([{"name": "out", "hostPath": {"path": out.path().display().to_string()}}]),
    );
    let hooks = with(
        hooks,
        "/spec/containers/0/volumeMounts",
        json!([{"name": "out", "mountPath": "/out"}]),
    );
    let hooks = with(
        hooks,
        "/spec/containers/0/lifecycle",
        json!({
            "postStart": {"exec": {"command": ["sh", "-c", "echo poststart >> /out/log"]}},
            "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /out/log"]}},
        }),
    );
    let hooks = with(
        hooks,
        "/spec/containers/1/lifecycle",
        json!({
            "postStart": {"httpGet": {"host": "127.0.0.1", "port": recorder, "path": "/post-start-hook"}},
        }),
    );
    // Failing postStart hooks: the container is killed (and restarted).
    let failing = pod(
        "bad-hooks",
        &cluster.node,
        "Always",
        json!([
            busybox("exec", "exec sleep 3600"),
            busybox("http", "exec sleep 3600")
        ]),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let failing = with(
        failing,
        "/spec/containers/0/lifecycle",
        json!({"postStart": {"exec": {"command": ["sh", "-c", "echo nope; exit 3"]}}}),
    );
    let failing = with(
        failing,
        "/spec/containers/1/lifecycle",
        json!({"postStart": {"httpGet": {"host": "127.0.0.1", "port": closed, "path": "/x"}}}),
    );
    for p in [&hooks, &failing] {
        pods.create(&PostParams::default(), p)
            .await
            .expect("create pod");
    }

    wait_pod(&pods, "hooks", "hooks Running", |p| phase(p) == "Running").await;
    let log = out.path().join("log");
    common::wait_for(Duration::from_secs(10), "postStart exec", || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|s| s == "poststart\n")
    })
    .await;
    assert_eq!(
        requests.lock().expect("requests").as_slice(),
        ["/post-start-hook"]
    );

    let failed = wait_pod(
        &pods,
        "bad-hooks",
        "both containers restarted after failed hooks",
        |p| {
            ["exec", "http"]
                .iter()
                .all(|c| container_status(p, c).is_some_and(|s| s.restart_count >= 1))
        },
    )
    .await;
    assert!(container_status(&failed, "exec")
        .and_then(|s| s.last_state)
        .and_then(|s| s.terminated)
        .is_some());
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let messages = common::wait_for(
        Duration::from_secs(10),
        "FailedPostStartHook events",
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=bad-hooks"))
                .await
                .ok()?;
            let messages: Vec<String> = list
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("FailedPostStartHook"))
                .filter_map(|e| e.message)
                .collect();
            (messages
                .iter()
                .any(|m| m.starts_with("Exec lifecycle hook"))
                && messages
                    .iter()
                    .any(|m| m.starts_with("HTTP lifecycle hook")))
            .then_some(messages)
        },
    )
    .await;
    let exec_message = messages
        .iter()
        .find(|m| m.starts_with("Exec"))
        .expect("exec message");
    assert!(exec_message.starts_with("Exec lifecycle hook ([sh -c echo nope; exit 3]) for Container \"exec\" in Pod \"bad-hooks_default("), "{exec_message}");
    assert!(
        exec_message.ends_with("message: \"nope\\n\""),
        "{exec_message}"
    );

    // Deletion: preStop runs, then SIGTERM.
    pods.delete("hooks", &DeleteParams::default())
        .await
        .expect("delete hooks");
    common::wait_for(Duration::from_secs(30), "hooks removed", || async {
        matches!(pods.get_opt("hooks").await, Ok(None)).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "poststart\nprestop\nterm\n"
    );
    cluster.assert_kubelet_healthy();
}

#[tokio::test]
async fn https_and_grpc_probes_and_kubelet_version() {
    if !common::can_run_containers() {
        return;
    }
    use std::sync::atomic::{AtomicI32, AtomicU16, Ordering};
    use std::sync::Arc;
    let cluster = Cluster::start(false).await;
    let pods = cluster.pods();

    // nodeInfo.kubeletVersion is the apiserver's /version gitVersion.
    let node = cluster.wait_node_ready().await;
    let version = cluster.client.apiserver_version().await.expect("/version");
    assert_eq!(
        node.status
            .and_then(|s| s.node_info)
            .map(|i| i.kubelet_version),
        Some(version.git_version)
    );

    // A hostNetwork pod: its IP is the node's (127.0.0.1), where the test serves.
    let https_status = Arc::new(AtomicU16::new(200));
    let https_port = common::servers::https_server(https_status.clone()).await;
    let grpc_status = Arc::new(AtomicI32::new(1));
    let grpc_port = common::servers::grpc_health_server(grpc_status.clone()).await;
    let p = pod(
        "probed",
        &cluster.node,
        "Always",
        json!([
            busybox("tls", "exec sleep 3600"),
            busybox("grpc", "exec sleep 3600")
        ]),
    );
    let p = with(p, "/spec/hostNetwork", json!(true));
    let p = with(
        p,
        "/spec/containers/0/readinessProbe",
        json!({"httpGet": {"scheme": "HTTPS", "port": https_port, "path": "/ready"}, "periodSeconds": 1}),
    );
    let p = with(
        p,
        "/spec/containers/1/readinessProbe",
        json!({"grpc": {"port": grpc_port}, "periodSeconds": 1}),
    );
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
    let ready = |name: &'static str, want: bool| {
        move |p: &Pod| container_status(p, name).is_some_and(|s| s.ready == want)
    };
    wait_pod(&pods, "probed", "both ready", |p| {
        ready("tls", true)(p)
            && ready("grpc", true)(p)
            && condition(p, "Ready").as_deref() == Some("True")
    })
    .await;

    grpc_status.store(2, Ordering::SeqCst);
    let now = wait_pod(&pods, "probed", "grpc unready", ready("grpc", false)).await;
    assert!(ready("tls", true)(&now));
    https_status.store(503, Ordering::SeqCst);
    wait_pod(&pods, "probed", "tls unready", ready("tls", false)).await;
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let wanted = [
        "Readiness probe failed: service unhealthy (responded with \"NOT_SERVING\")",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    ];
    common::wait_for(
        Duration::from_secs(10),
        "Unhealthy events of both probes",
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=probed"))
                .await
                .ok()?;
            let messages: Vec<String> = list
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
                .filter_map(|e| e.message)
                .collect();
            wanted
                .iter()
                .all(|w| messages.iter().any(|m| m == w))
                .then_some(())
        },
    )
    .await;
    grpc_status.store(1, Ordering::SeqCst);
    wait_pod(&pods, "probed", "grpc ready again", ready("grpc", true)).await;
    cluster.assert_kubelet_healthy();
}

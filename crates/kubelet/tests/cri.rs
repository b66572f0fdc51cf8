//! The CRI client against a real containerd: sandbox + container lifecycle and
//! ExecSync, through the kubelet's `RemoteRuntime`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use kubelet::cri::{api, ImageService, RemoteRuntime, RuntimeService};

fn sandbox_config(log_dir: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "cri-test".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "cri-test".into(),
        log_directory: log_dir.into(),
        labels: HashMap::from([("io.kubernetes.pod.uid".to_string(), "uid-1".to_string())]),
        linux: Some(api::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

#[tokio::test]
async fn sandbox_container_exec_stop_remove() {
    if !common::can_run_containers() {
        return;
    }
    let node = common::Containerd::start().expect("containerd");
    let cri = RemoteRuntime::connect(&node.endpoint())
        .await
        .expect("connect");

    let version = cri.version().await.expect("version");
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.runtime_api_version, "v1");
    let status = cri.status().await.expect("status");
    let conditions: HashMap<String, bool> = status
        .status
        .expect("runtime status")
        .conditions
        .into_iter()
        .map(|c| (c.r#type, c.status))
        .collect();
    assert_eq!(
        conditions.get("RuntimeReady"),
        Some(&true),
        "{conditions:?}"
    );

    let image = cri
        .image_status("docker.io/library/busybox:latest")
        .await
        .expect("image status");
    assert!(image.is_some(), "busybox not imported");
    assert!(cri
        .image_status("docker.io/library/nope:1")
        .await
        .expect("image status")
        .is_none());

    let log_dir = node.dir().join("pods/default_cri-test_uid-1");
    let config = sandbox_config(log_dir.to_str().expect("utf-8 path"));
    let sandbox = cri
        .run_pod_sandbox(config.clone(), String::new())
        .await
        .expect("RunPodSandbox");
    let sandbox_status = cri
        .pod_sandbox_status(&sandbox)
        .await
        .expect("PodSandboxStatus");
    assert_eq!(
        sandbox_status.state,
        api::PodSandboxState::SandboxReady as i32
    );
    let ip = sandbox_status.network.expect("network").ip;
    let prefix = node.pod_cidr.trim_end_matches("0/24");
    assert!(
        ip.starts_with(prefix),
        "pod IP {ip} outside {}",
        node.pod_cidr
    );

    let container_config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "web".into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: "docker.io/library/busybox:latest".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into()],
        args: vec![
            "echo hello-from-httpd > /tmp/index.html; echo started; exec httpd -f -p 80 -h /tmp"
                .into(),
        ],
        log_path: "web/0.log".into(),
        labels: HashMap::from([(
            "io.kubernetes.container.name".to_string(),
            "web".to_string(),
        )]),
        ..Default::default()
    };
    let container = cri
        .create_container(&sandbox, container_config, config)
        .await
        .expect("CreateContainer");
    cri.start_container(&container)
        .await
        .expect("StartContainer");
    let running = cri
        .container_status(&container)
        .await
        .expect("ContainerStatus");
    assert_eq!(running.state, api::ContainerState::ContainerRunning as i32);

    let fetched = common::wait_for(Duration::from_secs(10), "httpd to answer", || async {
        let cmd = vec![
            "wget".into(),
            "-qO-".into(),
            "http://127.0.0.1:80/index.html".into(),
        ];
        let out = cri
            .exec_sync(&container, cmd, Duration::from_secs(5))
            .await
            .ok()?;
        (out.exit_code == 0).then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert_eq!(fetched, "hello-from-httpd\n");
    let failing = cri
        .exec_sync(
            &container,
            vec!["sh".into(), "-c".into(), "exit 3".into()],
            Duration::from_secs(5),
        )
        .await
        .expect("exec");
    assert_eq!(failing.exit_code, 3);

    let log = std::fs::read_to_string(log_dir.join("web/0.log")).expect("container log");
    assert!(log.contains(" stdout F started"), "{log}");

    let listed = cri.list_containers(None).await.expect("ListContainers");
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [container.as_str()]
    );

    cri.stop_container(&container, Duration::from_secs(2))
        .await
        .expect("StopContainer");
    let stopped = cri
        .container_status(&container)
        .await
        .expect("ContainerStatus");
    assert_eq!(stopped.state, api::ContainerState::ContainerExited as i32);
    cri.remove_container(&container)
        .await
        .expect("RemoveContainer");
    let err = cri.container_status(&container).await.expect_err("removed");
    assert!(err.is_not_found(), "{err}");

    cri.stop_pod_sandbox(&sandbox)
        .await
        .expect("StopPodSandbox");
    cri.remove_pod_sandbox(&sandbox)
        .await
        .expect("RemovePodSandbox");
    assert!(cri
        .list_pod_sandbox(None)
        .await
        .expect("ListPodSandbox")
        .is_empty());
}

//! The classic RPM-style configuration (`/etc/kubernetes/config` + `apiserver`, as
//! shipped in `manifests/`) expanded the way the systemd unit does, against real etcd.

mod common;

use std::{collections::HashMap, path::Path};

/// Reads `KEY="value"` lines of an EnvironmentFile.
fn env_file(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .expect("config file")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

#[test]
fn apiserver_starts_from_the_classic_config_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut env = env_file(&root.join("manifests/etc/kubernetes/config"));
    env.extend(env_file(&root.join("manifests/etc/kubernetes/apiserver")));
    let unit = std::fs::read_to_string(root.join("systemd/kube-apiserver.service")).expect("unit");
    // ExecStart= with its backslash continuation lines joined, as systemd reads it.
    let joined = unit.replace("\\\n", " ");
    let exec = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let etcd = common::Etcd::start().expect("etcd");
    let port = test_support::free_port();
    // $VARS expand and split on whitespace, as systemd does; ports are moved to free ones.
    let mut args: Vec<String> = Vec::new();
    for word in exec.split_whitespace().skip(1) {
        let Some(var) = word.strip_prefix('$') else {
            args.push(word.to_string());
            continue;
        };
        for a in env
            .get(var)
            .map(String::as_str)
            .unwrap_or("")
            .split_whitespace()
        {
            let a = a
                .replace("--port=8080", &format!("--port={port}"))
                .replace("http://127.0.0.1:2379", &etcd.endpoint());
            args.push(a);
        }
    }
    assert!(
        args.iter().any(|a| a.starts_with("--admission-control=")),
        "{args:?}"
    );
    args.push(format!("--secure-port={}", test_support::free_port()));
    let dir = tempfile::tempdir().expect("tempdir");
    args.push(format!("--cert-dir={}", dir.path().display()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube-apiserver"))
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("apiserver");
    let url = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if test_support::http_get(&format!("{url}/readyz")).is_ok_and(|r| r.status == 200) {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let svc = test_support::http_get(&format!(
        "{url}/api/v1/namespaces/default/services/kubernetes"
    ));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "apiserver with {args:?} never became ready");
    let svc: serde_json::Value = serde_json::from_str(&svc.expect("GET").body).expect("json");
    assert_eq!(
        svc["spec"]["clusterIP"], "10.254.0.1",
        "KUBE_SERVICE_ADDRESSES range is used"
    );
}

//! The newcomer's path, as CI walks it: `scripts/local-up.sh` (debug binaries of
//! this workspace) brings up the all-in-one cluster and runs the README's demo
//! with the upstream kubectl and ours, `local-up.sh status` shows every daemon,
//! and `scripts/local-down.sh` stops everything it started (no pid survives).
//! Needs root; run by `scripts/test.sh` after the workspace binaries are built.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn script(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts").join(name))
        .args(args)
        .env("LOCAL_UP_PROFILE", "debug")
        .env("KUBE_LOCAL_STATE", "/var/lib/kube-local-test")
        .output()
        .expect("run script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn pids() -> Vec<(String, u32)> {
    let Ok(dir) = std::fs::read_dir("/run/kubernetes") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .filter_map(|e| {
            let pid = std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((e.path().file_stem()?.to_string_lossy().into_owned(), pid))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn local_up_runs_the_demo_with_both_kubectls_and_local_down_leaves_nothing() {
    // A previous interrupted run would make local-up reuse its daemons.
    let _ = script("local-down.sh", &[]);
    let (ok, out) = script("local-up.sh", &[]);
    if !ok {
        let (_, down) = script("local-down.sh", &[]);
        panic!("local-up.sh failed:\n{out}\n--- local-down ---\n{down}");
    }
    assert!(out.contains("demo passed with /usr/bin/kubectl"), "{out}");
    assert!(
        out.contains("target/debug/kubectl"),
        "our kubectl did not run the demo:\n{out}"
    );
    let (ok, status) = script("local-up.sh", &["status"]);
    let started = pids();
    let (down_ok, down) = script("local-down.sh", &[]);
    assert!(ok, "local-up.sh status failed:\n{status}");
    for daemon in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "flanneld",
        "containerd",
    ] {
        assert!(
            status
                .lines()
                .any(|l| l.contains(daemon) && l.contains("running")),
            "{daemon} not running per local-up.sh status:\n{status}"
        );
    }
    assert!(down_ok, "local-down.sh failed:\n{down}");
    assert!(
        !started.is_empty(),
        "no pid files in /run/kubernetes while the cluster ran"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let left: Vec<_> = started.iter().filter(|(_, pid)| alive(*pid)).collect();
    assert!(
        left.is_empty(),
        "still running after local-down.sh: {left:?}"
    );
}

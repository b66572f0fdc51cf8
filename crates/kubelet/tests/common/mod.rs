//! Test helpers: a containerd per test with its own root/state/socket/CNI network
//! (configured by `scripts/containerd-node.sh`, images from
//! `scripts/build-images.sh`), and the apiserver binary.
#![allow(dead_code)] // each test binary uses a different part

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod cluster;
pub mod servers;

use kubelet::cri::{RemoteRuntime, RuntimeService};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether this machine can run containers (root, containerd, runc). Tests that
/// need them skip with a message otherwise; CI runs as root.
pub fn can_run_containers() -> bool {
    let root = rustix_is_root();
    let tools = [
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/lib/cni/bridge",
    ]
    .iter()
    .all(|p| Path::new(p).exists());
    if !(root && tools) {
        eprintln!("skipping: needs root, containerd, runc and CNI plugins");
    }
    root && tools
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A pod CIDR no other test of this run uses: 10.<200-239>.<x>.0/24, routed
/// locally by the node's bridge.
pub fn unique_pod_cidr() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(COUNTER.fetch_add(1, Ordering::SeqCst));
    format!("10.{}.{}.0/24", 200 + (n / 256) % 40, n % 256)
}

/// A containerd started for one test; on drop its sandboxes are stopped and
/// removed (releasing IPs and veths), the process is stopped and its bridge deleted.
pub struct Containerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub pod_cidr: String,
}

impl Containerd {
    pub fn start() -> anyhow::Result<Containerd> {
        let pod_cidr = unique_pod_cidr();
        let dir = tempfile::Builder::new()
            .prefix("containerd-")
            .tempdir_in("/tmp")?;
        let status = Command::new(repo_root().join("scripts/containerd-node.sh"))
            .arg("--dir")
            .arg(dir.path())
            .args(["--pod-cidr", &pod_cidr, "--config-only"])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "containerd-node.sh --config-only failed: {status}"
        );
        let log = File::create(dir.path().join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut node = Containerd {
            child: Some(child),
            dir,
            pod_cidr,
        };
        let socket = node.socket();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            if let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) {
                anyhow::bail!("containerd exited with {status}:\n{}", node.log());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "containerd socket did not appear:\n{}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new(repo_root().join("scripts/build-images.sh"))
            .arg("--address")
            .arg(&socket)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "build-images.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(node)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn bridge(&self) -> Option<String> {
        let conf =
            std::fs::read_to_string(self.dir.path().join("net.d/10-bridge.conflist")).ok()?;
        let value: serde_json::Value = serde_json::from_str(&conf).ok()?;
        value
            .pointer("/plugins/0/bridge")?
            .as_str()
            .map(str::to_string)
    }

    /// Stops and removes every sandbox (CNI DEL for each) through CRI.
    fn remove_all_sandboxes(&self) {
        let endpoint = self.endpoint();
        // A thread with its own runtime: drop may run inside a tokio test.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(cri) = RemoteRuntime::connect(&endpoint).await else {
                    return;
                };
                for sandbox in cri.list_pod_sandbox(None).await.unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                    let _ = cri.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        })
        .join();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail = &log[log.len().saturating_sub(8000)..];
            eprintln!(
                "----- containerd log ({}) -----\n{tail}\n----- end -----",
                self.dir.path().display()
            );
        }
        self.remove_all_sandboxes();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(bridge) = self.bridge() {
            let _ = Command::new("ip")
                .args(["link", "del", &bridge])
                .stderr(Stdio::null())
                .status();
        }
        // Leftover mounts (if a sandbox could not be removed) would make removal fail.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}

/// `$KUBE_APISERVER_BIN`, else `target/debug/kube-apiserver`, built with
/// `cargo build -p kube-apiserver` when missing.
pub fn apiserver_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("KUBE_APISERVER_BIN") {
        return binary.into();
    }
    let binary = repo_root().join("target/debug/kube-apiserver");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "kube-apiserver"])
            .current_dir(repo_root())
            .status()
            .expect("running cargo build -p kube-apiserver");
        assert!(status.success(), "cargo build -p kube-apiserver failed");
    }
    binary
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed on drop, its log printed when the test panics.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, mut command: Command, log: PathBuf) -> anyhow::Result<Process> {
        let file = File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Process {
            name: name.into(),
            child,
            log,
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let mut start = log.len().saturating_sub(12000);
            while !log.is_char_boundary(start) {
                start += 1;
            }
            eprintln!(
                "----- {} log -----\n{}\n----- end -----",
                self.name,
                &log[start..]
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

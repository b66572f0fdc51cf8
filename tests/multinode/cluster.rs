//! A master + minions cluster from `scripts/netns-cluster.sh`, torn down on drop,
//! and the helpers the scenarios use (kubectl, exec in pods, waiting, safe HTTP
//! from the machine itself).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

pub struct Cluster {
    dir: tempfile::TempDir,
    torn_down: bool,
}

impl Cluster {
    /// `scripts/netns-cluster.sh up` with the given backend and proxy mode and
    /// more arguments (e.g. `--etcd-tls`).
    pub fn up_with(backend: &str, proxy_mode: &str, extra: &[&str]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("netns-cluster-")
            .tempdir()
            .expect("tempdir");
        let cluster = Cluster {
            dir,
            torn_down: false,
        };
        // A previous run that was killed may have left its hosts behind.
        let _ = cluster.script(&["down"]);
        let mut args = vec!["up", "--backend", backend, "--proxy-mode", proxy_mode];
        args.extend_from_slice(extra);
        let out = cluster.script(&args);
        assert!(
            out.status.success(),
            "netns-cluster.sh up failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        cluster
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(repo_root().join("scripts/netns-cluster.sh"))
            .args(args)
            .env("NC_DIR", self.dir.path())
            .env("NC_PREFIX", "nc-")
            .env("BIN_DIR", repo_root().join("target/debug"))
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/netns-cluster.sh")
    }

    pub fn script_ok(&self, args: &[&str]) {
        let out = self.script(args);
        assert!(
            out.status.success(),
            "netns-cluster.sh {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// `/usr/bin/kubectl` against the cluster: (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new("/usr/bin/kubectl")
            .arg(format!(
                "--kubeconfig={}",
                self.dir.path().join("admin.kubeconfig").display()
            ))
            .args(args)
            .env("KUBECACHEDIR", self.dir.path().join("kubectl-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("kubectl output");
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args, None);
        assert!(ok, "kubectl {args:?} failed: {err}{out}");
        out
    }

    pub fn apply(&self, yaml: &str) {
        let (ok, out, err) = self.kubectl(&["apply", "-f", "-"], Some(yaml));
        assert!(ok, "kubectl apply failed: {err}{out}\n{yaml}");
    }

    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).expect("kubectl -o json")
    }

    /// Runs `sh -c script` in the pod's first container: (exit code, stdout).
    pub fn exec(&self, pod: &str, script: &str) -> (i32, String) {
        let (ok, out, err) = self.kubectl(&["exec", pod, "--", "sh", "-c", script], None);
        if ok {
            return (0, out);
        }
        let code = err
            .rsplit("exit code ")
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        (code, out)
    }

    /// HTTP GET from inside a pod (busybox wget under `timeout`): the body, or None.
    pub fn http_from_pod(&self, pod: &str, url: &str) -> Option<String> {
        let (code, out) = self.exec(pod, &format!("timeout 5 wget -qO- {url}"));
        (code == 0).then_some(out)
    }

    /// Waits until the pod is Running and Ready; returns its IP.
    pub fn wait_pod_ready(&self, pod: &str) -> String {
        wait_for(&format!("pod {pod} Ready"), Duration::from_secs(90), || {
            let (ok, out, _) = self.kubectl(&["get", "pod", pod, "-o", "json"], None);
            if !ok {
                return None;
            }
            let v: Value = serde_json::from_str(&out).ok()?;
            let ready = v["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let ip = v["status"]["podIP"].as_str()?.to_string();
            ready.then_some(ip)
        })
    }

    pub fn node_ready_names(&self) -> Vec<String> {
        let v = self.get_json(&["nodes"]);
        let mut names: Vec<String> = v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|n| {
                        n["status"]["conditions"].as_array().is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                    })
                    .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A command in a host's network namespace (`master`, `minion1`, ...).
    pub fn on_host(&self, host: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/nc-{host}"))
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// The minions brought up so far (`minion1`, `minion2`, ...), sorted.
    pub fn minions(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.starts_with("minion"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `FLANNEL_SUBNET` of the minion's /run/flannel/subnet.env (e.g. `10.1.94.1/24`).
    pub fn flannel_subnet(&self, minion: &str) -> String {
        let path = self.dir.path().join(minion).join("run/flannel/subnet.env");
        let env =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        env.lines()
            .find_map(|l| l.strip_prefix("FLANNEL_SUBNET="))
            .unwrap_or_else(|| panic!("no FLANNEL_SUBNET in {}:\n{env}", path.display()))
            .to_string()
    }

    /// `ip route` in a host's network namespace.
    pub fn routes(&self, host: &str) -> String {
        let out = self.on_host(host, &["ip", "route"]);
        assert!(
            out.status.success(),
            "ip route on {host}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The pid of a unit the script started (from its pid file), if any.
    pub fn unit_pid(&self, host: &str, unit: &str) -> Option<u32> {
        let f = self
            .dir
            .path()
            .join(host)
            .join("run")
            .join(format!("{unit}.pid"));
        std::fs::read_to_string(f).ok()?.trim().parse().ok()
    }

    pub fn host_log(&self, host: &str, unit: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(host)
                .join("log")
                .join(format!("{unit}.log")),
        )
        .unwrap_or_default()
    }

    pub fn down(&mut self) {
        if !self.torn_down {
            self.torn_down = true;
            let out = self.script(&["down"]);
            assert!(
                out.status.success(),
                "netns-cluster.sh down failed: {}",
                text(&out.stderr)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut units = vec![
                ("master".to_string(), "kube-controller-manager"),
                ("master".to_string(), "kube-apiserver"),
                ("master".to_string(), "kube-dns"),
            ];
            for minion in self.minions() {
                for unit in ["kubelet", "kube-proxy", "flanneld"] {
                    units.push((minion.clone(), unit));
                }
            }
            for (host, unit) in units {
                let log = self.host_log(&host, unit);
                let tail: Vec<&str> = log.lines().rev().take(25).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                eprintln!("----- {host} {unit} -----\n{}", tail.join("\n"));
            }
        }
        if !self.torn_down {
            self.torn_down = true;
            let _ = self.script(&["down"]);
        }
    }
}

pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    try_wait_for(timeout, check)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `check` every 250 ms until it gives a value or `timeout` passes.
pub fn try_wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// HTTP GET from the machine itself (outside the cluster, as a user's browser),
/// refusing any address the machine would send through a gateway: test traffic
/// stays on the bridge of the netns cluster.
pub fn http_from_machine(url: &str) -> Option<String> {
    let host = url
        .trim_start_matches("http://")
        .split([':', '/'])
        .next()
        .unwrap_or_default();
    let route = Command::new("ip")
        .args(["route", "get", host])
        .output()
        .expect("ip route get");
    let route = text(&route.stdout);
    assert!(
        !route.contains(" via "),
        "refusing to send to {host}: it is routed through a gateway ({route})"
    );
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "3", url])
        .output()
        .expect("curl");
    out.status.success().then(|| text(&out.stdout))
}

//! Our kube-apiserver binary on free loopback ports against a test etcd.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::etcd::Etcd;
use crate::http::http_get;
use crate::ports::free_port;
use crate::process::ChildGuard;

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Name of the cluster, user and context in [`ApiServer::kubeconfig`].
pub const KUBECONFIG_CONTEXT: &str = "test";

/// A running apiserver; killed on drop, its log printed when a test panics.
pub struct ApiServer {
    // Field order matters: the process dies before its directory is removed.
    process: ChildGuard,
    insecure_port: u16,
    secure_port: u16,
    kubeconfig: PathBuf,
    dir: TempDir,
}

impl ApiServer {
    /// Starts `binary` with
    /// `--etcd-servers=<etcd> --insecure-bind-address=127.0.0.1
    /// --insecure-port=<free> --secure-port=<free> --cert-dir=<temp>
    /// --service-cluster-ip-range=10.254.0.0/16` plus `extra_args`, and waits
    /// until `GET /readyz` on the insecure port answers 200.
    pub fn start(binary: &Path, etcd: &Etcd, extra_args: &[&str]) -> anyhow::Result<ApiServer> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(binary, etcd, extra_args) {
                Ok(server) => return Ok(server),
                Err(err)
                    if format!("{err:#}")
                        .to_lowercase()
                        .contains("address already in use") =>
                {
                    last_error = Some(err)
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("apiserver did not start")))
    }

    fn start_once(binary: &Path, etcd: &Etcd, extra_args: &[&str]) -> anyhow::Result<ApiServer> {
        let dir = tempfile::Builder::new()
            .prefix("kube-apiserver-")
            .tempdir()?;
        let cert_dir = dir.path().join("certs");
        std::fs::create_dir(&cert_dir)?;
        let insecure_port = free_port();
        let secure_port = free_port();

        let mut command = Command::new(binary);
        command
            .arg(format!("--etcd-servers={}", etcd.endpoint()))
            .arg("--insecure-bind-address=127.0.0.1")
            .arg(format!("--insecure-port={insecure_port}"))
            .arg(format!("--secure-port={secure_port}"))
            .arg(format!("--cert-dir={}", cert_dir.display()))
            .arg("--service-cluster-ip-range=10.254.0.0/16")
            .args(extra_args);
        let mut process = ChildGuard::spawn(
            "kube-apiserver",
            command,
            &dir.path().join("kube-apiserver.log"),
        )?;

        let readyz = format!("http://127.0.0.1:{insecure_port}/readyz");
        if let Err(err) = process.wait_ready(READY_TIMEOUT, || {
            http_get(&readyz).is_ok_and(|resp| resp.status == 200)
        }) {
            let log = process.log_tail();
            bail!("{err:#} ({}); kube-apiserver log:\n{log}", binary.display());
        }

        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&format!("http://127.0.0.1:{insecure_port}")),
        )
        .with_context(|| format!("writing {}", kubeconfig.display()))?;
        Ok(ApiServer {
            process,
            insecure_port,
            secure_port,
            kubeconfig,
            dir,
        })
    }

    /// The insecure (plain HTTP) URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.insecure_port)
    }

    pub fn insecure_port(&self) -> u16 {
        self.insecure_port
    }

    pub fn secure_port(&self) -> u16 {
        self.secure_port
    }

    /// A kubeconfig file pointing at [`ApiServer::url`], current context `test`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.kubeconfig.clone()
    }

    /// The server's temp directory (certs/, kubeconfig, kube-apiserver.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id (e.g. to signal it from a test).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Everything the apiserver has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A kubeconfig for an unauthenticated plain-HTTP server.
pub fn kubeconfig_yaml(server_url: &str) -> String {
    let name = KUBECONFIG_CONTEXT;
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server_url}
users:
- name: {name}
  user: {{}}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: default
current-context: {name}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubectl::KUBECTL;

    #[test]
    fn kubeconfig_is_understood_by_kubectl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, kubeconfig_yaml("http://127.0.0.1:12345")).expect("write");
        let out = Command::new(KUBECTL)
            .arg(format!("--kubeconfig={}", path.display()))
            .args([
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server} {.current-context}",
            ])
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "http://127.0.0.1:12345 test"
        );
    }

    /// A stand-in apiserver: busybox httpd serving `readyz` and the received
    /// arguments from the --cert-dir, on the --insecure-port.
    fn fake_apiserver(dir: &Path) -> PathBuf {
        let path = dir.join("fake-apiserver");
        std::fs::write(
            &path,
            r#"#!/bin/sh
for arg in "$@"; do
    case "$arg" in
        --insecure-port=*) port="${arg#*=}" ;;
        --cert-dir=*) root="${arg#*=}" ;;
    esac
done
printf ok > "$root/readyz"
printf '%s\n' "$@" > "$root/args"
exec busybox httpd -f -p "127.0.0.1:$port" -h "$root"
"#,
        )
        .expect("write fake");
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .expect("chmod");
        assert!(status.success());
        path
    }

    #[test]
    fn starts_with_the_documented_flags_and_kubectl_reaches_it() {
        let bin_dir = tempfile::tempdir().expect("tempdir");
        let fake = fake_apiserver(bin_dir.path());
        let etcd = Etcd::start().expect("etcd");
        let server = ApiServer::start(&fake, &etcd, &["--v=2"]).expect("start");

        let args = std::fs::read_to_string(server.dir().join("certs/args")).expect("args");
        let args: Vec<&str> = args.lines().collect();
        let expected = [
            format!("--etcd-servers={}", etcd.endpoint()),
            "--insecure-bind-address=127.0.0.1".to_string(),
            format!("--insecure-port={}", server.insecure_port()),
            format!("--secure-port={}", server.secure_port()),
            format!("--cert-dir={}", server.dir().join("certs").display()),
            "--service-cluster-ip-range=10.254.0.0/16".to_string(),
            "--v=2".to_string(),
        ];
        assert_eq!(args, expected);
        assert_eq!(
            server.url(),
            format!("http://127.0.0.1:{}", server.insecure_port())
        );

        let out = crate::kubectl(&server, &["get", "--raw", "/readyz"]);
        out.assert_success();
        assert_eq!(out.stdout, "ok");

        let port = server.insecure_port();
        drop(server);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "still serving after drop"
        );
    }

    #[test]
    fn a_binary_that_exits_is_an_error_with_its_log() {
        let etcd = Etcd::start().expect("etcd");
        let err = ApiServer::start(Path::new("/bin/false"), &etcd, &[])
            .err()
            .expect("must fail");
        assert!(
            format!("{err:#}").contains("exited with exit status: 1"),
            "{err:#}"
        );
    }
}

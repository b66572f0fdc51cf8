//! A throwaway single-member etcd on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::http::http_get;
use crate::ports::free_port;
use crate::process::ChildGuard;

/// Debian's etcd-server path; `ETCD_BIN` overrides it.
pub const ETCD_BIN: &str = "/usr/bin/etcd";
/// Debian's etcd-client path; `ETCDCTL_BIN` overrides it.
pub const ETCDCTL_BIN: &str = "/usr/bin/etcdctl";

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd with its own data dir; killed and removed on drop.
pub struct Etcd {
    // Field order matters: the process dies before its directory is removed.
    process: ChildGuard,
    client_port: u16,
    dir: TempDir,
}

impl Etcd {
    /// Starts etcd on free 127.0.0.1 ports and waits until `/health` says
    /// healthy. Retries with new ports when the first attempt loses a port race.
    pub fn start() -> anyhow::Result<Etcd> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once() {
                Ok(etcd) => return Ok(etcd),
                Err(err) if format!("{err:#}").contains("address already in use") => {
                    last_error = Some(err)
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("etcd did not start")))
    }

    fn start_once() -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("etcd-").tempdir()?;
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");

        let mut command = Command::new(etcd_bin());
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            // 8 GiB, etcd's recommended maximum: tests that write a lot must not
            // hit the 2 GiB default quota alarm.
            .arg("--quota-backend-bytes=8589934592")
            // Tests do not need durability; fsync dominates write latency.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let mut process = ChildGuard::spawn("etcd", command, &dir.path().join("etcd.log"))?;

        let health_url = format!("{client_url}/health");
        let ready = process.wait_ready(READY_TIMEOUT, || {
            http_get(&health_url)
                .is_ok_and(|resp| resp.status == 200 && resp.body.contains(r#""health":"true""#))
        });
        if let Err(err) = ready {
            let log = process.log_tail();
            bail!("{err:#}; etcd log:\n{log}");
        }
        Ok(Etcd {
            process,
            client_port,
            dir,
        })
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The temp directory holding the data dir and `etcd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id (e.g. to signal it from a test).
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Everything etcd has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Runs `etcdctl --endpoints=<this etcd> args...` (API v3) and returns its
    /// stdout; a non-zero exit is an error carrying stderr.
    pub fn etcdctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(etcdctl_bin())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .output()
            .context("running etcdctl")?;
        if !output.status.success() {
            bail!(
                "etcdctl {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The value stored under `key`, or `None` when the key does not exist.
    /// Values are returned as text (our objects are single-line JSON).
    pub fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        let out = self.etcdctl(&["get", "--", key])?;
        // etcdctl prints "<key>\n<value>\n", or nothing for a missing key.
        Ok(out
            .split_once('\n')
            .map(|(_key, value)| value.strip_suffix('\n').unwrap_or(value).to_string()))
    }

    /// The keys under `prefix`, in etcd's (byte) order.
    pub fn keys(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let out = self.etcdctl(&["get", "--prefix", "--keys-only", "--", prefix])?;
        Ok(out
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from(ETCD_BIN), PathBuf::from)
}

fn etcdctl_bin() -> PathBuf {
    std::env::var_os("ETCDCTL_BIN").map_or_else(|| PathBuf::from(ETCDCTL_BIN), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn starts_serves_and_stops() {
        let etcd = Etcd::start().expect("etcd starts");
        let endpoint = etcd.endpoint();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

        etcd.etcdctl(&["put", "/registry/pods/default/a", r#"{"kind":"Pod"}"#])
            .expect("put");
        etcd.etcdctl(&["put", "/registry/pods/default/b", "second"])
            .expect("put");
        assert_eq!(
            etcd.get("/registry/pods/default/a")
                .expect("get")
                .as_deref(),
            Some(r#"{"kind":"Pod"}"#)
        );
        assert_eq!(
            etcd.get("/registry/pods/default/missing").expect("get"),
            None
        );
        assert_eq!(
            etcd.keys("/registry/pods/").expect("keys"),
            vec!["/registry/pods/default/a", "/registry/pods/default/b"]
        );

        let dir = etcd.dir().to_path_buf();
        let port = etcd.client_port();
        drop(etcd);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "etcd still listening after drop"
        );
        assert!(!dir.exists(), "data dir left behind");
    }

    #[test]
    fn two_instances_are_independent() {
        let first = Etcd::start().expect("first");
        let second = Etcd::start().expect("second");
        assert_ne!(first.endpoint(), second.endpoint());
        first.etcdctl(&["put", "k", "1"]).expect("put");
        assert_eq!(second.get("k").expect("get"), None);
    }

    #[test]
    fn failing_etcdctl_is_an_error() {
        let etcd = Etcd::start().expect("etcd starts");
        let err = etcd.etcdctl(&["no-such-command"]).expect_err("must fail");
        assert!(format!("{err:#}").contains("etcdctl"), "{err:#}");
    }
}

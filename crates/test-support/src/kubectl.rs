//! Running the real upstream kubectl against a test apiserver.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::apiserver::ApiServer;

/// The upstream kubectl (v1.32) on these machines.
pub const KUBECTL: &str = "/usr/bin/kubectl";
/// Where `kubectl.1.27` .. `kubectl.1.33` live.
pub const VERSIONED_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
/// A kubectl still running after this long is killed (e.g. a forgotten `-w`).
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit status and output of one kubectl run. `status` is -1 when kubectl was
/// killed (timeout or signal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Panics with the whole output unless kubectl exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "kubectl failed:\n{self}");
        self
    }

    /// Panics with the whole output if kubectl exited 0.
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "kubectl unexpectedly succeeded:\n{self}");
        self
    }
}

impl fmt::Display for KubectlOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// `/usr/bin/kubectl --kubeconfig <server's kubeconfig> args...`
pub fn kubectl(server: &ApiServer, args: &[&str]) -> KubectlOutput {
    kubectl_with(Path::new(KUBECTL), server, args, None)
}

/// Like [`kubectl`], with `stdin` fed to the process (e.g. `apply -f -`).
pub fn kubectl_stdin(server: &ApiServer, args: &[&str], stdin: &str) -> KubectlOutput {
    kubectl_with(Path::new(KUBECTL), server, args, Some(stdin))
}

/// Like [`kubectl`], with extra environment variables (e.g. `EDITOR` for `kubectl edit`).
pub fn kubectl_env(server: &ApiServer, args: &[&str], env: &[(&str, &str)]) -> KubectlOutput {
    run_kubectl(Path::new(KUBECTL), server, args, None, env)
}

/// Runs a given kubectl binary (e.g. one of [`versioned_kubectls`]).
pub fn kubectl_with(
    binary: &Path,
    server: &ApiServer,
    args: &[&str],
    stdin: Option<&str>,
) -> KubectlOutput {
    run_kubectl(binary, server, args, stdin, &[])
}

/// Each server gets its own discovery cache (`KUBECACHEDIR` in its temp dir),
/// so a port reused by a later server never sees stale discovery. Panics when
/// the binary cannot be started: that is a broken test machine, not a result.
fn run_kubectl(
    binary: &Path,
    server: &ApiServer,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> KubectlOutput {
    run_kubectl_conf(
        binary,
        &server.kubeconfig(),
        &server.dir().join("kubectl-cache"),
        args,
        stdin,
        env,
    )
}

/// The upstream kubectl with any kubeconfig (e.g. a client certificate's or a
/// token's) and discovery cache directory.
pub fn kubectl_kubeconfig(
    kubeconfig: &Path,
    cache_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> KubectlOutput {
    run_kubectl_conf(Path::new(KUBECTL), kubeconfig, cache_dir, args, stdin, &[])
}

/// [`kubectl_kubeconfig`] with another kubectl binary (e.g. ours).
pub fn kubectl_binary_kubeconfig(
    binary: &Path,
    kubeconfig: &Path,
    cache_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> KubectlOutput {
    run_kubectl_conf(binary, kubeconfig, cache_dir, args, stdin, &[])
}

fn run_kubectl_conf(
    binary: &Path,
    kubeconfig: &Path,
    cache_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> KubectlOutput {
    let mut command = Command::new(binary);
    command
        .env_remove("KUBECONFIG")
        .env("KUBECACHEDIR", cache_dir)
        .envs(env.iter().copied())
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args);
    run_with_timeout(command, stdin, KUBECTL_TIMEOUT)
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()))
}

/// The versioned upstream kubectls present on this machine, oldest first, as
/// `("1.27", path)`.
pub fn versioned_kubectls() -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(VERSIONED_KUBECTL_DIR) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32), String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("kubectl.")?.to_string();
            let (major, minor) = version.split_once('.')?;
            let key = (major.parse().ok()?, minor.parse().ok()?);
            Some((key, version, entry.path()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, version, path)| (version, path))
        .collect()
}

fn run_with_timeout(
    mut command: Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> std::io::Result<KubectlOutput> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    // Separate threads for each pipe, so a full pipe never blocks the child.
    let writer = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(input)) => {
            let input = input.to_string();
            // A child that exits without reading gives EPIPE; that is its business.
            Some(thread::spawn(move || {
                drop(pipe.write_all(input.as_bytes()))
            }))
        }
        _ => None,
    };
    let stdout = child.stdout.take().map(read_all_in_thread);
    let stderr = child.stderr.take().map(read_all_in_thread);

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // Already exited is the only error; wait() below reaps either way.
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = stdout.map(join_output).unwrap_or_default();
    let mut stderr = stderr.map(join_output).unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!(
            "\n[test-support: kubectl killed after {timeout:?}]\n"
        ));
    }
    Ok(KubectlOutput {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}

fn read_all_in_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error ends the output early; what was read is still useful.
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join_output(handle: thread::JoinHandle<Vec<u8>>) -> String {
    handle
        .join()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn captures_status_stdout_stderr_and_stdin() {
        let out = run_with_timeout(
            sh("cat; echo err >&2; exit 7"),
            Some("hello\n"),
            Duration::from_secs(10),
        )
        .expect("run");
        assert_eq!(
            out,
            KubectlOutput {
                status: 7,
                stdout: "hello\n".into(),
                stderr: "err\n".into()
            }
        );
        assert!(!out.success());
    }

    #[test]
    fn large_output_does_not_deadlock() {
        let out = run_with_timeout(
            sh("head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2"),
            None,
            Duration::from_secs(10),
        )
        .expect("run");
        assert_eq!(
            (out.status, out.stdout.len(), out.stderr.len()),
            (0, 1_000_000, 1_000_000)
        );
    }

    #[test]
    fn hanging_command_is_killed() {
        let started = Instant::now();
        let out = run_with_timeout(
            sh("echo partial; exec sleep 600"),
            None,
            Duration::from_millis(300),
        )
        .expect("run");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.status, -1);
        assert_eq!(out.stdout, "partial\n");
        assert!(out.stderr.contains("killed after"), "{}", out.stderr);
    }

    #[test]
    fn finds_the_versioned_kubectls() {
        let found = versioned_kubectls();
        if !Path::new(VERSIONED_KUBECTL_DIR)
            .join("kubectl.1.27")
            .exists()
        {
            return; // not a machine with google-cloud-sdk's kubectls
        }
        let versions: Vec<&str> = found.iter().map(|(v, _)| v.as_str()).collect();
        assert!(versions.starts_with(&["1.27", "1.28"]), "{versions:?}");
        assert!(found
            .iter()
            .all(|(v, p)| p.ends_with(format!("kubectl.{v}"))));
    }
}

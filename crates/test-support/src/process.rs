//! A child process that is killed and reaped on drop, with its output in a log
//! file that is shown when a test fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How much of a log to show when a test fails.
const LOG_TAIL_BYTES: usize = 16 * 1024;

pub(crate) struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` with stdout and stderr appended to `log_path`.
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        log_path: &Path,
    ) -> anyhow::Result<ChildGuard> {
        let log =
            File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child,
            log_path: log_path.to_path_buf(),
        })
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn log_tail(&self) -> String {
        let log = self.log();
        let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_string()
    }

    /// Whether the process has exited (and reaps it if so).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `ready` until it returns true, the process exits, or `timeout`.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!("{} exited with {status} before it was ready", self.name);
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} not ready after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} log ({}), last {} bytes -----\n{}\n----- end of {} log -----",
                self.name,
                self.log_path.display(),
                LOG_TAIL_BYTES,
                self.log_tail(),
                self.name
            );
        }
        // Errors mean the process is already gone; nothing else to do.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn killed_and_reaped_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("sleep.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 600"]);
        let mut guard = ChildGuard::spawn("sleep", cmd, &log).expect("spawn");
        let pid = guard.id();
        guard
            .wait_ready(Duration::from_secs(5), || {
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started"))
            })
            .expect("ready");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(guard);
        // Reaped: not even a zombie is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn early_exit_is_reported_with_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let mut guard =
            ChildGuard::spawn("failing", cmd, &dir.path().join("f.log")).expect("spawn");
        let err = guard
            .wait_ready(Duration::from_secs(5), || false)
            .expect_err("must fail");
        assert!(
            err.to_string().contains("exited with exit status: 3"),
            "{err}"
        );
        assert_eq!(guard.log_tail(), "boom\n");
    }
}

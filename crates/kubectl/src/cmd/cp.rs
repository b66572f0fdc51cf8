//! `kubectl cp [NAMESPACE/]POD:PATH LOCAL` and `kubectl cp LOCAL [NAMESPACE/]POD:PATH`:
//! a tar stream through `exec`, as upstream's `cp.go`.
//!
//! Download runs `tar cf - PATH` in the container and unpacks locally, stripping
//! the remote path (entries outside it are refused). Upload packs locally (entry
//! names relative to the destination's directory) and extracts remotely. Upstream
//! ends the remote `tar x` by closing stdin; only `v5.channel.k8s.io` can say
//! that over WebSocket and containerd speaks v4, so the archive's exact size goes
//! with it instead: `sh -c 'head -c SIZE | tar -xmf - -C DIR'` ends on its own
//! whatever the protocol.

use std::path::{Component, Path, PathBuf};

use crate::cmd::exec::{exec_with, pick_container, LocalStreams, Outcome};
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Source: a local path or [NAMESPACE/]POD:PATH.
    pub src: String,
    /// Destination: a local path or [NAMESPACE/]POD:PATH.
    pub dest: String,
    /// Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// The copied file/directory's ownership and permissions will not be preserved in the container
    #[arg(long)]
    pub no_preserve: bool,
    /// Set number of retries to complete a copy operation from a container.
    #[arg(long, default_value_t = 0)]
    pub retries: i32,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq)]
enum FileSpec {
    Local(String),
    Remote {
        namespace: Option<String>,
        pod: String,
        path: String,
    },
}

/// Upstream's `extractFileSpec`: `POD:PATH` or `NAMESPACE/POD:PATH` is remote.
fn parse_spec(arg: &str) -> Result<FileSpec> {
    let Some((pod_part, path)) = arg.split_once(':') else {
        return Ok(FileSpec::Local(arg.to_string()));
    };
    if pod_part.is_empty() {
        return Err(Error::usage(
            "filespec must match the canonical format: [[namespace/]pod:]file/path",
        ));
    }
    match pod_part.split_once('/') {
        None => Ok(FileSpec::Remote {
            namespace: None,
            pod: pod_part.into(),
            path: path.into(),
        }),
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => {
            Ok(FileSpec::Remote {
                namespace: Some(ns.into()),
                pod: pod.into(),
                path: path.into(),
            })
        }
        Some(_) => Err(Error::usage(
            "filespec must match the canonical format: [[namespace/]pod:]file/path",
        )),
    }
}

/// Path cleaning as Go's `path.Clean` for remote (slash) paths.
fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The prefix tar puts on entries of `src`: no leading `/`, no `../` shortcuts
/// (upstream `stripPathShortcuts(StripSlashes(Clean(src)))`).
fn strip_prefix(src: &str) -> String {
    let cleaned = clean(src);
    let mut rest = cleaned.trim_start_matches('/');
    loop {
        if let Some(r) = rest.strip_prefix("../") {
            rest = r;
        } else if rest == ".." || rest == "." {
            return String::new();
        } else {
            return rest.to_string();
        }
    }
}

/// `dest` joined with a remote relative name, or None when it would leave `dest`.
fn local_target(dest: &Path, relative: &str) -> Option<PathBuf> {
    let mut out = dest.to_path_buf();
    for part in Path::new(relative.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpacks a tar stream of `src` (as `tar cf - src` wrote it) into `dest`.
fn untar(archive: &[u8], prefix: &str, dest: &Path) -> Result<()> {
    let mut reader = tar::Archive::new(archive);
    for entry in reader.entries()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(relative) = name.strip_prefix(prefix) else {
            return Err(Error::usage("tar contents corrupted"));
        };
        let Some(target) = local_target(dest, relative) else {
            eprintln!(
                "warning: file {:?} is outside target destination, skipping",
                dest.join(relative)
            );
            continue;
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()?
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            eprintln!(
                "warning: skipping symlink: {:?} -> {link:?}",
                target.display().to_string()
            );
        } else if kind.is_file() {
            let mut file = std::fs::File::create(&target)?;
            std::io::copy(&mut entry, &mut file)?;
        }
    }
    Ok(())
}

/// Packs `src` under the name `name` (a file, or a directory recursively).
fn make_tar(src: &Path, name: &str) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let meta = std::fs::metadata(src)?;
    if meta.is_dir() {
        builder.append_dir_all(name, src)?;
    } else {
        builder.append_path_with_name(src, name)?;
    }
    Ok(builder.into_inner()?)
}

/// The last element of a slash path (`path.Base`).
fn base(path: &str) -> String {
    let cleaned = clean(path);
    cleaned
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty())
        .unwrap_or("/")
        .to_string()
}

/// The directory of a slash path (`path.Dir`).
fn dir(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => cleaned[..i].into(),
        None => ".".into(),
    }
}

struct Remote<'a> {
    ctx: &'a Context,
    namespace: String,
    pod: String,
    container: String,
}

impl Remote<'_> {
    async fn exec(&self, command: &[&str], local: LocalStreams<'_>) -> Result<Outcome> {
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        exec_with(
            self.ctx,
            &self.namespace,
            &self.pod,
            &self.container,
            &command,
            local,
        )
        .await
    }
}

pub async fn run(ctx: &Context, args: CpArgs) -> Result<()> {
    let src = parse_spec(&args.src)?;
    let dest = parse_spec(&args.dest)?;
    let remote_of = |spec: &FileSpec| match spec {
        FileSpec::Remote { namespace, pod, .. } => Some((namespace.clone(), pod.clone())),
        FileSpec::Local(_) => None,
    };
    let (namespace, pod) = match (remote_of(&src), remote_of(&dest)) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "one of src or dest must be a local file specification",
            ))
        }
        (None, None) => {
            return Err(Error::usage(
                "one of src or dest must be a remote file specification",
            ))
        }
        (Some(r), None) | (None, Some(r)) => r,
    };
    let namespace = namespace.unwrap_or_else(|| ctx.namespace());
    let pod_obj = ctx
        .client()
        .await?
        .get(&format!("/api/v1/namespaces/{namespace}/pods/{pod}"))
        .await?;
    let container = pick_container(&pod_obj, args.container.as_deref(), false)?;
    let remote = Remote {
        ctx,
        namespace,
        pod,
        container,
    };
    match (src, dest) {
        (FileSpec::Remote { path, .. }, FileSpec::Local(local)) => {
            copy_from_pod(&remote, &path, &local).await
        }
        (FileSpec::Local(local), FileSpec::Remote { path, .. }) => {
            copy_to_pod(&remote, &local, &path, args.no_preserve).await
        }
        _ => Ok(()),
    }
}

async fn copy_from_pod(remote: &Remote<'_>, src: &str, dest: &str) -> Result<()> {
    if src.is_empty() || dest.is_empty() {
        return Err(Error::usage("filepath can not be empty"));
    }
    let mut archive = Vec::new();
    let outcome = remote
        .exec(
            &["tar", "cf", "-", src],
            LocalStreams {
                stdout: Some(Box::new(&mut archive)),
                stderr: Some(Box::new(tokio::io::stderr())),
                ..Default::default()
            },
        )
        .await?;
    match outcome {
        Outcome::Exited(0) => {}
        Outcome::Exited(code) => {
            return Err(Error::usage(format!(
                "command terminated with exit code {code}"
            )))
        }
        Outcome::Failed(message) => return Err(Error::usage(message)),
    }
    untar(&archive, &strip_prefix(src), Path::new(dest))
}

async fn copy_to_pod(remote: &Remote<'_>, src: &str, dest: &str, no_preserve: bool) -> Result<()> {
    if src.is_empty() || dest.is_empty() {
        return Err(Error::usage("filepath can not be empty"));
    }
    let local = Path::new(src);
    if !local.exists() {
        return Err(Error::usage(format!(
            "{src} doesn't exist in local filesystem"
        )));
    }
    let mut dest = clean(dest);
    // An existing remote directory receives the source under its own name.
    let quiet = LocalStreams {
        stdout: Some(Box::new(tokio::io::sink())),
        stderr: Some(Box::new(tokio::io::sink())),
        ..Default::default()
    };
    if let Ok(Outcome::Exited(0)) = remote.exec(&["test", "-d", &dest], quiet).await {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        dest = clean(&format!("{dest}/{name}"));
    }
    let archive = make_tar(local, &base(&dest))?;
    let tar_flags = if no_preserve {
        "--no-same-permissions --no-same-owner -xmf -"
    } else {
        "-xmf -"
    };
    let script = format!("head -c {} | tar {tar_flags} -C \"$0\"", archive.len());
    let target_dir = dir(&dest);
    let outcome = remote
        .exec(
            &["sh", "-c", &script, &target_dir],
            LocalStreams {
                stdin: Some(Box::new(archive.as_slice())),
                stdout: Some(Box::new(tokio::io::stdout())),
                stderr: Some(Box::new(tokio::io::stderr())),
                resizes: None,
            },
        )
        .await?;
    match outcome {
        Outcome::Exited(0) => Ok(()),
        Outcome::Exited(code) => Err(Error::usage(format!(
            "command terminated with exit code {code}"
        ))),
        Outcome::Failed(message) => Err(Error::usage(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs_as_upstream() {
        assert_eq!(
            parse_spec("/tmp/x").expect("local"),
            FileSpec::Local("/tmp/x".into())
        );
        assert_eq!(
            parse_spec("web:/tmp/x").expect("remote"),
            FileSpec::Remote {
                namespace: None,
                pod: "web".into(),
                path: "/tmp/x".into()
            }
        );
        assert_eq!(
            parse_spec("ns/web:tmp").expect("namespaced"),
            FileSpec::Remote {
                namespace: Some("ns".into()),
                pod: "web".into(),
                path: "tmp".into()
            }
        );
        assert!(parse_spec(":x").is_err());
        assert!(parse_spec("a/b/c:x").is_err());
    }

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean("/tmp//a/./b/../c/"), "/tmp/a/c");
        assert_eq!(clean("../../x"), "../../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(strip_prefix("/tmp/dir/"), "tmp/dir");
        assert_eq!(strip_prefix("../../etc"), "etc");
        assert_eq!(base("/tmp/a/"), "a");
        assert_eq!(dir("/tmp/a"), "/tmp");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a"), ".");
        assert_eq!(
            local_target(Path::new("out"), "/x/y"),
            Some(PathBuf::from("out/x/y"))
        );
        assert_eq!(local_target(Path::new("out"), "/../y"), None);
    }

    #[test]
    fn tar_round_trip_strips_the_remote_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("a.txt"), "alpha").expect("write");
        std::fs::write(src.join("sub/b.txt"), "beta").expect("write");
        // As `tar cf - /tmp/src` in the container names them.
        let archive = make_tar(&src, "tmp/src").expect("tar");
        let out = dir.path().join("out");
        untar(&archive, "tmp/src", &out).expect("untar");
        assert_eq!(
            std::fs::read_to_string(out.join("a.txt")).expect("a"),
            "alpha"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("sub/b.txt")).expect("b"),
            "beta"
        );
        assert!(
            untar(&archive, "elsewhere", &out).is_err(),
            "entries outside the prefix are refused"
        );
    }
}

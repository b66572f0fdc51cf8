//! Upstream's `AtomicWriter` (`pkg/volume/util/atomic_writer.go`): a volume's
//! files live in a timestamped directory `..2026_11_22_08_20_01.<random>`, the
//! `..data` symlink points at it and each top-level path is a symlink through
//! `..data`. An update writes a new timestamped directory, swaps `..data` with
//! one `rename` and removes the old directory, so readers see either the old or
//! the new set of files, never a mix.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use tracing::debug;

/// The symlink to the current payload directory.
pub const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";

/// One file of a volume: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid path {0:?} in volume payload")]
    InvalidPath(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Upstream's `validatePath`: relative, no `..` element, not starting with `..`.
fn validate(path: &str) -> Result<(), WriteError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.starts_with("..")
        || path.split('/').any(|p| p == ".." || p.is_empty());
    if bad {
        return Err(WriteError::InvalidPath(path.to_string()));
    }
    Ok(())
}

/// The payload currently visible through `..data` (`None` when there is none).
fn current(dir: &Path) -> Option<Payload> {
    let data = dir.join(DATA_DIR);
    std::fs::symlink_metadata(&data).ok()?;
    let mut payload = Payload::new();
    let mut stack = vec![(data.clone(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&path).ok()? {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                let data = std::fs::read(entry.path()).ok()?;
                payload.insert(
                    rel,
                    FileProjection {
                        data,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
    }
    Some(payload)
}

/// The top-level names a payload makes visible (`a/b` shows as `a`).
fn top_level(payload: &Payload) -> Vec<String> {
    let mut names: Vec<String> = payload
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    names.dedup();
    names
}

/// A fresh `..YYYY_MM_DD_HH_MM_SS.<n>` directory inside `dir`.
fn new_ts_dir(dir: &Path) -> Result<PathBuf, WriteError> {
    let stamp = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.")
        .to_string();
    let mut n = chrono::Utc::now().timestamp_subsec_nanos();
    loop {
        let path = dir.join(format!("{stamp}{n}"));
        match std::fs::create_dir(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&path))?;
                return Ok(path);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => n = n.wrapping_add(1),
            Err(err) => return Err(io(&path)(err)),
        }
    }
}

/// Makes `dir` show exactly `payload`; returns whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> Result<bool, WriteError> {
    for path in payload.keys() {
        validate(path)?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let old = current(dir);
    if old.as_ref() == Some(payload) {
        return Ok(false);
    }
    let old_target = std::fs::read_link(dir.join(DATA_DIR)).ok();

    // 1. The new payload in a new timestamped directory.
    let ts_dir = new_ts_dir(dir)?;
    for (rel, file) in payload {
        let path = ts_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &file.data).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io(&path))?;
    }
    // 2. `..data_tmp` → new directory, renamed over `..data` (atomic).
    let ts_name = ts_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let tmp = dir.join(DATA_DIR_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&ts_name, &tmp).map_err(io(&tmp))?;
    let data = dir.join(DATA_DIR);
    std::fs::rename(&tmp, &data).map_err(io(&data))?;
    // 3. User-visible symlinks for new names, removal of vanished ones.
    let wanted = top_level(payload);
    for name in &wanted {
        let link = dir.join(name);
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => continue,
            // Plain files of a volume written before this layout.
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&link).map_err(io(&link))?,
            Ok(_) => std::fs::remove_file(&link).map_err(io(&link))?,
            Err(_) => {}
        }
        symlink(Path::new(DATA_DIR).join(name), &link).map_err(io(&link))?;
    }
    if let Some(old) = &old {
        for name in top_level(old).into_iter().filter(|n| !wanted.contains(n)) {
            let link = dir.join(&name);
            std::fs::remove_file(&link).map_err(io(&link))?;
        }
    }
    // 4. The old payload directory.
    if let Some(old_target) = old_target {
        let old_dir = dir.join(old_target);
        if old_dir != ts_dir {
            std::fs::remove_dir_all(&old_dir).map_err(io(&old_dir))?;
        }
    }
    debug!(dir = %dir.display(), files = payload.len(), "volume payload written");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn updates_swap_the_data_link_and_keep_symlinks_consistent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("vol");
        let first = Payload::from([
            ("a".into(), file("1", 0o644)),
            ("sub/b".into(), file("2", 0o600)),
        ]);
        assert!(write(&dir, &first).expect("write"));
        let target = std::fs::read_link(dir.join(DATA_DIR)).expect("..data link");
        assert!(
            target.to_string_lossy().starts_with("..20"),
            "{}",
            target.display()
        );
        assert_eq!(
            std::fs::read_link(dir.join("a")).expect("a link"),
            Path::new("..data/a")
        );
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).expect("b"), "2");
        assert_eq!(
            std::fs::metadata(dir.join("sub/b"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        // Same payload: nothing written.
        assert!(!write(&dir, &first).expect("rewrite"));
        assert_eq!(
            std::fs::read_link(dir.join(DATA_DIR)).expect("link"),
            target
        );

        let second = Payload::from([
            ("a".into(), file("changed", 0o644)),
            ("c".into(), file("3", 0o644)),
        ]);
        assert!(write(&dir, &second).expect("update"));
        assert_eq!(
            std::fs::read_to_string(dir.join("a")).expect("a"),
            "changed"
        );
        assert_eq!(std::fs::read_to_string(dir.join("c")).expect("c"), "3");
        assert!(
            std::fs::symlink_metadata(dir.join("sub")).is_err(),
            "vanished key still visible"
        );
        assert!(!dir.join(&target).exists(), "old payload directory kept");
        let entries: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries.len(), 4, "{entries:?}"); // ..data, ..<ts>, a, c
        assert!(write(&dir, &Payload::from([("../x".into(), file("", 0o644))])).is_err());

        // A plain file left by an older layout is replaced by the symlink.
        let old = tmp.path().join("old");
        std::fs::create_dir_all(&old).expect("mkdir");
        std::fs::write(old.join("a"), "stale").expect("write");
        assert!(write(&old, &second).expect("write over plain files"));
        assert_eq!(
            std::fs::read_link(old.join("a")).expect("a link"),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_to_string(old.join("a")).expect("a"),
            "changed"
        );
    }
}

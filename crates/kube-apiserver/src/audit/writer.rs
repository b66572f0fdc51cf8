//! The audit log writer task: JSON lines to a file (size-based rotation with
//! `--audit-log-maxsize` / `--audit-log-maxbackup`) or to standard output (`-`).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use tokio::sync::mpsc::Receiver;

pub enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: std::io::BufWriter<std::fs::File>,
        size: u64,
        max_size: u64,
        max_backups: u64,
    },
}

fn open_append(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl Sink {
    /// `-` is standard output; anything else a file opened for appending.
    pub fn open(path: &str, max_size_mb: u64, max_backups: u64) -> anyhow::Result<Sink> {
        if path == "-" {
            return Ok(Sink::Stdout);
        }
        let path = PathBuf::from(path);
        let (file, size) = open_append(&path)
            .map_err(|e| anyhow::anyhow!("opening the audit log {}: {e}", path.display()))?;
        Ok(Sink::File {
            path,
            file: std::io::BufWriter::new(file),
            size,
            max_size: max_size_mb * 1024 * 1024,
            max_backups,
        })
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
            Sink::File { file, size, .. } => {
                file.write_all(line.as_bytes())?;
                file.write_all(b"\n")?;
                *size += line.len() as u64 + 1;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout => std::io::stdout().lock().flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }

    /// Rotates to `<name>-<timestamp>.<ext>` (lumberjack's naming) when over the limit.
    fn maybe_rotate(&mut self) -> std::io::Result<()> {
        let Sink::File {
            path,
            file,
            size,
            max_size,
            max_backups,
        } = self
        else {
            return Ok(());
        };
        if *max_size == 0 || *size < *max_size {
            return Ok(());
        }
        file.flush()?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S%.3f");
        let backup = path.with_file_name(format!("{stem}-{stamp}{ext}"));
        std::fs::rename(&*path, &backup)?;
        let (f, s) = open_append(path)?;
        *file = std::io::BufWriter::new(f);
        *size = s;
        if *max_backups > 0 {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let prefix = format!("{stem}-");
            let mut backups: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                        && p.as_path() != path.as_path()
                })
                .collect();
            backups.sort();
            while backups.len() as u64 > *max_backups {
                let old = backups.remove(0);
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(())
    }
}

/// Writes every received line, flushing after each burst.
pub async fn run(mut sink: Sink, mut rx: Receiver<String>) {
    while let Some(line) = rx.recv().await {
        let mut batch = vec![line];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 512 {
                break;
            }
        }
        // Buffered writes and one flush per burst: cheap enough to do in place.
        let result = (|| -> std::io::Result<()> {
            for l in &batch {
                sink.write_line(l)?;
                sink.maybe_rotate()?;
            }
            sink.flush()
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "writing the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rotates_by_size_and_keeps_max_backups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let sink = Sink::open(&path.display().to_string(), 1, 1).expect("open");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let writer = tokio::spawn(run(sink, rx));
        let line = "x".repeat(1023);
        for _ in 0..2600 {
            tx.send(line.clone()).await.expect("send");
        }
        drop(tx);
        writer.await.expect("writer");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"audit.log".to_string()), "{names:?}");
        let backups = names
            .iter()
            .filter(|n| n.starts_with("audit-") && n.ends_with(".log"))
            .count();
        assert_eq!(backups, 1, "{names:?}");
        let current = std::fs::metadata(&path).expect("meta").len();
        assert!(current < 1024 * 1024, "{current}");
    }
}

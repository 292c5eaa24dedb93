//! cijob's store of artifacts and caches, outside the working tree so that runs never touch
//! the user's files: `$CIJOB_STORE_DIR`, else `$XDG_CACHE_HOME/cijob/projects`, else
//! `~/.cache/cijob/projects`; one folder per project (its slug and a hash of its path), with
//! `artifacts/<job>/` (the last run's `artifacts.tar` and `meta.json`) and
//! `cache/<key>/cache.tar`. Writes land in a temporary name first and are renamed into place,
//! so an interrupted run never leaves half an archive behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::artifacts::Stored;
use crate::project::git::iso8601_utc;
use crate::project::name_rules::path_component;

pub const ARCHIVE: &str = "artifacts.tar";
const META: &str = "meta.json";

/// The store's root folder, from the environment.
pub fn root() -> Option<PathBuf> {
    crate::cache_home::dir("CIJOB_STORE_DIR", "projects")
}

/// The project's folder: readable (the project's slug) and unique (a hash of its path, so
/// two clones of one project keep their artifacts apart).
pub fn project_dir(root: &Path, project_root: &Path, slug: &str) -> PathBuf {
    let canonical = project_root
        .canonicalize()
        .unwrap_or_else(|_| project_root.to_path_buf());
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        canonical.to_string_lossy().as_bytes(),
    );
    let short = crate::hex::encode(&digest.as_ref()[..6]);
    root.join(format!("{}-{short}", path_component(slug)))
}

/// What is kept beside a job's archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub job: String,
    /// Unix seconds.
    pub finished_at: i64,
    /// `success` or `failed`.
    pub status: String,
    pub files: u64,
    pub size: u64,
    pub dotenv: Vec<(String, String)>,
    pub masked: Vec<String>,
}

impl Meta {
    pub fn finished(&self) -> String {
        let iso = iso8601_utc(self.finished_at);
        // `2026-12-03T14:02:11Z` → `2026-12-03 14:02 UTC`
        format!("{} {} UTC", &iso[..10], &iso[11..16])
    }
}

/// The last run of a job, if the store has one.
pub fn read(dir: &Path) -> Option<(Meta, Option<PathBuf>)> {
    let text = std::fs::read(dir.join(META)).ok()?;
    let meta: Meta = serde_json::from_slice(&text).ok()?;
    let archive = dir.join(ARCHIVE);
    let archive = archive.is_file().then_some(archive);
    Some((meta, archive))
}

/// `read` as the plan takes it.
pub fn stored(dir: &Path) -> Option<Stored> {
    let (meta, archive) = read(dir)?;
    Some(Stored {
        archive,
        finished: meta.finished(),
        files: meta.files,
        size: meta.size,
        dotenv: meta.dotenv,
        masked: meta.masked,
    })
}

/// Replace a job's stored run with the one prepared in `staged` (a folder holding the
/// archive, if any): the meta is written there, then the folder renamed into place.
pub fn commit(staged: &Path, dir: &Path, meta: &Meta) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    std::fs::write(staged.join(META), json)?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::rename(staged, dir)
}

/// A private folder for one run's work in progress, beside what it will replace (same
/// file system, so the final rename is atomic).
pub fn staging(project: &Path, run_id: &str, what: &str) -> std::io::Result<PathBuf> {
    let staging = project.join(".staging");
    sweep(&staging, STALE);
    let dir = staging.join(format!("{run_id}-{what}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Work in progress older than this was left by a run that was killed.
const STALE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Remove what killed runs left in the staging folder (best effort).
fn sweep(staging: &Path, older_than: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Put a finished file in place (write-then-rename).
pub fn place(file: &Path, dest: &Path) -> std::io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(file, dest)
}

/// Unpack a stored archive into `dest` (created if missing); the number of files. The tar
/// crate refuses entries that would land outside `dest`.
pub fn unpack(archive: &Path, dest: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dest)?;
    let mut count = 0;
    let mut tar = tar::Archive::new(std::fs::File::open(archive)?);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_dir() {
            count += 1;
        }
        entry.unpack_in(dest)?;
    }
    Ok(count)
}

/// `cijob artifacts JOB`: the run, its files with their sizes, its dotenv variables (masked
/// ones hidden).
pub fn listing(meta: &Meta, archive: Option<&Path>) -> std::io::Result<String> {
    let mut s = format!(
        "{} (local run {}, {}): {} files, {}\n",
        meta.job,
        meta.finished(),
        meta.status,
        meta.files,
        human_size(meta.size)
    );
    if let Some(archive) = archive {
        let mut tar = tar::Archive::new(std::fs::File::open(archive)?);
        for entry in tar.entries()? {
            let entry = entry?;
            if entry.header().entry_type().is_dir() {
                continue;
            }
            s.push_str(&format!(
                "  {:>10}  {}\n",
                human_size(entry.size()),
                entry.path()?.display()
            ));
        }
    }
    for (k, v) in &meta.dotenv {
        let v = if meta.masked.contains(k) {
            "[MASKED]"
        } else {
            v
        };
        s.push_str(&format!("  dotenv  {k}={v}\n"));
    }
    Ok(s)
}

/// `1.5 KiB`, `12 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Remove a folder of the store (`artifacts` or `cache`) for the project; whether there
/// was one.
pub fn remove(project: &Path, what: &str) -> std::io::Result<bool> {
    match std::fs::remove_dir_all(project.join(what)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_run_replaces_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let project = project_dir(tmp.path(), tmp.path(), "group-app");
        assert!(project
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("group-app-"));
        let dir = project.join("artifacts").join("build");
        let mut meta = Meta {
            job: "build".into(),
            finished_at: 1_796_306_520,
            status: "success".into(),
            files: 1,
            size: 3,
            dotenv: vec![("V".into(), "1".into())],
            masked: vec![],
        };
        let staged = staging(&project, "r1", "artifacts").unwrap();
        std::fs::write(staged.join(ARCHIVE), b"tar").unwrap();
        commit(&staged, &dir, &meta).unwrap();
        let s = stored(&dir).unwrap();
        assert_eq!(s.archive, Some(dir.join(ARCHIVE)));
        assert_eq!(s.dotenv, meta.dotenv);
        assert_eq!(s.finished, "2026-12-03 14:02 UTC");

        // The next run had no files: the old archive must not linger.
        meta.files = 0;
        let staged = staging(&project, "r2", "artifacts").unwrap();
        commit(&staged, &dir, &meta).unwrap();
        assert_eq!(stored(&dir).unwrap().archive, None);
        assert!(!staged.exists());

        // A killed run's work in progress is swept once stale, never a live one's.
        let left = staging(&project, "killed", "cache").unwrap();
        sweep(
            &project.join(".staging"),
            std::time::Duration::from_secs(3600),
        );
        assert!(left.exists());
        sweep(&project.join(".staging"), std::time::Duration::ZERO);
        assert!(!left.exists());

        assert!(remove(&project, "artifacts").unwrap());
        assert!(stored(&dir).is_none());
        assert!(!remove(&project, "artifacts").unwrap());
    }

    #[test]
    fn sizes_read_like_the_runner_prints_them() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}

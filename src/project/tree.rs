//! The tree the job must see, as it is on disk now: the project's files (tracked plus
//! untracked-not-ignored, from `git`), everything under `.git`, and the directories that
//! hold them, each with what tells a change without reading the file (like git's index).

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// What an entry is in the job's project dir (modes follow the runner's `umask 0000` clone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A file, mode 0666.
    File,
    /// An executable file, mode 0777.
    Exec,
    Symlink,
    /// A directory, mode 0777.
    Dir,
}

/// The host's stat fields that change whenever a file's content may have (git's index uses
/// the same ones): when they are unchanged, the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key {
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub ino: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated, as the volume's listing spells it.
    pub path: String,
    /// The same path on the host.
    pub rel: PathBuf,
    pub want: Want,
    pub key: Key,
}

/// `files` (relative to `root`) that still exist, `.git`'s files, and every directory on
/// the way to them, sorted by path (parents first).
pub fn scan(root: &Path, files: &[PathBuf]) -> std::io::Result<Vec<Entry>> {
    let mut rels: Vec<PathBuf> = files.to_vec();
    let git = root.join(".git");
    if git.symlink_metadata().is_ok() {
        for entry in WalkDir::new(&git).follow_links(false) {
            let entry = entry.map_err(std::io::Error::other)?;
            if let Ok(rel) = entry.path().strip_prefix(root) {
                rels.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::with_capacity(rels.len());
    let mut dirs = std::collections::BTreeSet::new();
    for rel in rels {
        let Ok(meta) = std::fs::symlink_metadata(root.join(&rel)) else {
            // Listed by git but gone from disk (deleted, not yet committed).
            continue;
        };
        for anc in rel.ancestors().skip(1) {
            if anc.as_os_str().is_empty() || !dirs.insert(anc.to_path_buf()) {
                break;
            }
        }
        let want = if meta.file_type().is_symlink() {
            Want::Symlink
        } else if meta.is_dir() {
            dirs.insert(rel);
            continue;
        } else if meta.is_file() {
            if is_executable(&meta) {
                Want::Exec
            } else {
                Want::File
            }
        } else {
            // Sockets, fifos and devices are not part of a tree git would check out.
            continue;
        };
        out.push(Entry {
            path: slashed(&rel),
            rel,
            want,
            key: key(&meta),
        });
    }
    out.extend(dirs.into_iter().map(|rel| Entry {
        path: slashed(&rel),
        rel,
        want: Want::Dir,
        key: Key::default(),
    }));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

pub fn slashed(rel: &Path) -> String {
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

#[cfg(unix)]
pub fn key(meta: &std::fs::Metadata) -> Key {
    use std::os::unix::fs::MetadataExt;
    Key {
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec(),
        ino: meta.ino(),
        size: meta.len(),
    }
}

#[cfg(not(unix))]
pub fn key(meta: &std::fs::Metadata) -> Key {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    Key {
        mtime: mtime.as_secs() as i64,
        mtime_nsec: i64::from(mtime.subsec_nanos()),
        size: meta.len(),
        ..Key::default()
    }
}

#[cfg(unix)]
pub fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_git_and_their_directories() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join("a/b/c.txt"), "c").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = root.join("run.sh");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::symlink("run.sh", root.join("link")).unwrap();
        }
        let files: Vec<PathBuf> = ["a/b/c.txt", "run.sh", "link", "deleted.txt"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let got: Vec<(String, Want)> = scan(root, &files)
            .unwrap()
            .into_iter()
            .map(|e| (e.path, e.want))
            .collect();
        let want = |p: &str, w| (p.to_string(), w);
        assert_eq!(
            got,
            vec![
                want(".git", Want::Dir),
                want(".git/HEAD", Want::File),
                want(".git/objects", Want::Dir),
                want("a", Want::Dir),
                want("a/b", Want::Dir),
                want("a/b/c.txt", Want::File),
                want("link", Want::Symlink),
                want("run.sh", Want::Exec),
            ]
        );
    }
}

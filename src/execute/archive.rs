//! Packing the project into a tar for the job's `/builds` volume, streamed in chunks so that
//! memory stays flat whatever the size of the repository.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc::Sender;

use walkdir::WalkDir;

/// Tar of `files` (relative to `root`) plus `.git`, placed under `dest` (e.g.
/// `/builds/group/project`). Modes follow the runner's `umask 0000` clone: files 0666 or
/// 0777 when executable, directories 0777, owned by root. Written to `out`, returned at the end.
pub fn project_tar<W: Write>(
    root: &Path,
    files: &[PathBuf],
    dest: &str,
    out: W,
) -> std::io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let prefix = PathBuf::from(dest.trim_start_matches('/'));

    // Parent directories of the project dir itself.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for anc in prefix.ancestors().collect::<Vec<_>>().into_iter().rev() {
        if !anc.as_os_str().is_empty() {
            dirs.push(anc.to_path_buf());
        }
    }
    for d in &dirs {
        append_dir(&mut builder, d)?;
    }

    let mut seen_dirs = std::collections::BTreeSet::new();
    let mut all: Vec<PathBuf> = files.to_vec();
    let git = root.join(".git");
    if git.exists() {
        for entry in WalkDir::new(&git).follow_links(false) {
            let entry = entry.map_err(std::io::Error::other)?;
            if !entry.file_type().is_dir() {
                if let Ok(rel) = entry.path().strip_prefix(root) {
                    all.push(rel.to_path_buf());
                }
            }
        }
    }
    for rel in &all {
        let src = root.join(rel);
        let meta = match std::fs::symlink_metadata(&src) {
            Ok(m) => m,
            // A file listed by git but gone from disk (deleted, not yet committed).
            Err(_) => continue,
        };
        for anc in rel
            .ancestors()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            if !anc.as_os_str().is_empty() && seen_dirs.insert(anc.to_path_buf()) {
                append_dir(&mut builder, &prefix.join(anc))?;
            }
        }
        let path = prefix.join(rel);
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime(&meta));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            builder.append_link(&mut header, &path, target)?;
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            header.set_mode(if is_executable(&meta) { 0o777 } else { 0o666 });
            // A file growing while it is packed must not overrun its header's size.
            let file = std::fs::File::open(&src)?.take(meta.len());
            builder.append_data(&mut header, &path, file)?;
        } else if meta.is_dir() && seen_dirs.insert(rel.clone()) {
            append_dir(&mut builder, &path)?;
        }
    }
    builder.into_inner()
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &Path) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(now());
    builder.append_data(&mut header, path, std::io::empty())
}

/// A blocking writer feeding an async upload: each write becomes one chunk on the channel
/// (wrap it in a `BufWriter` for big chunks). The bounded channel is the backpressure.
pub struct ChunkWriter(pub Sender<std::io::Result<Bytes>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mtime(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_holds_files_under_dest_with_runner_modes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("sub/b.sh"), "b").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join("sub/b.sh");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let files = vec![
            PathBuf::from("a.txt"),
            PathBuf::from("sub/b.sh"),
            PathBuf::from("gone.txt"),
        ];
        let bytes = project_tar(dir.path(), &files, "/builds/g/p", Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert!(entries.contains(&("builds/g/p/a.txt".into(), 0o666)));
        assert!(entries.contains(&("builds/g/p/sub/b.sh".into(), 0o777)));
        assert!(entries.contains(&("builds/g/p/sub".into(), 0o777)));
        assert!(entries.iter().any(|(p, _)| p == "builds/g"));
        assert!(!entries.iter().any(|(p, _)| p.contains("gone")));
    }
}

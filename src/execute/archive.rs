//! Packing the project's entries into a tar for its volume, streamed in chunks so that
//! memory stays flat whatever the size of the repository, each file hashed as it is read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc::Sender;

use crate::execute::sources::diff::{DIR_MODE, EXEC_MODE, FILE_MODE};
use crate::execute::sources::manifest::{Hash, Record};
use crate::project::tree::{self, Entry, Want};

/// Tar of `entries` (relative to `root`) placed under `dest` (e.g. `/builds/group/project`),
/// after `dest` and its parents. Modes follow the runner's `umask 0000` clone: files 0666 or
/// 0777 when executable, directories 0777, owned by root. Returns `out` and, per entry, what
/// was packed (`None`: a file gone since it was listed, or a directory).
pub fn pack<W: Write>(
    root: &Path,
    entries: &[&Entry],
    dest: &str,
    out: W,
) -> std::io::Result<(W, Vec<Option<Record>>)> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let prefix = PathBuf::from(dest.trim_start_matches('/'));
    for anc in prefix.ancestors().collect::<Vec<_>>().into_iter().rev() {
        if !anc.as_os_str().is_empty() {
            append_dir(&mut builder, anc)?;
        }
    }
    let mut packed = Vec::with_capacity(entries.len());
    for e in entries {
        let path = prefix.join(&e.rel);
        if e.want == Want::Dir {
            append_dir(&mut builder, &path)?;
            packed.push(None);
            continue;
        }
        let src = root.join(&e.rel);
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            packed.push(None);
            continue;
        };
        let mtime = mtime(&meta);
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime as u64);
        let (want, size, hash) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&src)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            builder.append_link(&mut header, &path, &target)?;
            let bytes = target.as_os_str().as_encoded_bytes();
            (Want::Symlink, bytes.len() as u64, digest(bytes))
        } else if meta.is_file() {
            let exec = tree::is_executable(&meta);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            header.set_mode(if exec { EXEC_MODE } else { FILE_MODE });
            // A file growing while it is packed must not overrun its header's size.
            let mut reader = Hashing::new(std::fs::File::open(&src)?.take(meta.len()));
            builder.append_data(&mut header, &path, &mut reader)?;
            let want = if exec { Want::Exec } else { Want::File };
            (want, meta.len(), reader.finish())
        } else {
            packed.push(None);
            continue;
        };
        packed.push(Some(Record {
            want,
            size,
            mtime,
            hash,
            key: tree::key(&meta),
        }));
    }
    Ok((builder.into_inner()?, packed))
}

/// The hash `pack` would record for the entry now (`None`: gone or unreadable).
pub fn hash_of(root: &Path, e: &Entry) -> Option<Hash> {
    let src = root.join(&e.rel);
    match e.want {
        Want::Symlink => Some(digest(
            std::fs::read_link(&src)
                .ok()?
                .as_os_str()
                .as_encoded_bytes(),
        )),
        Want::File | Want::Exec => {
            let mut reader = Hashing::new(std::fs::File::open(&src).ok()?);
            std::io::copy(&mut reader, &mut std::io::sink()).ok()?;
            Some(reader.finish())
        }
        Want::Dir => None,
    }
}

fn digest(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    h
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    ctx: ring::digest::Context,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }

    fn finish(self) -> Hash {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.ctx.finish().as_ref());
        h
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &Path) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(DIR_MODE);
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whole seconds, as a tar header holds them (before 1970 counts as 1970).
fn mtime(meta: &std::fs::Metadata) -> i64 {
    tree::key(meta).mtime.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_holds_entries_under_dest_with_runner_modes_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/b.sh"), "b").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = root.join("sub/b.sh");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let files = vec![PathBuf::from("a.txt"), PathBuf::from("sub/b.sh")];
        let mut entries = tree::scan(root, &files).unwrap();
        // A file that disappears after the scan is skipped.
        entries.push(Entry {
            path: "gone.txt".into(),
            rel: "gone.txt".into(),
            want: Want::File,
            key: tree::Key::default(),
        });
        let refs: Vec<&Entry> = entries.iter().collect();
        let (bytes, packed) = pack(root, &refs, "/builds/g/p", Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let got: Vec<(String, u32)> = ar
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
        assert!(got.contains(&("builds/g/p/a.txt".into(), 0o666)));
        assert!(got.contains(&("builds/g/p/sub/b.sh".into(), 0o777)));
        assert!(got.contains(&("builds/g/p/sub".into(), 0o777)));
        assert!(got.contains(&("builds/g".into(), 0o777)));
        assert!(!got.iter().any(|(p, _)| p.contains("gone")));
        let a = entries.iter().position(|e| e.path == "a.txt").unwrap();
        let a_packed = packed[a].clone().unwrap();
        assert_eq!((a_packed.want, a_packed.size), (Want::File, 1));
        assert_eq!(Some(a_packed.hash), hash_of(root, &entries[a]));
        assert_eq!(packed.last().unwrap(), &None);
    }
}

//! Files in and out of the build container through Docker's archive endpoints, so that no
//! tool is needed in the job's image: `collect` copies the folders an `artifacts:`/`cache:`
//! entry can match out of the container and keeps, entry by entry, what its `Selector`
//! takes, in a tar whose names are relative to the project directory; `extract` unpacks such
//! a tar into the project directory.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;

use crate::error::Error;
use crate::execute::docker::Engine;
use crate::execute::verdict::{Level, Lines};
use crate::plan::artifact_paths::{Selector, Taken};

/// What a collection found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Entries (files and directories) taken by each `paths` entry.
    pub per_path: Vec<u64>,
    pub untracked: u64,
    /// Regular files and links written.
    pub files: u64,
    pub size: u64,
}

/// Copy out of `container` what `selector` takes under `project_dir` into the tar `out`.
/// `work` is a scratch folder for the downloads.
pub async fn collect(
    engine: &Engine,
    container: &str,
    project_dir: &str,
    selector: Selector,
    work: &Path,
    out: &Path,
) -> Result<Collected, Error> {
    // All at once: each copy waits mostly on the daemon mounting the container.
    let copies = selector
        .roots()
        .into_iter()
        .enumerate()
        .map(|(i, root)| async move {
            let file = work.join(format!("download-{i}.tar"));
            let mut f = tokio::fs::File::create(&file)
                .await
                .map_err(|e| io_error(&file, &e))?;
            let from = if root.is_empty() {
                project_dir.to_string()
            } else {
                format!("{project_dir}/{root}")
            };
            let found = engine.download(container, &from, &mut f).await?;
            Ok::<_, Error>(found.then_some((root, file)))
        });
    let mut downloads: Vec<(String, PathBuf)> = Vec::new();
    for copy in futures_util::future::join_all(copies).await {
        downloads.extend(copy?);
    }
    let out = out.to_path_buf();
    let count = selector.path_count();
    tokio::task::spawn_blocking(move || filter(&downloads, &selector, count, &out))
        .await
        .map_err(|e| Error::Failed(format!("collecting files: {e}")))?
}

/// Each downloaded tar's entries renamed relative to the project directory and kept when
/// the selector takes them.
fn filter(
    downloads: &[(String, PathBuf)],
    selector: &Selector,
    paths: usize,
    out: &Path,
) -> Result<Collected, Error> {
    let file = std::fs::File::create(out).map_err(|e| io_error(out, &e))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    let mut found = Collected {
        per_path: vec![0; paths],
        ..Collected::default()
    };
    for (root, tar_file) in downloads {
        let f = std::fs::File::open(tar_file).map_err(|e| io_error(tar_file, &e))?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(f));
        let entries = archive.entries().map_err(|e| io_error(tar_file, &e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| io_error(tar_file, &e))?;
            let name = entry
                .path()
                .map_err(|e| io_error(tar_file, &e))?
                .to_string_lossy()
                .into_owned();
            let Some(rel) = relative(root, &name) else {
                continue;
            };
            let kind = entry.header().entry_type();
            let Some(taken) = selector.take(&rel, kind.is_dir()) else {
                continue;
            };
            match taken {
                Taken::Path(i) => found.per_path[i] += 1,
                Taken::Untracked => found.untracked += 1,
            }
            let mut header = entry.header().clone();
            let written = if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(|e| io_error(tar_file, &e))?
                    .unwrap_or_default()
                    .into_owned();
                found.files += 1;
                builder.append_link(&mut header, &rel, target)
            } else {
                if kind.is_file() {
                    found.files += 1;
                    found.size += entry.size();
                }
                builder.append_data(&mut header, &rel, &mut entry)
            };
            written.map_err(|e| io_error(out, &e))?;
        }
    }
    builder
        .into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| io_error(out, &e))?;
    Ok(found)
}

/// The name of a downloaded entry relative to the project directory. A download of
/// `<project>/out` names its entries `out/...`; one of the whole project directory names
/// them after its last component, which is dropped (and the directory itself skipped).
fn relative(root: &str, name: &str) -> Option<String> {
    let name = name.trim_start_matches("./").trim_end_matches('/');
    if root.is_empty() {
        let (_, rest) = name.split_once('/')?;
        return Some(rest.to_string());
    }
    Some(match root.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/{name}"),
        None => name.to_string(),
    })
}

/// Unpack a tar of the store into the project directory.
pub async fn extract(
    engine: &Engine,
    container: &str,
    project_dir: &str,
    tar: &Path,
    what: &str,
) -> Result<(), Error> {
    let file = tokio::fs::File::open(tar)
        .await
        .map_err(|e| io_error(tar, &e))?;
    engine
        .upload_as(container, project_dir, file_stream(file), what)
        .await
}

/// A file as a stream of chunks, read as the upload goes.
fn file_stream(file: tokio::fs::File) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// The runner's lines for what each path found (`out/: found 3 matching artifact files and
/// directories`, a warning for a path that matched nothing), then untracked files.
pub fn report(paths: &[String], found: &Collected, untracked: bool, project_dir: &str) -> Lines {
    let mut lines = Lines::new();
    for (path, n) in paths.iter().zip(&found.per_path) {
        if *n == 0 {
            lines.push((
                Level::Warning,
                format!("{path}: no matching files. Ensure that the artifact path is relative to the working directory ({project_dir})"),
            ));
        } else {
            lines.push((
                Level::Line,
                format!("{path}: found {n} matching artifact files and directories"),
            ));
        }
    }
    if untracked {
        lines.push((
            Level::Line,
            format!("untracked: found {} files", found.untracked),
        ));
    }
    lines
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Failed(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloaded_names_become_project_relative() {
        assert_eq!(relative("out", "out/app").as_deref(), Some("out/app"));
        assert_eq!(relative("out", "out").as_deref(), Some("out"));
        assert_eq!(relative("a/b/c", "c/x").as_deref(), Some("a/b/c/x"));
        assert_eq!(relative("", "project/deps/x").as_deref(), Some("deps/x"));
        assert_eq!(relative("", "project/").as_deref(), None);
    }

    #[test]
    fn filter_keeps_what_the_selector_takes_and_counts_it() {
        let tmp = tempfile::tempdir().unwrap();
        let download = tmp.path().join("d.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&download).unwrap());
        for (name, body) in [
            ("proj/out/app", "bin"),
            ("proj/out/a.o", "obj"),
            ("proj/src/x.c", "c"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        b.finish().unwrap();
        let selector = Selector::new(&["out/".into()], &["**/*.o".into()], None);
        let out = tmp.path().join("o.tar");
        let found = filter(&[(String::new(), download)], &selector, 1, &out).unwrap();
        assert_eq!(found.per_path, [1]);
        assert_eq!((found.files, found.size), (1, 3));
        let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["out/app"]);
        let lines = report(
            &["out/".into(), "gone".into()],
            &Collected {
                per_path: vec![1, 0],
                ..found
            },
            false,
            "/builds/p",
        );
        assert_eq!(
            lines[0],
            (
                Level::Line,
                "out/: found 1 matching artifact files and directories".to_string()
            )
        );
        assert_eq!(lines[1].0, Level::Warning);
        assert!(lines[1].1.starts_with("gone: no matching files"));
    }
}

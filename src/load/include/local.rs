//! The project's own files on disk: which files a `local:` include names (path rules and
//! globs, relative to the project root) and reading one within the size limit.

use std::path::{Path, PathBuf};

use super::MAX_FILE_BYTES;
use crate::error::ConfigError;
use crate::load::glob;

/// Files a `local:` include names (several for a glob), under `root`. `raw` is as written,
/// `expanded` after variable expansion.
pub(super) fn paths(root: &Path, raw: &str, expanded: &str) -> Result<Vec<PathBuf>, String> {
    if expanded.contains('$') {
        return Err(format!(
            "include of local-with-variable \"{raw}\": the variable is not known while \
             loading (known: top-level variables, CI_SERVER_*, and --gitlab-url's)"
        ));
    }
    if expanded.starts_with("./") {
        return Err(format!(
            "`{raw}` for include:local is invalid: paths are relative to the project \
             root and cannot start with `./`"
        ));
    }
    let rel = expanded.trim_start_matches('/');
    if Path::new(rel)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "`{raw}` for include:local is invalid: directory traversal (`..`) is not allowed"
        ));
    }
    if rel.is_empty() {
        return Err("include:local path is empty".into());
    }
    if glob::is_glob(rel) {
        // A glob matching nothing includes nothing (as GitLab does for wildcards).
        return Ok(glob::find(root, rel));
    }
    let path = root.join(rel);
    if !path.is_file() {
        return Err(format!(
            "local include file \"{raw}\" cannot be found (looked for {})",
            path.display()
        ));
    }
    Ok(vec![path])
}

/// The text of `path`, shown as `display` in errors; larger than [`MAX_FILE_BYTES`] is an
/// error rather than exhausted memory.
pub(super) fn read(path: &Path, display: &Path) -> Result<String, ConfigError> {
    let size = std::fs::metadata(path)
        .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(display))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(ConfigError::new(format!(
            "file is too large ({size} bytes; the limit is {MAX_FILE_BYTES})"
        ))
        .in_file(display));
    }
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(format!("cannot read: {e}")).in_file(display))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_relative_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("ci")).unwrap();
        for f in ["ci/a.yml", "ci/b.yml"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        assert_eq!(
            paths(root, "/ci/a.yml", "/ci/a.yml"),
            Ok(vec![root.join("ci/a.yml")])
        );
        assert_eq!(paths(root, "ci/*.yml", "ci/*.yml").unwrap().len(), 2);
        assert_eq!(paths(root, "none/*.yml", "none/*.yml"), Ok(vec![]));
        let err = |raw: &str, expanded: &str| paths(root, raw, expanded).unwrap_err();
        assert!(err("$X/a.yml", "$X/a.yml").contains("local-with-variable \"$X/a.yml\""));
        assert!(err("./ci/a.yml", "./ci/a.yml").contains("cannot start with `./`"));
        assert!(err("ci/../a.yml", "ci/../a.yml").contains("directory traversal"));
        assert!(err("/", "/").contains("is empty"));
        assert!(err("ci/c.yml", "ci/c.yml").contains("cannot be found"));
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let e = read(&big, Path::new("big.yml")).unwrap_err();
        assert!(e.message.contains("too large"), "{e}");
        assert_eq!(e.file.as_deref(), Some(Path::new("big.yml")));
        let e = read(&dir.path().join("none.yml"), Path::new("none.yml")).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
    }
}

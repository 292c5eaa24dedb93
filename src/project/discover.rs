//! Finding the configuration file and the project root.

use std::path::{Path, PathBuf};

use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    /// The pipeline file to load (absolute).
    pub file: PathBuf,
    /// The project root: the git top level when there is one, else the file's directory.
    pub project_root: PathBuf,
}

const CONFIG_NAME: &str = ".gitlab-ci.yml";

/// `.gitlab-ci.yml` in `cwd` (or `directory`) or the nearest parent up to the git root;
/// `file` overrides (relative to `directory`/`cwd`).
pub fn discover(
    cwd: &Path,
    file: Option<&Path>,
    directory: Option<&Path>,
) -> Result<ConfigLocation, ConfigError> {
    let base = match directory {
        Some(d) => absolute(cwd, d),
        None => cwd.to_path_buf(),
    };
    if directory.is_some() && !base.is_dir() {
        return Err(ConfigError::new(format!(
            "directory {} does not exist",
            base.display()
        )));
    }
    let git_root = git_top_level(&base);
    let file = match file {
        Some(f) => {
            let f = absolute(&base, f);
            // A device, FIFO or directory exists but must not be read (`/dev/zero` never
            // ends): say what it is rather than that it is missing.
            if f.exists() && !f.is_file() {
                return Err(ConfigError::new(format!(
                    "configuration file {} is not a regular file",
                    f.display()
                )));
            }
            if !f.is_file() {
                return Err(ConfigError::new(format!(
                    "configuration file {} does not exist",
                    f.display()
                )));
            }
            f
        }
        None => find_upwards(&base, git_root.as_deref()).ok_or_else(|| {
            let limit = git_root
                .as_deref()
                .map(|r| format!(" up to the git root {}", r.display()))
                .unwrap_or_default();
            ConfigError::new(format!(
                "no {CONFIG_NAME} found in {} or its parents{limit}; use -f FILE or -C DIR",
                base.display()
            ))
        })?,
    };
    let file_dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| base.clone());
    // A `-f` file outside the repository still belongs to the repository we run in, but
    // only when it lives inside it do we trust the git root as the include root.
    let project_root = match git_top_level(&file_dir) {
        Some(root) => root,
        None => file_dir,
    };
    Ok(ConfigLocation { file, project_root })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    normalize(&joined)
}

/// Lexical normalisation (`.` and `..`) without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The nearest ancestor (inclusive) holding `.git` (a directory, or a file for worktrees).
fn git_top_level(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

fn find_upwards(start: &Path, stop: Option<&Path>) -> Option<PathBuf> {
    for dir in start.ancestors() {
        let candidate = dir.join(CONFIG_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if Some(dir) == stop {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_file_in_parent_up_to_git_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join(".gitlab-ci.yml"), "x: 1").unwrap();
        let loc = discover(&root.join("a/b"), None, None).unwrap();
        assert_eq!(loc.file, root.join(".gitlab-ci.yml"));
        assert_eq!(loc.project_root, root);
    }

    #[test]
    fn does_not_look_above_git_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path();
        fs::write(outer.join(".gitlab-ci.yml"), "x: 1").unwrap();
        fs::create_dir_all(outer.join("repo/.git")).unwrap();
        let err = discover(&outer.join("repo"), None, None).unwrap_err();
        assert!(err.message.contains("no .gitlab-ci.yml found"), "{err}");
    }

    #[test]
    fn file_and_directory_override() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("proj")).unwrap();
        fs::write(root.join("proj/other.yml"), "x: 1").unwrap();
        let loc = discover(root, Some(Path::new("other.yml")), Some(Path::new("proj"))).unwrap();
        assert_eq!(loc.file, root.join("proj/other.yml"));
        // no git: the project root is the file's directory
        assert_eq!(loc.project_root, root.join("proj"));
        let err = discover(root, Some(Path::new("missing.yml")), None).unwrap_err();
        assert!(err.message.contains("does not exist"));
    }
}

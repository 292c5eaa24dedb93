//! What cijob learns from the local git repository (read-only).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitInfo {
    pub sha: String,
    pub short_sha: String,
    pub before_sha: String,
    pub ref_name: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub message: String,
    pub title: String,
    pub description: String,
    pub author: String,
    pub timestamp: String,
    pub remote_url: Option<String>,
    /// `group/sub` from the remote URL, or a local fallback.
    pub namespace: String,
    /// Project name from the remote URL, or the root directory's name.
    pub project: String,
    pub default_branch: String,
}

pub fn info(root: &Path) -> GitInfo {
    let _ = root;
    todo!("helper B")
}

/// Files to copy into the job: tracked plus untracked-but-not-ignored (relative paths).
/// Outside git: every file under root. `.git` is added by the caller.
pub fn project_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let _ = root;
    todo!("helper B")
}

//! The local worktree as `rules:changes` and `rules:exists` see it (the only I/O behind
//! `load::rules::Project`).
//!
//! `changes`: what differs between the merge-base of `HEAD` and the base ref (`compare_to`,
//! else the default branch) and the working tree, uncommitted and untracked-but-not-ignored
//! files included. A base that git cannot find makes the changes unknown (they then match,
//! as GitLab does when a pipeline has no base). `exists`: the files a job gets (tracked plus
//! untracked-but-not-ignored; every file outside git).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::load::rules::Project;
use crate::project::git;

pub struct Worktree {
    root: PathBuf,
    default_branch: String,
    files: OnceLock<Vec<String>>,
    changes: Mutex<HashMap<Option<String>, Changed>>,
}

impl Worktree {
    pub fn new(root: &Path, default_branch: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            default_branch: default_branch.to_string(),
            files: OnceLock::new(),
            changes: Mutex::new(HashMap::new()),
        }
    }

    /// The commit a ref names: as given, else the remote-tracking branch of that name.
    fn commit_of(&self, name: &str) -> Option<String> {
        let short = name.strip_prefix("refs/heads/").unwrap_or(name);
        [
            name.to_string(),
            format!("origin/{short}"),
            format!("refs/remotes/origin/{short}"),
        ]
        .iter()
        .find_map(|r| {
            git::git(
                &self.root,
                &["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")],
            )
        })
    }

    fn compute_changes(&self, compare_to: Option<&str>) -> Option<Vec<String>> {
        let base_ref = compare_to.unwrap_or(&self.default_branch);
        let base = self.commit_of(base_ref)?;
        let merge_base = git::git(&self.root, &["merge-base", "HEAD", &base])?;
        let mut out = Vec::new();
        let diff = git::git(
            &self.root,
            // `--relative`: the project may be below the repository's top.
            &[
                "diff",
                "--name-only",
                "--relative",
                "--no-renames",
                "-z",
                &merge_base,
            ],
        )?;
        let untracked = git::git(
            &self.root,
            &[
                "ls-files",
                "--others",
                "--exclude-standard",
                "-z",
                "--",
                ".",
            ],
        )
        .unwrap_or_default();
        out.extend(
            diff.split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.extend(
            untracked
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        out.sort();
        out.dedup();
        Some(out)
    }
}

/// What changed against one base, `None` when it cannot be known.
type Changed = Option<Arc<[String]>>;

impl Project for Worktree {
    fn changed_files(&self, compare_to: Option<&str>) -> Option<Arc<[String]>> {
        let mut cache = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(compare_to.map(str::to_string))
            .or_insert_with(|| self.compute_changes(compare_to).map(Arc::from))
            .clone()
    }

    fn files(&self) -> &[String] {
        self.files.get_or_init(|| {
            git::project_files(&self.root)
                .unwrap_or_default()
                .iter()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@x")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@x")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn changes_against_the_merge_base_with_uncommitted_and_untracked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sh(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a.txt"), "a").unwrap();
        std::fs::write(d.join(".gitignore"), "ignored.txt\n").unwrap();
        sh(d, &["add", "."]);
        sh(d, &["commit", "-qm", "one"]);
        sh(d, &["checkout", "-qb", "feature"]);
        std::fs::create_dir(d.join("docs")).unwrap();
        std::fs::write(d.join("docs/x.md"), "x").unwrap();
        sh(d, &["add", "."]);
        sh(d, &["commit", "-qm", "two"]);
        // main moves on: its own change is not the feature's
        sh(d, &["checkout", "-q", "main"]);
        std::fs::write(d.join("main-only.txt"), "m").unwrap();
        sh(d, &["add", "."]);
        sh(d, &["commit", "-qm", "three"]);
        sh(d, &["checkout", "-q", "feature"]);
        std::fs::write(d.join("a.txt"), "changed").unwrap();
        std::fs::write(d.join("new.txt"), "n").unwrap();
        std::fs::write(d.join("ignored.txt"), "i").unwrap();

        let w = Worktree::new(d, "main");
        assert_eq!(
            *w.changed_files(None).unwrap(),
            ["a.txt", "docs/x.md", "new.txt"]
        );
        // Against the feature branch itself: only what is not committed.
        assert_eq!(
            *w.changed_files(Some("refs/heads/feature")).unwrap(),
            ["a.txt", "new.txt"]
        );
        assert_eq!(w.changed_files(Some("no-such-branch")), None);
        let files = w.files();
        assert!(files.contains(&"docs/x.md".to_string()), "{files:?}");
        assert!(!files.contains(&"ignored.txt".to_string()), "{files:?}");
    }

    #[test]
    fn outside_git_changes_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let w = Worktree::new(dir.path(), "main");
        assert_eq!(w.changed_files(None), None);
        assert_eq!(w.files(), ["f"]);
    }
}

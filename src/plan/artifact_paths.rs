//! Which files of the project directory an `artifacts:` or `cache:` entry takes, decided one
//! path at a time so that a container's tar can be filtered as it streams. The runner's
//! rules: `paths` are doublestar globs relative to the project directory (`**` is any number
//! of directories, `*` and `?` stay within one), a matched directory brings everything under
//! it, `exclude` drops what it matches (or what is under a directory it matches), and
//! `untracked` adds every file git does not track.

use std::collections::HashSet;

use crate::load::glob;

/// How one path was taken: by which `paths` entry (its index), or as untracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Path(usize),
    Untracked,
}

#[derive(Debug, Clone, Default)]
pub struct Selector {
    raw: Vec<String>,
    paths: Vec<Vec<String>>,
    exclude: Vec<Vec<String>>,
    /// `Some`: `untracked: true`, with the files git tracks (relative, `/`-separated).
    tracked: Option<HashSet<String>>,
}

impl Selector {
    pub fn new(paths: &[String], exclude: &[String], tracked: Option<HashSet<String>>) -> Self {
        Self {
            raw: paths.to_vec(),
            paths: paths.iter().map(|p| segments(p)).collect(),
            exclude: exclude.iter().map(|p| segments(p)).collect(),
            tracked,
        }
    }

    /// Whether `path` (relative to the project directory, `/`-separated) is taken and how;
    /// `None` when it is not, or when an `exclude` pattern drops it.
    pub fn take(&self, path: &str, is_dir: bool) -> Option<Taken> {
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == ".git" || path.starts_with(".git/") {
            return None;
        }
        let parts: Vec<&str> = path.split('/').collect();
        let hit = |pattern: &Vec<String>| (1..=parts.len()).any(|n| matches(pattern, &parts[..n]));
        if self.exclude.iter().any(hit) {
            return None;
        }
        if let Some(i) = self.paths.iter().position(hit) {
            return Some(Taken::Path(i));
        }
        match &self.tracked {
            Some(tracked) if !is_dir && !tracked.contains(path) => Some(Taken::Untracked),
            _ => None,
        }
    }
}

impl Selector {
    /// How many `paths` entries it has.
    pub fn path_count(&self) -> usize {
        self.raw.len()
    }

    /// The folders to copy out of the container to see everything it can take.
    pub fn roots(&self) -> Vec<String> {
        roots(&self.raw, self.tracked.is_some())
    }
}

/// The directories (relative to the project directory, `""` for the whole of it) whose
/// contents cover every file the patterns can match: the part of each pattern before its
/// first wildcard. With `untracked`, the whole directory.
pub fn roots(paths: &[String], untracked: bool) -> Vec<String> {
    if untracked {
        return vec![String::new()];
    }
    let mut out: Vec<String> = paths
        .iter()
        .map(|p| {
            let segs = segments(p);
            let literal: Vec<&str> = segs
                .iter()
                .take_while(|s| !glob::is_glob(s))
                .map(String::as_str)
                .collect();
            literal.join("/")
        })
        .collect();
    out.sort();
    out.dedup();
    // A root under another one is already covered.
    let all = out.clone();
    out.retain(|r| {
        !all.iter()
            .any(|o| o != r && (o.is_empty() || r.starts_with(&format!("{o}/"))))
    });
    out
}

/// A pattern as path segments: `./` and trailing `/` dropped, empty segments removed.
fn segments(pattern: &str) -> Vec<String> {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(String::from)
        .collect()
}

/// Doublestar matching of whole segments: `**` alone is zero or more segments, any other
/// segment is a one-segment wildcard pattern.
fn matches(pattern: &[String], parts: &[&str]) -> bool {
    match pattern.first() {
        None => parts.is_empty(),
        Some(seg) if seg == "**" => (0..=parts.len()).any(|n| matches(&pattern[1..], &parts[n..])),
        Some(seg) => {
            !parts.is_empty() && one_segment(seg, parts[0]) && matches(&pattern[1..], &parts[1..])
        }
    }
}

fn one_segment(pattern: &str, text: &str) -> bool {
    if !glob::is_glob(pattern) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob::matches(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(paths: &[&str], exclude: &[&str]) -> Selector {
        Selector::new(
            &paths.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &exclude.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        )
    }

    #[test]
    fn a_directory_brings_everything_under_it() {
        let s = sel(&["out/"], &[]);
        assert_eq!(s.take("out", true), Some(Taken::Path(0)));
        assert_eq!(s.take("out/app", false), Some(Taken::Path(0)));
        assert_eq!(s.take("out/sub/deep.txt", false), Some(Taken::Path(0)));
        assert_eq!(s.take("output/x", false), None);
        assert_eq!(s.take("src/out", false), None);
    }

    #[test]
    fn doublestar_is_any_number_of_directories() {
        let s = sel(&["**/*.log", "bin/*.so", "./dist/app-?"], &[]);
        assert!(s.take("a.log", false).is_some());
        assert!(s.take("x/y/z.log", false).is_some());
        assert!(s.take("bin/a.so", false).is_some());
        assert!(s.take("bin/sub/a.so", false).is_none());
        assert!(s.take("dist/app-1", false).is_some());
        assert!(s.take("dist/app-10", false).is_none());
        assert!(s.take(".git/x.log", false).is_none());
    }

    #[test]
    fn exclude_drops_files_and_whole_directories() {
        let s = sel(&["out/"], &["out/**/*.o", "out/tmp"]);
        assert!(s.take("out/app", false).is_some());
        assert!(s.take("out/a.o", false).is_none());
        assert!(s.take("out/x/b.o", false).is_none());
        assert!(s.take("out/tmp/keep.txt", false).is_none());
    }

    #[test]
    fn untracked_takes_files_git_does_not_track() {
        let tracked: HashSet<String> = ["src/main.c", "README"].map(String::from).into();
        let s = Selector::new(&[], &["*.tmp".to_string()], Some(tracked));
        assert_eq!(s.take("build/a.o", false), Some(Taken::Untracked));
        assert_eq!(s.take("src/main.c", false), None);
        assert_eq!(s.take("build", true), None);
        assert_eq!(s.take("x.tmp", false), None);
    }

    #[test]
    fn roots_are_the_literal_prefixes_without_nesting() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            roots(&p(&["out/app", "out/", "deps/*/x"]), false),
            ["deps", "out"]
        );
        assert_eq!(
            roots(&p(&["out/app", "a/b/c"]), false),
            ["a/b/c", "out/app"]
        );
        assert_eq!(roots(&p(&["**/*.log", "out"]), false), [""]);
        assert_eq!(roots(&p(&["out"]), true), [""]);
    }
}

//! Globs for `include: local:` as GitLab documents them: `*` stays within one path
//! segment, `**` crosses directories (`configs/**.yml` = configs and all subfolders,
//! `configs/**/*.yml` = subfolders only), `?` is one character.

use std::path::{Path, PathBuf};

/// Stop walking huge trees; an include glob is never meant to scan that much.
const MAX_ENTRIES: usize = 200_000;

pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Files under `root` whose root-relative path (with `/`) matches, sorted by path.
pub fn find(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let pat: Vec<char> = pattern.chars().collect();
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .take(MAX_ENTRIES)
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            e.path().strip_prefix(root).ok().is_some_and(|rel| {
                let rel: Vec<char> = rel.to_string_lossy().replace('\\', "/").chars().collect();
                matches(&pat, &rel)
            })
        })
        .map(|e| e.into_path())
        .collect();
    out.sort();
    out
}

/// Iterative wildcard matching with backtracking on the last star (linear-ish, no recursion).
pub fn matches(pat: &[char], text: &[char]) -> bool {
    matches_from(pat, text, 0, 0, 0)
}

fn matches_from(pat: &[char], text: &[char], mut p: usize, mut t: usize, depth: usize) -> bool {
    if depth > 32 {
        return false;
    }
    while p < pat.len() {
        match pat[p] {
            '*' => {
                let double = pat.get(p + 1) == Some(&'*');
                let next = if double { p + 2 } else { p + 1 };
                // try every split point; `*` may not swallow `/`, `**` may
                let mut k = t;
                loop {
                    if matches_from(pat, text, next, k, depth + 1) {
                        return true;
                    }
                    if k >= text.len() || (!double && text[k] == '/') {
                        return false;
                    }
                    k += 1;
                }
            }
            '?' => {
                if t >= text.len() || text[t] == '/' {
                    return false;
                }
            }
            c => {
                if text.get(t) != Some(&c) {
                    return false;
                }
            }
        }
        p += 1;
        t += 1;
    }
    t == text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        matches(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn star_and_double_star() {
        assert!(m("configs/*.yml", "configs/a.yml"));
        assert!(!m("configs/*.yml", "configs/sub/a.yml"));
        assert!(m("configs/**.yml", "configs/a.yml"));
        assert!(m("configs/**.yml", "configs/sub/deep/a.yml"));
        assert!(!m("configs/**/*.yml", "configs/a.yml"));
        assert!(m("configs/**/*.yml", "configs/sub/a.yml"));
        assert!(m(".gitlab/*.gitlab-ci.yml", ".gitlab/x.gitlab-ci.yml"));
        assert!(!m("a?.yml", "a/.yml"));
    }
}

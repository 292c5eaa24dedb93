//! One `rules:` entry's conditions (`if`, `changes`, `exists`), shared by `include: rules:`,
//! job `rules:` and `workflow: rules:`; and whether an include is taken.
//!
//! A rule matches when every condition it has holds. `if` is GitLab's expression language
//! (`load::expression`). `changes` and `exists` ask a [`Project`] (paths are globs as Ruby's
//! `File.fnmatch` reads them with `FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB`: `*` stays in a
//! path segment, `**/` is any number of directories, `{a,b}` alternatives; `$VARIABLES` in
//! them are expanded).

use std::sync::Arc;

use regex::Regex;

use crate::load::expression;
use crate::load::yaml::{self, Mapping, Value};

/// GitLab stops `rules:exists` after this many pattern checks, and then the rule matches.
pub const MAX_EXISTS_CHECKS: usize = 10_000;

/// What `changes` and `exists` are evaluated against.
pub trait Project {
    /// Paths (relative, `/`-separated) that changed against `compare_to`, or the default
    /// branch. `None` when it cannot be known: `changes` then matches, as GitLab does for
    /// pipelines without a base (new branches, tags).
    fn changed_files(&self, compare_to: Option<&str>) -> Option<Arc<[String]>>;
    /// The project's files (relative, `/`-separated).
    fn files(&self) -> &[String];
}

/// A project that cannot be looked at (a remote include): nothing exists, changes unknown.
pub struct Nowhere;

impl Project for Nowhere {
    fn changed_files(&self, _: Option<&str>) -> Option<Arc<[String]>> {
        None
    }
    fn files(&self) -> &[String] {
        &[]
    }
}

/// Test variables: a push pipeline on `main`.
#[cfg(test)]
pub(crate) fn push_on_main(k: &str) -> Option<String> {
    match k {
        "CI_COMMIT_BRANCH" => Some("main".into()),
        "CI_PIPELINE_SOURCE" => Some("push".into()),
        _ => None,
    }
}

/// Whether an include is taken: the first matching rule decides (`when: never` skips it);
/// no matching rule skips it.
pub fn evaluate(
    rules: &Value,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<bool, String> {
    let list = match rules {
        Value::Sequence(s) => s,
        Value::Null => return Ok(true),
        _ => return Err("include rules must be a list".into()),
    };
    for rule in list {
        let Value::Mapping(rule) = rule else {
            return Err("each include rule must be a mapping".into());
        };
        if !matches(rule, vars, project)? {
            continue;
        }
        let when = rule
            .get("when")
            .and_then(yaml::scalar_string)
            .unwrap_or_else(|| "always".into());
        return match when.as_str() {
            "never" => Ok(false),
            "always" => Ok(true),
            other => Err(format!(
                "include rules: when must be `never` or `always`, not `{other}`"
            )),
        };
    }
    Ok(false)
}

/// Whether all of the rule's conditions hold. Errors are syntax errors in `if` and badly
/// shaped `changes`/`exists`.
pub fn matches(
    rule: &Mapping,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<bool, String> {
    if let Some(expr) = rule.get("if") {
        let text = yaml::scalar_string(expr).ok_or("if must be a string")?;
        let parsed = expression::parse(&text).map_err(|e| format!("if {e}"))?;
        if !parsed.truthful(vars) {
            return Ok(false);
        }
    }
    if let Some(changes) = rule.get("changes") {
        let (patterns, compare_to) = paths(changes, "changes", vars)?;
        let changed = if has_push_diff(vars) {
            project.changed_files(compare_to.as_deref())
        } else {
            None
        };
        if let Some(changed) = changed {
            if !any_match(&patterns, &changed, usize::MAX)? {
                return Ok(false);
            }
        }
    }
    if let Some(exists) = rule.get("exists") {
        let (patterns, _) = paths(exists, "exists", vars)?;
        if !any_match(&patterns, project.files(), MAX_EXISTS_CHECKS)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the pipeline has changes to compare: GitLab's `changes` is always true for tags
/// and for pipelines that no push started (schedules, triggers, the web, the API...).
fn has_push_diff(vars: &dyn Fn(&str) -> Option<String>) -> bool {
    let source = vars("CI_PIPELINE_SOURCE");
    vars("CI_COMMIT_TAG").is_none()
        && matches!(
            source.as_deref(),
            None | Some("push" | "merge_request_event" | "external_pull_request_event")
        )
}

/// The patterns of `changes:`/`exists:` (a list, or `{paths, compare_to}`), expanded, and
/// `compare_to`.
fn paths(
    value: &Value,
    what: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<String>, Option<String>), String> {
    let list = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::Sequence(s) => s
                .iter()
                .map(|x| {
                    yaml::scalar_string(x).ok_or(format!("rules:{what} must be a list of paths"))
                })
                .collect(),
            Value::Null => Ok(vec![]),
            other => yaml::scalar_string(other)
                .map(|s| vec![s])
                .ok_or(format!("rules:{what} must be a list of paths")),
        }
    };
    let (raw, compare_to) = match value {
        Value::Mapping(m) => (
            list(m.get("paths").unwrap_or(&Value::Null))?,
            m.get("compare_to").and_then(yaml::scalar_string),
        ),
        other => (list(other)?, None),
    };
    let expanded = raw.iter().map(|p| crate::expand::expand(p, vars)).collect();
    Ok((
        expanded,
        compare_to.map(|c| crate::expand::expand(&c, vars)),
    ))
}

/// Whether a pattern matches a path; after `limit` checks, true (GitLab's `exists` limit).
fn any_match(patterns: &[String], files: &[String], limit: usize) -> Result<bool, String> {
    let mut checks = 0usize;
    for p in patterns {
        let p = p.trim_start_matches("./").trim_start_matches('/');
        if !p.contains(['*', '?', '[', '{']) {
            // A plain path is one lookup.
            checks += 1;
            if files.iter().any(|f| f == p) {
                return Ok(true);
            }
            continue;
        }
        let re = glob_regex(p)?;
        for f in files {
            checks += 1;
            if checks > limit {
                return Ok(true);
            }
            if re.is_match(f) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `File.fnmatch` with `FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB` as an anchored regex.
pub fn glob_regex(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    let mut braces = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_segment_start = i == 0 || chars[i - 1] == '/';
                if at_segment_start && chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:[^/]*/)*");
                    i += 3;
                    continue;
                }
                re.push_str("[^/]*");
                i += 2;
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '{' => {
                braces += 1;
                re.push_str("(?:");
            }
            '}' if braces > 0 => {
                braces -= 1;
                re.push(')');
            }
            ',' if braces > 0 => re.push('|'),
            '[' => {
                let end = chars[i + 1..].iter().position(|&d| d == ']');
                match end {
                    Some(end) => {
                        let mut class: String = chars[i + 1..i + 1 + end].iter().collect();
                        if let Some(rest) = class.strip_prefix('!') {
                            class = format!("^{rest}");
                        }
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                        re.push(']');
                        i += end + 2;
                        continue;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                re.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|_| format!("invalid path pattern `{pattern}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(k: &str) -> Option<String> {
        match k {
            "A" => Some("x".into()),
            "DIR" => Some("docs".into()),
            _ => None,
        }
    }

    struct Fake {
        changed: Option<Vec<&'static str>>,
        files: Vec<String>,
    }

    impl Project for Fake {
        fn changed_files(&self, compare_to: Option<&str>) -> Option<Arc<[String]>> {
            if compare_to == Some("refs/heads/other") {
                return Some(Arc::from([]));
            }
            self.changed
                .as_ref()
                .map(|c| c.iter().map(|s| s.to_string()).collect())
        }
        fn files(&self) -> &[String] {
            &self.files
        }
    }

    fn project() -> Fake {
        Fake {
            changed: Some(vec!["docs/guide/intro.md", "src/main.rs"]),
            files: ["Dockerfile", "src/main.rs", "docs/a.md", ".hidden/x.yml"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn rule(y: &str) -> bool {
        let v: Value = serde_yaml::from_str(y).unwrap();
        matches(v.as_mapping().unwrap(), &vars, &project()).unwrap()
    }

    #[test]
    fn include_rules_lists() {
        let r = |y: &str| {
            let v: Value = serde_yaml::from_str(y).unwrap();
            evaluate(&v, &vars, &Nowhere).unwrap()
        };
        assert!(r("[{if: $A}]"));
        assert!(!r("[{if: $MISSING}]"));
        assert!(!r("[{if: $A, when: never}]"));
        assert!(r("[{if: $MISSING}, {when: always}]"));
        assert!(!r("[{exists: [nothing.txt]}]"));
        let v: Value = serde_yaml::from_str("[{if: '${A}'}]").unwrap();
        assert!(evaluate(&v, &vars, &Nowhere).is_err());
    }

    #[test]
    fn changes_and_exists() {
        assert!(rule("{changes: ['**/*.md']}"));
        assert!(rule("{changes: ['src/*.rs']}"));
        assert!(rule("{changes: ['$DIR/**/*']}"));
        assert!(!rule("{changes: ['*.md']}"));
        assert!(!rule("{changes: ['lib/**/*']}"));
        assert!(rule("{changes: {paths: ['src/main.rs']}}"));
        assert!(!rule(
            "{changes: {paths: ['src/main.rs'], compare_to: refs/heads/other}}"
        ));
        assert!(rule("{exists: [Dockerfile]}"));
        assert!(rule("{exists: ['**/*.{yml,yaml}']}"));
        assert!(!rule("{exists: [Makefile]}"));
        assert!(rule("{exists: {paths: ['docs/*.md']}}"));
        assert!(!rule("{if: $A, exists: [Makefile]}"));
        assert!(rule(
            "{if: $A, changes: [src/main.rs], exists: [Dockerfile]}"
        ));
        // Unknown changes (no git, new branch) match.
        let unknown = Fake {
            changed: None,
            files: vec![],
        };
        let v: Value = serde_yaml::from_str("{changes: [x]}").unwrap();
        assert!(matches(v.as_mapping().unwrap(), &vars, &unknown).unwrap());
        // Tags and pipelines no push started: changes always match.
        let tag = |k: &str| (k == "CI_COMMIT_TAG").then(|| "v1".to_string());
        let schedule = |k: &str| (k == "CI_PIPELINE_SOURCE").then(|| "schedule".to_string());
        let mr = |k: &str| (k == "CI_PIPELINE_SOURCE").then(|| "merge_request_event".to_string());
        let rule = v.as_mapping().unwrap();
        assert!(matches(rule, &tag, &project()).unwrap());
        assert!(matches(rule, &schedule, &project()).unwrap());
        assert!(!matches(rule, &mr, &project()).unwrap());
        assert!(!matches(rule, &vars, &project()).unwrap());
    }

    #[test]
    fn exists_stops_after_the_check_limit() {
        let files: Vec<String> = (0..MAX_EXISTS_CHECKS + 5)
            .map(|i| format!("f{i}.txt"))
            .collect();
        assert!(any_match(&["*.rs".into()], &files, MAX_EXISTS_CHECKS).unwrap());
        assert!(!any_match(&["*.rs".into()], &files[..100], MAX_EXISTS_CHECKS).unwrap());
    }

    #[test]
    fn fnmatch_globs() {
        let m = |p: &str, f: &str| glob_regex(p).unwrap().is_match(f);
        assert!(m("**/*.md", "README.md"));
        assert!(m("**/*.md", "a/b/c.md"));
        assert!(m("*.md", ".x.md"));
        assert!(!m("*.md", "a/b.md"));
        assert!(m("docs/**/*", "docs/a/b"));
        assert!(m("{src,lib}/*.rs", "lib/x.rs"));
        assert!(m("file[0-9].txt", "file3.txt"));
        assert!(m("file[!0-9].txt", "filex.txt"));
        assert!(!m("a?c", "a/c"));
    }
}

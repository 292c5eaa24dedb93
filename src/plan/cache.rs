//! A job's `cache:` entries as GitLab sends them to the runner and the runner uses them: the
//! key (a string with variables, or `files:` hashed from the commits that last changed them,
//! with `prefix`), GitLab's `-protected`/`-non_protected` suffix unless `unprotect`, the
//! fallback keys then `CACHE_FALLBACK_KEY`, `policy` (variable-expanded), `when`, at most 4.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::expand::lookup;
use crate::load::yaml::{self, Mapping, Value};
use crate::model::{Job, Variable};
use crate::plan::artifacts::{flag, strings, SaveWhen};
use crate::plan::variables::expand_name;
use crate::project::name_rules::path_component;

/// GitLab's limit on caches per job.
pub const MAX_CACHES: usize = 4;

/// One cache entry, its keys final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePlan {
    pub key: String,
    /// Tried in order when `key` has no archive yet.
    pub fallback_keys: Vec<String>,
    pub paths: Vec<String>,
    pub untracked: bool,
    pub when: SaveWhen,
    pub pull: bool,
    pub push: bool,
    /// The project's cache folder in the store.
    pub store: PathBuf,
}

impl CachePlan {
    /// Where the archive of `key` is kept: one per key, as the runner keeps them.
    pub fn archive(&self, key: &str) -> PathBuf {
        self.store.join(path_component(key)).join("cache.tar")
    }

    /// The key, then the fallbacks, in the order the runner tries them.
    pub fn restore_order(&self) -> Vec<&str> {
        std::iter::once(self.key.as_str())
            .chain(self.fallback_keys.iter().map(String::as_str))
            .collect()
    }
}

/// The files whose last commit a job's cache keys hash (`cache:key:files`), for the caller
/// to ask git about before planning.
pub fn key_files(job: &Job) -> Vec<String> {
    entries(job.cache.as_ref())
        .iter()
        .filter_map(|e| e.as_mapping()?.get("key")?.as_mapping()?.get("files"))
        .flat_map(|f| strings(Some(f), "cache:key:files").unwrap_or_default())
        .map(|f| clean_file(&f))
        .collect()
}

/// The job's caches. `commits` maps a `key:files` file to the last commit that changed it.
pub fn plan_caches(
    job: &Job,
    variables: &[Variable],
    commits: &BTreeMap<String, String>,
    store: PathBuf,
) -> Result<Vec<CachePlan>, String> {
    let list = entries(job.cache.as_ref());
    if list.len() > MAX_CACHES {
        return Err(format!(
            "cache has {} entries; GitLab allows at most {MAX_CACHES}",
            list.len()
        ));
    }
    let protected = lookup(variables, "CI_COMMIT_REF_PROTECTED") == Some("true");
    let mut out = Vec::new();
    for entry in &list {
        let m = entry.as_mapping().ok_or_else(|| {
            format!(
                "cache entries must be mappings, not {}",
                yaml::type_name(entry)
            )
        })?;
        let paths: Vec<String> = strings(m.get("paths"), "cache:paths")?
            .iter()
            .map(|p| expand_name(p, variables))
            .collect();
        let untracked = flag(m.get("untracked"), "cache:untracked")?;
        if paths.is_empty() && !untracked {
            continue;
        }
        let suffix = |key: String| {
            if flag(m.get("unprotect"), "cache:unprotect").unwrap_or(false) {
                key
            } else if protected {
                format!("{key}-protected")
            } else {
                format!("{key}-non_protected")
            }
        };
        let key = suffix(key(m.get("key"), variables, commits)?);
        let mut fallback_keys: Vec<String> =
            strings(m.get("fallback_keys"), "cache:fallback_keys")?
                .iter()
                .map(|k| suffix(expand_name(k, variables)))
                .collect();
        // The runner ignores a global fallback key that would reach protected caches.
        if let Some(global) = lookup(variables, "CACHE_FALLBACK_KEY")
            .filter(|k| !k.is_empty() && !k.ends_with("-protected"))
        {
            fallback_keys.push(global.to_string());
        }
        let policy = m
            .get("policy")
            .and_then(yaml::scalar_string)
            .map(|p| expand_name(&p, variables))
            .unwrap_or_default();
        let (pull, push) = match policy.as_str() {
            "" | "pull-push" => (true, true),
            "pull" => (true, false),
            "push" => (false, true),
            other => {
                return Err(format!(
                    "cache:policy must be pull, push or pull-push, not \"{other}\""
                ))
            }
        };
        let when = SaveWhen::from_value(m.get("when"), "cache:when")?;
        out.push(CachePlan {
            key,
            fallback_keys,
            paths,
            untracked,
            when,
            pull,
            push,
            store: store.clone(),
        });
    }
    Ok(out)
}

fn entries(cache: Option<&Value>) -> Vec<Value> {
    match cache {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(list)) => list.clone(),
        Some(Value::Mapping(m)) if m.is_empty() => Vec::new(),
        Some(one) => vec![one.clone()],
    }
}

/// The key before its suffix: GitLab's `default` when empty.
fn key(
    value: Option<&Value>,
    variables: &[Variable],
    commits: &BTreeMap<String, String>,
) -> Result<String, String> {
    let key = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::Mapping(m)) => files_key(m, variables, commits)?,
        Some(v) => expand_name(
            &yaml::scalar_string(v).ok_or("cache:key must be a string or a mapping with files")?,
            variables,
        ),
    };
    Ok(if key.trim().is_empty() {
        "default".to_string()
    } else {
        key
    })
}

/// `key: {files, prefix}`: SHA-1 of the sorted, distinct commits that last changed the
/// files, joined with `-` (GitLab's `Seed::Build::Cache`), `default` when none has one,
/// after the prefix.
fn files_key(
    m: &Mapping,
    variables: &[Variable],
    commits: &BTreeMap<String, String>,
) -> Result<String, String> {
    let files = strings(m.get("files"), "cache:key:files")?;
    if files.is_empty() || files.len() > 2 {
        return Err("cache:key:files must list one or two files".to_string());
    }
    let mut ids: Vec<&str> = files
        .iter()
        .filter_map(|f| commits.get(&clean_file(f)).map(String::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let digest = if ids.is_empty() {
        "default".to_string()
    } else {
        crate::hex::encode(
            ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                ids.join("-").as_bytes(),
            )
            .as_ref(),
        )
    };
    let prefix = m
        .get("prefix")
        .and_then(yaml::scalar_string)
        .map(|p| expand_name(&p, variables))
        .unwrap_or_default();
    Ok(if prefix.is_empty() {
        digest
    } else {
        format!("{prefix}-{digest}")
    })
}

fn clean_file(f: &str) -> String {
    f.trim().trim_start_matches("./").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cache: &str) -> Job {
        Job {
            name: "test".into(),
            cache: Some(serde_yaml::from_str(cache).unwrap()),
            ..Job::default()
        }
    }

    fn vars(protected: bool) -> Vec<Variable> {
        vec![
            Variable::new("CI_COMMIT_REF_SLUG", "main"),
            Variable::new("CI_COMMIT_REF_PROTECTED", protected.to_string()),
            Variable::new("POLICY", "pull"),
        ]
    }

    fn plan(cache: &str, protected: bool) -> Result<Vec<CachePlan>, String> {
        plan_caches(
            &job(cache),
            &vars(protected),
            &BTreeMap::new(),
            PathBuf::from("/s"),
        )
    }

    #[test]
    fn key_expanded_and_suffixed_by_protection() {
        let c = plan("key: deps-$CI_COMMIT_REF_SLUG\npaths: [deps/]", false).unwrap();
        assert_eq!(c[0].key, "deps-main-non_protected");
        assert!(c[0].pull && c[0].push);
        let c = plan("key: x\npaths: [deps/]", true).unwrap();
        assert_eq!(c[0].key, "x-protected");
        let c = plan("key: x\nunprotect: true\npaths: [deps/]", true).unwrap();
        assert_eq!(c[0].key, "x");
        let c = plan("paths: [deps/]", false).unwrap();
        assert_eq!(c[0].key, "default-non_protected");
    }

    #[test]
    fn fallback_keys_then_the_global_fallback() {
        let mut v = vars(false);
        v.push(Variable::new("CACHE_FALLBACK_KEY", "global"));
        let c = plan_caches(
            &job("key: a\nfallback_keys: [b-$CI_COMMIT_REF_SLUG]\npaths: [x]"),
            &v,
            &BTreeMap::new(),
            PathBuf::new(),
        )
        .unwrap();
        assert_eq!(
            c[0].restore_order(),
            ["a-non_protected", "b-main-non_protected", "global"]
        );
        v.push(Variable::new("CACHE_FALLBACK_KEY", "sneaky-protected"));
        let c = plan_caches(
            &job("key: a\npaths: [x]"),
            &v,
            &BTreeMap::new(),
            PathBuf::new(),
        )
        .unwrap();
        assert_eq!(c[0].restore_order(), ["a-non_protected"]);
    }

    #[test]
    fn policy_is_expanded_and_checked() {
        let c = plan("key: a\npolicy: $POLICY\npaths: [x]", false).unwrap();
        assert!(c[0].pull && !c[0].push);
        let c = plan("key: a\npolicy: push\npaths: [x]\nwhen: always", false).unwrap();
        assert!(!c[0].pull && c[0].push);
        assert_eq!(c[0].when, SaveWhen::Always);
        assert!(plan("key: a\npolicy: sometimes\npaths: [x]", false)
            .unwrap_err()
            .contains("cache:policy"));
    }

    #[test]
    fn list_of_caches_at_most_four_and_entries_without_paths_skipped() {
        let c = plan(
            "- {key: a, paths: [a]}\n- {key: b, untracked: true}\n- {key: c}",
            false,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        let five = (0..5)
            .map(|i| format!("- {{key: k{i}, paths: [p]}}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan(&five, false).unwrap_err().contains("at most 4"));
    }

    #[test]
    fn files_key_hashes_the_sorted_last_commits_after_the_prefix() {
        let j = job("key:\n  files: [Gemfile.lock, ./package-lock.json]\n  prefix: $CI_COMMIT_REF_SLUG\npaths: [vendor/]");
        assert_eq!(key_files(&j), ["Gemfile.lock", "package-lock.json"]);
        let commits: BTreeMap<String, String> = [
            ("Gemfile.lock".to_string(), "bbb".to_string()),
            ("package-lock.json".to_string(), "aaa".to_string()),
        ]
        .into();
        let c = plan_caches(&j, &vars(false), &commits, PathBuf::new()).unwrap();
        // sha1("aaa-bbb")
        assert_eq!(
            c[0].key,
            "main-196bd4cf38efb68d07681953a3a62bf7ff13a19e-non_protected"
        );
        let none = plan_caches(&j, &vars(false), &BTreeMap::new(), PathBuf::new()).unwrap();
        assert_eq!(none[0].key, "main-default-non_protected");
    }

    #[test]
    fn keys_stay_inside_their_folder() {
        let c = CachePlan {
            key: String::new(),
            fallback_keys: vec![],
            paths: vec![],
            untracked: false,
            when: SaveWhen::OnSuccess,
            pull: true,
            push: true,
            store: PathBuf::from("/s"),
        };
        assert_eq!(
            c.archive("a/../b"),
            PathBuf::from("/s/a%2F..%2Fb/cache.tar")
        );
        assert_eq!(c.archive(".."), PathBuf::from("/s/%%2E%2E/cache.tar"));
        assert_eq!(c.archive("main-1"), PathBuf::from("/s/main-1/cache.tar"));
    }
}

//! `only:`/`except:` as GitLab reads them: a list is `refs`; a mapping has `refs`,
//! `variables`, `changes`, `kubernetes`. A job is in the pipeline when every `only` policy
//! holds and no `except` policy does. A job with neither `rules` nor `only` gets GitLab's
//! default `only: [branches, tags]` (so it is not in merge request pipelines).
//!
//! Refs: the keywords (`branches`, `tags`, `merge_requests`, `pushes`, `schedules`, `web`,
//! `api`, `triggers`, `pipelines`, `chat`, `external`, `external_pull_requests`), a ref name,
//! or `/regex/flags` matched against the ref name; `name@group/project` applies only to that
//! project. Variables are the pipeline's and the job's (`CI_COMMIT_BRANCH` set means a branch
//! pipeline, `CI_COMMIT_TAG` a tag pipeline).

use crate::load::expression;
use crate::load::rules::{self as conditions, Project};
use crate::load::yaml::{self, Mapping, Value};

const DEFAULT_ONLY: &[&str] = &["branches", "tags"];

/// Why `only`/`except` leave the job out, or `None` when it is in the pipeline.
pub fn decide(
    only: Option<&Value>,
    except: Option<&Value>,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<Option<String>, String> {
    let default_only: Value =
        Value::Sequence(DEFAULT_ONLY.iter().map(|s| Value::from(*s)).collect());
    let only = only.unwrap_or(&default_only);
    let only = policy(only, "only")?;
    for (kind, holds) in evaluate(&only, vars, project).map_err(|m| format!("only: {m}"))? {
        if !holds {
            return Ok(Some(format!("only: {kind} do not match")));
        }
    }
    if let Some(except) = except {
        let except = policy(except, "except")?;
        for (kind, holds) in evaluate(&except, vars, project).map_err(|m| format!("except: {m}"))? {
            if holds {
                return Ok(Some(format!("except: {kind} match")));
            }
        }
    }
    Ok(None)
}

/// A policy as a mapping (`refs`, `variables`, `changes`, `kubernetes`).
fn policy(value: &Value, what: &str) -> Result<Mapping, String> {
    match value {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(m) => {
            if let Some(k) = m
                .keys()
                .filter_map(Value::as_str)
                .find(|k| !["refs", "variables", "changes", "kubernetes"].contains(k))
            {
                return Err(format!("{what} config contains unknown keys: {k}"));
            }
            Ok(m.clone())
        }
        other => {
            let mut m = Mapping::new();
            m.insert(Value::from("refs"), other.clone());
            Ok(m)
        }
    }
}

/// Each policy present with whether it holds, in GitLab's order.
fn evaluate(
    policy: &Mapping,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<Vec<(&'static str, bool)>, String> {
    let mut out = Vec::new();
    if let Some(refs) = policy.get("refs") {
        let refs = strings(refs, "refs")?;
        out.push(("refs", refs.iter().any(|r| ref_matches(r, vars))));
    }
    if let Some(v) = policy.get("variables") {
        let exprs = strings(v, "variables")?;
        let mut any = false;
        for e in &exprs {
            any |= expression::parse(e)
                .map_err(|m| format!("variables {m}"))?
                .truthful(vars);
        }
        out.push(("variables", any));
    }
    if let Some(changes) = policy.get("changes") {
        let mut rule = Mapping::new();
        rule.insert(Value::from("changes"), changes.clone());
        out.push(("changes", conditions::matches(&rule, vars, project)?));
    }
    // Kubernetes integration cannot be known locally: counted as active.
    if policy.contains_key("kubernetes") {
        out.push(("kubernetes", true));
    }
    Ok(out)
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Sequence(s) => s
            .iter()
            .map(|x| yaml::scalar_string(x).ok_or(format!("{what} must be a list of strings")))
            .collect(),
        other => yaml::scalar_string(other)
            .map(|s| vec![s])
            .ok_or(format!("{what} must be a list of strings")),
    }
}

fn ref_matches(pattern: &str, vars: &dyn Fn(&str) -> Option<String>) -> bool {
    let source = vars("CI_PIPELINE_SOURCE").unwrap_or_else(|| "push".into());
    let is_mr = source == "merge_request_event";
    let keyword = match pattern {
        "branches" => Some(!is_mr && vars("CI_COMMIT_BRANCH").is_some()),
        "tags" => Some(vars("CI_COMMIT_TAG").is_some()),
        "merge_requests" => Some(is_mr),
        "external_pull_requests" => Some(source == "external_pull_request_event"),
        "pushes" => Some(source == "push"),
        "schedules" => Some(source == "schedule"),
        "triggers" => Some(source == "trigger"),
        "pipelines" => Some(source == "pipeline" || source == "parent_pipeline"),
        "web" | "api" | "chat" | "external" => Some(source == pattern),
        _ => None,
    };
    if let Some(k) = keyword {
        return k;
    }
    // `ref@group/project`: the ref part only counts in that project.
    let (name, path) = match pattern.rsplit_once('@') {
        Some((n, p)) if !n.is_empty() && p.contains('/') => (n, Some(p)),
        _ => (pattern, None),
    };
    if let Some(path) = path {
        if vars("CI_PROJECT_PATH").as_deref() != Some(path) {
            return false;
        }
    }
    let ref_name = vars("CI_COMMIT_REF_NAME").unwrap_or_default();
    match expression::pattern_of(name) {
        Some(re) if name.starts_with('/') => re.is_match(&ref_name),
        _ => name == ref_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rules::Nowhere;

    fn on(
        branch: Option<&'static str>,
        tag: Option<&'static str>,
        source: &'static str,
    ) -> impl Fn(&str) -> Option<String> {
        move |k: &str| match k {
            "CI_COMMIT_BRANCH" => branch.map(str::to_string),
            "CI_COMMIT_TAG" => tag.map(str::to_string),
            "CI_COMMIT_REF_NAME" => branch.or(tag).map(str::to_string),
            "CI_PIPELINE_SOURCE" => Some(source.to_string()),
            "CI_PROJECT_PATH" => Some("group/proj".into()),
            "DEPLOY" => Some("yes".into()),
            _ => None,
        }
    }

    fn reason(only: &str, except: &str, vars: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let p = |s: &str| (!s.is_empty()).then(|| serde_yaml::from_str::<Value>(s).unwrap());
        let (o, e) = (p(only), p(except));
        decide(o.as_ref(), e.as_ref(), vars, &Nowhere).unwrap()
    }

    #[test]
    fn default_is_branches_and_tags() {
        assert_eq!(reason("", "", &on(Some("main"), None, "push")), None);
        assert_eq!(reason("", "", &on(None, Some("v1"), "push")), None);
        assert_eq!(
            reason("", "", &on(Some("feature"), None, "merge_request_event")),
            Some("only: refs do not match".into())
        );
    }

    #[test]
    fn refs() {
        let main = on(Some("main"), None, "push");
        let feature = on(Some("feature/x"), None, "push");
        let tag = on(None, Some("v1.2"), "push");
        assert_eq!(reason("[main]", "", &main), None);
        assert!(reason("[main]", "", &feature).is_some());
        assert_eq!(reason("['/^feature\\//']", "", &feature), None);
        assert_eq!(reason("['/^FEATURE/i']", "", &feature), None);
        assert!(reason("[tags]", "", &main).is_some());
        assert_eq!(reason("[tags]", "", &tag), None);
        assert_eq!(
            reason(
                "[merge_requests]",
                "",
                &on(Some("f"), None, "merge_request_event")
            ),
            None
        );
        assert_eq!(
            reason("[schedules]", "", &on(Some("main"), None, "schedule")),
            None
        );
        assert_eq!(reason("['main@group/proj']", "", &main), None);
        assert!(reason("['main@other/proj']", "", &main).is_some());
        assert_eq!(
            reason("", "[main]", &main),
            Some("except: refs match".into())
        );
        assert_eq!(reason("", "[tags]", &main), None);
    }

    #[test]
    fn variables_and_mappings() {
        let main = on(Some("main"), None, "push");
        assert_eq!(
            reason("{variables: ['$DEPLOY == \"yes\"']}", "", &main),
            None
        );
        assert_eq!(
            reason("{refs: [main], variables: [$NOPE]}", "", &main),
            Some("only: variables do not match".into())
        );
        assert_eq!(
            reason("", "{variables: [$NOPE, $DEPLOY]}", &main),
            Some("except: variables match".into())
        );
        // Changes unknown (no base): they match.
        assert_eq!(reason("{changes: [x]}", "", &main), None);
        assert!(decide(
            Some(&serde_yaml::from_str("{refz: [main]}").unwrap()),
            None,
            &main,
            &Nowhere
        )
        .unwrap_err()
        .contains("only config contains unknown keys: refz"));
    }
}

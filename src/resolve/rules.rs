//! A job's `rules:` as GitLab evaluates them when it creates the pipeline: the first rule
//! whose conditions hold decides; `when: never` or no matching rule leaves the job out.
//! A matching rule's `when`, `allow_failure` (incl. `exit_codes`), `variables`, `needs` and
//! `interruptible` replace the job's.

use crate::load::rules::{self as conditions, Project};
use crate::load::yaml::{self, Mapping, Value};
use crate::model::{AllowFailure, Variable, When};
use crate::resolve::job_model;

/// Keys a `rules:` entry may have (GitLab's `Entry::Rules::Rule`).
pub const RULE_KEYS: &[&str] = &[
    "if",
    "changes",
    "exists",
    "when",
    "start_in",
    "allow_failure",
    "variables",
    "needs",
    "interruptible",
];

/// What the matching rule says (`None`: the rule leaves it to the job).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matched {
    /// 1-based.
    pub index: usize,
    pub when: Option<When>,
    pub allow_failure: Option<AllowFailure>,
    pub variables: Vec<Variable>,
    pub needs: Option<Value>,
    pub interruptible: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Included(Matched),
    /// The reason, as `cijob list --all` shows it.
    Excluded(String),
}

/// Evaluate `rules` (a list of mappings, already flattened) against the variables and the
/// project. Errors name the rule (`rule 2: ...`).
pub fn decide(
    rules: &Value,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<Decision, String> {
    let Value::Sequence(list) = rules else {
        return Err("rules must be a list".into());
    };
    for (i, rule) in list.iter().enumerate() {
        let index = i + 1;
        let at = |m: String| format!("rules: rule {index}: {m}");
        let Value::Mapping(rule) = rule else {
            return Err(at("must be a mapping".into()));
        };
        let unknown: Vec<String> = rule
            .keys()
            .filter_map(yaml::scalar_string)
            .filter(|k| !RULE_KEYS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(at(format!(
                "config contains unknown keys: {}",
                unknown.join(", ")
            )));
        }
        if !conditions::matches(rule, vars, project).map_err(at)? {
            continue;
        }
        let when = match rule.get("when") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_when(v).map_err(at)?),
        };
        if when == Some(When::Never) {
            return Ok(Decision::Excluded(format!("rule {index}: when: never")));
        }
        return Ok(Decision::Included(
            parse_matched(index, rule, when).map_err(at)?,
        ));
    }
    Ok(Decision::Excluded("rules: no rule matched".into()))
}

fn parse_when(v: &Value) -> Result<When, String> {
    yaml::scalar_string(v)
        .and_then(|s| When::parse(&s))
        .ok_or_else(|| {
            "when must be one of on_success, on_failure, always, manual, delayed, never".into()
        })
}

fn parse_matched(index: usize, rule: &Mapping, when: Option<When>) -> Result<Matched, String> {
    let allow_failure = match rule.get("allow_failure") {
        None | Some(Value::Null) => None,
        Some(v) => Some(job_model::allow_failure(v).map_err(|m| format!("allow_failure {m}"))?),
    };
    let variables = match rule.get("variables") {
        None => vec![],
        Some(v) => job_model::variables(v).map_err(|m| format!("variables: {m}"))?,
    };
    let interruptible = match rule.get("interruptible") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_bool().ok_or("interruptible must be true or false")?),
    };
    Ok(Matched {
        index,
        when,
        allow_failure,
        variables,
        needs: rule.get("needs").cloned(),
        interruptible,
    })
}

/// The job's `when` and `allow_failure` as GitLab settles them. `job_*` are the job-level
/// keywords as written (`None`: not set), `rule_*` the matching rule's.
///
/// `when`: the rule's, else the job's, else `on_success`. `allow_failure`: the rule's, else
/// the job's, else true only for a job-level `when: manual` (GitLab's `ignored?`); so a
/// rule's own `when: manual` is not allowed to fail unless it says so.
pub fn settle(
    job_when: Option<When>,
    job_allow_failure: Option<&AllowFailure>,
    rule_when: Option<When>,
    rule_allow_failure: Option<&AllowFailure>,
) -> (When, AllowFailure) {
    let when = rule_when.or(job_when).unwrap_or(When::OnSuccess);
    let allow_failure = rule_allow_failure.or(job_allow_failure).cloned().unwrap_or(
        if job_when == Some(When::Manual) {
            AllowFailure::Yes
        } else {
            AllowFailure::No
        },
    );
    (when, allow_failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rules::{push_on_main as vars, Nowhere};

    fn decide_yaml(y: &str) -> Result<Decision, String> {
        let v: Value = serde_yaml::from_str(y).unwrap();
        decide(&v, &vars, &Nowhere)
    }

    fn included(y: &str) -> Matched {
        match decide_yaml(y).unwrap() {
            Decision::Included(m) => m,
            Decision::Excluded(r) => panic!("excluded: {r}"),
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let m = included(
            "[{if: '$CI_PIPELINE_SOURCE == \"merge_request_event\"', when: never},
              {if: '$CI_COMMIT_BRANCH == \"main\"', when: manual, allow_failure: {exit_codes: [3, 4]},
               variables: {DEPLOY_ENV: staging}, needs: [build], interruptible: true},
              {when: always}]",
        );
        assert_eq!(m.index, 2);
        assert_eq!(m.when, Some(When::Manual));
        assert_eq!(m.allow_failure, Some(AllowFailure::ExitCodes(vec![3, 4])));
        assert_eq!(m.variables, [Variable::new("DEPLOY_ENV", "staging")]);
        assert_eq!(m.needs, Some(serde_yaml::from_str("[build]").unwrap()));
        assert_eq!(m.interruptible, Some(true));
        assert_eq!(included("[{if: $NOPE}, {}]").index, 2);
    }

    #[test]
    fn exclusion_reasons() {
        assert_eq!(
            decide_yaml("[{if: $CI_COMMIT_TAG}]").unwrap(),
            Decision::Excluded("rules: no rule matched".into())
        );
        assert_eq!(
            decide_yaml("[{if: $CI_COMMIT_TAG}, {if: $CI_COMMIT_BRANCH, when: never}]").unwrap(),
            Decision::Excluded("rule 2: when: never".into())
        );
    }

    #[test]
    fn errors_name_the_rule() {
        let e = decide_yaml("[{if: $CI_COMMIT_TAG}, {if: '$A ='}]").unwrap_err();
        assert!(
            e.starts_with("rules: rule 2: if invalid expression syntax"),
            "{e}"
        );
        let e = decide_yaml("[{iff: $A}]").unwrap_err();
        assert_eq!(e, "rules: rule 1: config contains unknown keys: iff");
        let e = decide_yaml("[{when: sometimes}]").unwrap_err();
        assert!(e.contains("rule 1: when must be one of"), "{e}");
    }

    /// Job when, job allow_failure, rule when, rule allow_failure, expected when and allow_failure.
    type Row<'a> = (
        Option<When>,
        Option<&'a AllowFailure>,
        Option<When>,
        Option<&'a AllowFailure>,
        When,
        AllowFailure,
    );

    /// GitLab's defaults for `when` and `allow_failure`, with and without rules.
    #[test]
    fn when_and_allow_failure_table() {
        use AllowFailure::{ExitCodes, No, Yes};
        use When::*;
        let codes = ExitCodes(vec![1]);
        #[rustfmt::skip]
        let table: &[Row] = &[
            // no rules (or a rule that sets nothing): the job's keywords
            (None, None, None, None, OnSuccess, No),
            (Some(Manual), None, None, None, Manual, Yes),
            (Some(Manual), Some(&No), None, None, Manual, No),
            (Some(Always), None, None, None, Always, No),
            (Some(Delayed), None, None, None, Delayed, No),
            (None, Some(&Yes), None, None, OnSuccess, Yes),
            (None, Some(&codes), None, None, OnSuccess, codes.clone()),
            // the rule's when: manual is not allowed to fail by default
            (None, None, Some(Manual), None, Manual, No),
            (None, None, Some(Manual), Some(&Yes), Manual, Yes),
            (None, Some(&Yes), Some(Manual), None, Manual, Yes),
            // a job-level when: manual keeps allow_failure true whatever the rule's when
            (Some(Manual), None, Some(Manual), None, Manual, Yes),
            (Some(Manual), None, Some(OnSuccess), None, OnSuccess, Yes),
            (Some(Manual), None, None, Some(&No), Manual, No),
            // the rule's allow_failure wins over the job's
            (None, Some(&Yes), None, Some(&No), OnSuccess, No),
            (None, Some(&No), Some(Always), Some(&codes), Always, codes.clone()),
            (Some(OnFailure), None, None, None, OnFailure, No),
        ];
        for (jw, ja, rw, ra, want_when, want_af) in table {
            assert_eq!(
                settle(*jw, *ja, *rw, *ra),
                (*want_when, want_af.clone()),
                "job when {jw:?} af {ja:?}, rule when {rw:?} af {ra:?}"
            );
        }
    }
}

//! `workflow:` as GitLab evaluates it before any job: whether the pipeline is created
//! (`rules:`; no matching rule or `when: never` creates none), the matching rule's
//! `variables` (they sit between the top-level variables and the job's), and `name`.

use crate::expand;
use crate::load::rules::{self as conditions, Project};
use crate::load::yaml::{self, Value};
use crate::model::Variable;
use crate::resolve::job_model;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workflow {
    /// Why no pipeline is created (`rule 2: when: never`, `no rule matched`).
    pub not_created: Option<String>,
    pub variables: Vec<Variable>,
    /// The raw `workflow:name` (expanded by the caller once the variables are known).
    pub name: Option<String>,
}

/// Evaluate `workflow:` (`None` or null: a pipeline with no workflow rules).
pub fn evaluate(
    workflow: Option<&Value>,
    vars: &dyn Fn(&str) -> Option<String>,
    project: &dyn Project,
) -> Result<Workflow, String> {
    let mut out = Workflow::default();
    let workflow = match workflow {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Mapping(m)) => m,
        Some(_) => return Err("workflow config should be a hash".into()),
    };
    if let Some(k) = workflow
        .keys()
        .filter_map(Value::as_str)
        .find(|k| !["rules", "name", "auto_cancel"].contains(k))
    {
        return Err(format!("workflow config contains unknown keys: {k}"));
    }
    out.name = workflow.get("name").and_then(yaml::scalar_string);
    let rules = match workflow.get("rules") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Sequence(s)) => s,
        Some(_) => return Err("workflow:rules config should be an array".into()),
    };
    for (i, rule) in rules.iter().enumerate() {
        let index = i + 1;
        let at = |m: String| format!("workflow:rules: rule {index}: {m}");
        let Value::Mapping(rule) = rule else {
            return Err(at("must be a mapping".into()));
        };
        if !conditions::matches(rule, vars, project).map_err(at)? {
            continue;
        }
        match rule.get("when").and_then(yaml::scalar_string).as_deref() {
            None | Some("always") => {}
            Some("never") => {
                out.not_created = Some(format!("rule {index}: when: never"));
                return Ok(out);
            }
            Some(other) => {
                return Err(at(format!(
                    "when must be `always` or `never`, not `{other}`"
                )))
            }
        }
        if let Some(v) = rule.get("variables") {
            out.variables = job_model::variables(v).map_err(|m| at(format!("variables: {m}")))?;
        }
        return Ok(out);
    }
    out.not_created = Some("no rule matched".into());
    Ok(out)
}

/// `workflow:name` with the pipeline's variables expanded.
pub fn name(raw: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    expand::expand(raw, vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rules::{push_on_main as vars, Nowhere};

    fn eval(y: &str) -> Result<Workflow, String> {
        let v: Value = serde_yaml::from_str(y).unwrap();
        evaluate(Some(&v), &vars, &Nowhere)
    }

    #[test]
    fn rules_create_or_not() {
        let w = eval(
            "{name: 'Pipeline for $CI_COMMIT_BRANCH', rules: [{if: $CI_COMMIT_TAG, when: never},
              {if: $CI_COMMIT_BRANCH, variables: {DEPLOY: 'yes', LEVEL: 2}}]}",
        )
        .unwrap();
        assert_eq!(w.not_created, None);
        assert_eq!(
            w.variables,
            [Variable::new("DEPLOY", "yes"), Variable::new("LEVEL", "2")]
        );
        assert_eq!(name(w.name.as_deref().unwrap(), &vars), "Pipeline for main");
        assert_eq!(
            eval("{rules: [{if: $CI_COMMIT_BRANCH, when: never}, {when: always}]}")
                .unwrap()
                .not_created
                .as_deref(),
            Some("rule 1: when: never")
        );
        assert_eq!(
            eval("{rules: [{if: $CI_COMMIT_TAG}]}")
                .unwrap()
                .not_created
                .as_deref(),
            Some("no rule matched")
        );
        assert_eq!(eval("{name: x}").unwrap().not_created, None);
    }

    #[test]
    fn errors() {
        assert!(eval("{rules: [{when: manual}]}")
            .unwrap_err()
            .contains("rule 1: when must be"));
        assert!(eval("{rulez: []}")
            .unwrap_err()
            .contains("workflow config contains unknown keys: rulez"));
        assert!(eval("{rules: [{if: '$A =='}]}")
            .unwrap_err()
            .contains("invalid expression syntax"));
    }
}

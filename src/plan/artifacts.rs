//! A job's `artifacts:` as the runner collects them after the script, and the artifacts it
//! receives before the script (with their dotenv variables), as the store holds them.

use std::path::PathBuf;

use crate::load::yaml::{self, Value};
use crate::model::{Job, Variable};
use crate::plan::script::shell_escape;
use crate::plan::variables::expand_name;

/// When something is saved after the script (`artifacts:when`, `cache:when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveWhen {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

impl SaveWhen {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "on_success" => Some(Self::OnSuccess),
            "on_failure" => Some(Self::OnFailure),
            "always" => Some(Self::Always),
            _ => None,
        }
    }

    /// `when:` of `artifacts:` or `cache:` (`what` names it in the error).
    pub fn from_value(value: Option<&Value>, what: &str) -> Result<Self, String> {
        match value.and_then(yaml::scalar_string) {
            None => Ok(Self::OnSuccess),
            Some(w) => Self::parse(&w).ok_or_else(|| {
                format!("{what} must be on_success, on_failure or always, not \"{w}\"")
            }),
        }
    }

    pub fn applies(self, succeeded: bool) -> bool {
        match self {
            Self::OnSuccess => succeeded,
            Self::OnFailure => !succeeded,
            Self::Always => true,
        }
    }
}

/// What to collect after the script, and where it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactsPlan {
    /// Variable-expanded, as the runner expands them.
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub untracked: bool,
    pub when: SaveWhen,
    /// `reports:dotenv` files.
    pub dotenv: Vec<String>,
    /// The job's folder in the store.
    pub store: PathBuf,
}

/// What the store holds of one job's last run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The tar of its files (relative to the project directory); `None` when it had none.
    pub archive: Option<PathBuf>,
    /// `YYYY-MM-DD HH:MM UTC`, to say which run the files come from.
    pub finished: String,
    pub files: u64,
    pub size: u64,
    pub dotenv: Vec<(String, String)>,
    /// dotenv keys whose values held a secret of that run: masked here too.
    pub masked: Vec<String>,
}

/// A job whose artifacts this one receives, and what the store has of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub job: String,
    /// Its folder in the store (where a chain run before this one leaves its files).
    pub dir: PathBuf,
    pub stored: Option<Stored>,
}

impl Received {
    /// The dotenv variables, in the order jobs are received (a later job wins).
    pub fn variables(received: &[Received]) -> Vec<Variable> {
        received
            .iter()
            .filter_map(|r| r.stored.as_ref())
            .flat_map(|s| {
                s.dotenv.iter().map(|(k, v)| Variable {
                    masked: s.masked.contains(k),
                    ..Variable::new(k.clone(), v.clone())
                })
            })
            .collect()
    }
}

/// `artifacts:` of the job; `None` when it has none or nothing to collect.
pub fn plan_artifacts(
    job: &Job,
    variables: &[Variable],
    store: PathBuf,
) -> Result<Option<ArtifactsPlan>, String> {
    let Some(value) = job.artifacts.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let m = value.as_mapping().ok_or_else(|| {
        format!(
            "artifacts must be a mapping, not {}",
            yaml::type_name(value)
        )
    })?;
    let expand = |list: Vec<String>| -> Vec<String> {
        list.iter().map(|p| expand_name(p, variables)).collect()
    };
    let paths = expand(strings(m.get("paths"), "artifacts:paths")?);
    let exclude = expand(strings(m.get("exclude"), "artifacts:exclude")?);
    let untracked = flag(m.get("untracked"), "artifacts:untracked")?;
    let when = SaveWhen::from_value(m.get("when"), "artifacts:when")?;
    let dotenv = match m.get("reports").and_then(Value::as_mapping) {
        Some(r) => expand(strings(r.get("dotenv"), "artifacts:reports:dotenv")?),
        None => Vec::new(),
    };
    if paths.is_empty() && !untracked && dotenv.is_empty() {
        return Ok(None);
    }
    Ok(Some(ArtifactsPlan {
        paths,
        exclude,
        untracked,
        when,
        dotenv,
        store,
    }))
}

/// Whether a job hands artifacts to the jobs after it: what `plan_artifacts` collects
/// (`expire_in` or a test report alone stores nothing here). A malformed `artifacts:` counts:
/// the job's own run reports it.
pub fn hands_over(job: &Job) -> bool {
    !matches!(plan_artifacts(job, &[], PathBuf::new()), Ok(None))
}

/// A string or a list of strings (`None`: empty).
pub fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|v| match v {
                Value::Sequence(_) | Value::Mapping(_) => {
                    Err(format!("{what} must be a list of strings"))
                }
                v => Ok(yaml::scalar_string(v).unwrap_or_default()),
            })
            .collect(),
        Some(v) => yaml::scalar_string(v)
            .map(|s| vec![s])
            .ok_or_else(|| format!("{what} must be a list of strings")),
    }
}

pub fn flag(value: Option<&Value>, what: &str) -> Result<bool, String> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{what} must be true or false")),
    }
}

/// Which secrets a dotenv value holds: such a variable stays masked in the jobs that
/// receive it.
pub fn masked_keys(vars: &[(String, String)], secrets: &[String]) -> Vec<String> {
    vars.iter()
        .filter(|(_, v)| {
            secrets
                .iter()
                .any(|s| !s.is_empty() && v.contains(s.as_str()))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The warning for received jobs the store has nothing of: which, and how to get them.
pub fn missing_message(job: &str, missing: &[&str]) -> String {
    let quoted: Vec<String> = missing.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        "No local artifacts of {} (never run here, or removed by `cijob clean --artifacts`): `cijob run {} --needs` runs {} first, then this job",
        quoted.join(", "),
        shell_escape(job),
        if missing.len() == 1 { "it" } else { "them" }
    )
}

/// `CI_JOB_STATUS`-like word for the sections: `successful` / `failed`.
pub fn outcome_word(succeeded: bool) -> &'static str {
    if succeeded {
        "successful"
    } else {
        "failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(artifacts: &str) -> Job {
        Job {
            name: "build".into(),
            artifacts: Some(serde_yaml::from_str(artifacts).unwrap()),
            ..Job::default()
        }
    }

    #[test]
    fn only_what_stores_something_hands_over() {
        assert!(hands_over(&job("paths: [out/]")));
        assert!(hands_over(&job("untracked: true")));
        assert!(hands_over(&job("reports: {dotenv: build.env}")));
        assert!(!hands_over(&job("expire_in: 1 week")));
        assert!(!hands_over(&job("reports: {junit: report.xml}")));
        assert!(!hands_over(&Job::default()));
        // Malformed: counted, the job's own run says what is wrong.
        assert!(hands_over(&job("[not, a, mapping]")));
    }

    #[test]
    fn paths_exclude_untracked_when_and_dotenv() {
        let vars = vec![Variable::new("OUT", "dist")];
        let p = plan_artifacts(
            &job("paths: [$OUT/app, 'docs/*.md']\nexclude: [dist/*.o]\nuntracked: true\nwhen: on_failure\nexpire_in: 1 week\nreports:\n  dotenv: build.env\n  junit: report.xml\n"),
            &vars,
            PathBuf::from("/store/build"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.paths, ["dist/app", "docs/*.md"]);
        assert_eq!(p.exclude, ["dist/*.o"]);
        assert!(p.untracked);
        assert_eq!(p.when, SaveWhen::OnFailure);
        assert_eq!(p.dotenv, ["build.env"]);
    }

    #[test]
    fn nothing_to_collect_is_no_plan_and_bad_values_say_which_key() {
        assert_eq!(
            plan_artifacts(&job("expire_in: 1h"), &[], PathBuf::new()).unwrap(),
            None
        );
        let e =
            plan_artifacts(&job("paths: [a]\nwhen: sometimes"), &[], PathBuf::new()).unwrap_err();
        assert!(e.contains("artifacts:when"), "{e}");
        let e = plan_artifacts(&job("paths: {a: b}"), &[], PathBuf::new()).unwrap_err();
        assert!(e.contains("artifacts:paths"), "{e}");
    }

    #[test]
    fn missing_artifacts_name_the_jobs_and_the_way_to_get_them() {
        let m = missing_message("test: [a]", &["build", "lint"]);
        assert!(m.contains("\"build\", \"lint\""), "{m}");
        assert!(
            m.contains("`cijob run $'test: [a]' --needs` runs them first"),
            "{m}"
        );
    }

    #[test]
    fn save_when_follows_the_job_outcome() {
        assert!(SaveWhen::OnSuccess.applies(true));
        assert!(!SaveWhen::OnSuccess.applies(false));
        assert!(SaveWhen::OnFailure.applies(false));
        assert!(!SaveWhen::OnFailure.applies(true));
        assert!(SaveWhen::Always.applies(false));
    }

    #[test]
    fn dotenv_variables_of_received_jobs_keep_their_mask() {
        let stored = |vars: &[(&str, &str)], masked: &[&str]| Stored {
            archive: None,
            finished: String::new(),
            files: 0,
            size: 0,
            dotenv: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            masked: masked.iter().map(|s| s.to_string()).collect(),
        };
        let vars = Received::variables(&[
            Received {
                job: "a".into(),
                dir: PathBuf::new(),
                stored: Some(stored(&[("V", "1"), ("TOKEN", "s3cret")], &["TOKEN"])),
            },
            Received {
                job: "gone".into(),
                dir: PathBuf::new(),
                stored: None,
            },
        ]);
        assert_eq!(vars.len(), 2);
        assert!(!vars[0].masked && vars[1].masked);
        assert_eq!(
            masked_keys(
                &[("A".into(), "x-s3cret".into()), ("B".into(), "ok".into())],
                &["s3cret".into()]
            ),
            ["A"]
        );
    }
}

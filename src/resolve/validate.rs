//! What GitLab refuses when it creates a pipeline, in GitLab's words: unknown job keys,
//! `needs` naming a job that is not defined, runs in a later stage, or is not in the
//! pipeline (rules, only/except), and `dependencies` not in an earlier stage. (A stage that
//! is not in `stages` is checked where the job's stage is read, in `pipeline`.)

use crate::load::yaml::{self, Mapping, Value};
use crate::model::Job;
use crate::resolve::needs::{dependencies, parse_value, Need};

/// Keys a job may have (GitLab's `Entry::Job::ALLOWED_KEYS` and the processable keys, plus
/// the Premium ones cijob ignores: `secrets`, `dast_configuration`, `identity`).
pub const JOB_KEYS: &[&str] = &[
    "after_script",
    "allow_failure",
    "artifacts",
    "before_script",
    "cache",
    "coverage",
    "dast_configuration",
    "dependencies",
    "environment",
    "except",
    "extends",
    "hooks",
    "id_tokens",
    "identity",
    "image",
    "inherit",
    "interruptible",
    "manual_confirmation",
    "needs",
    "only",
    "pages",
    "parallel",
    "publish",
    "release",
    "resource_group",
    "retry",
    "rules",
    "run",
    "script",
    "secrets",
    "services",
    "stage",
    "start_in",
    "tags",
    "timeout",
    "trigger",
    "variables",
    "when",
];

/// The keys of a job GitLab does not know, in the job's order.
pub fn unknown_keys(job: &Mapping) -> Vec<String> {
    job.keys()
        .map(|k| yaml::scalar_string(k).unwrap_or_default())
        .filter(|k| !JOB_KEYS.contains(&k.as_str()))
        .collect()
}

/// `jobs:NAME config contains unknown keys: a, b`.
pub fn unknown_keys_message(name: &str, unknown: &[String]) -> String {
    format!(
        "jobs:{name} config contains unknown keys: {}",
        unknown.join(", ")
    )
}

/// `jobs:NAME config key may not be used with `rules`: only, except` (GitLab's wording).
pub fn rules_conflicts(name: &str, job: &Mapping) -> Option<String> {
    if !job.contains_key("rules") {
        return None;
    }
    let keys: Vec<&str> = ["only", "except", "start_in"]
        .into_iter()
        .filter(|k| job.contains_key(*k))
        .collect();
    (!keys.is_empty()).then(|| {
        format!(
            "jobs:{name} config key may not be used with `rules`: {}",
            keys.join(", ")
        )
    })
}

/// The entries of a raw `needs:` that name jobs of this pipeline, as written (one per
/// `parallel:matrix` need: GitLab checks the job it names; cross-pipeline and cross-project
/// needs are left out; a malformed list is reported where it is used).
pub fn needs_of(needs: Option<&Value>) -> Vec<Need> {
    let mut jobs = parse_value(needs)
        .ok()
        .flatten()
        .map(|n| n.jobs)
        .unwrap_or_default();
    // The instances of one matrix need become one entry naming the job.
    jobs.dedup_by(|b, a| a.written == b.written && a.job != a.written && b.job != b.written);
    for n in &mut jobs {
        n.job.clone_from(&n.written);
    }
    jobs
}

fn dependencies_of(job: &Job) -> Vec<String> {
    dependencies(job).ok().flatten().unwrap_or_default()
}

/// The configuration checks (GitLab's YAML processor, before rules): every need (the job's
/// and its rules') and dependency names a defined job of the current or a prior stage, and no
/// job needs another twice. `others` are jobs that are not in `jobs` but can be needed
/// (trigger jobs), as (name, stage). `Err((job, message))`.
pub fn references(
    jobs: &[Job],
    stages: &[String],
    others: &[(String, String)],
) -> Result<(), (String, String)> {
    let stage_of = |name: &str| {
        jobs.iter()
            .find(|j| j.answers_to(name))
            .map(|j| j.stage.as_str())
            .or_else(|| {
                others
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| s.as_str())
            })
            .map(|stage| stages.iter().position(|s| s == stage))
    };
    for job in jobs {
        let here = stages.iter().position(|s| *s == job.stage);
        let name = &job.base_name;
        let fail = |m: String| Err((job.name.clone(), m));
        let mut lists = vec![needs_of(job.resolved.get("needs"))];
        if let Some(Value::Sequence(rules)) = job.rules.as_ref() {
            lists.extend(rules.iter().map(|r| needs_of(r.get("needs"))));
        }
        let mut checks: Vec<(String, &str, bool)> = Vec::new();
        for needs in &lists {
            let mut seen: Vec<&str> = Vec::new();
            let mut duplicated: Vec<&str> = Vec::new();
            for n in needs {
                if seen.contains(&n.job.as_str()) && !duplicated.contains(&n.job.as_str()) {
                    duplicated.push(&n.job);
                }
                seen.push(&n.job);
            }
            if !duplicated.is_empty() {
                return fail(format!(
                    "{name} has the following needs duplicated: {}.",
                    duplicated.join(", ")
                ));
            }
            checks.extend(needs.iter().map(|n| (n.job.clone(), "need", n.optional)));
        }
        checks.extend(
            dependencies_of(job)
                .into_iter()
                .map(|d| (d, "dependency", false)),
        );
        for (target, kind, optional) in checks {
            match stage_of(&target) {
                None if optional => {}
                None => return fail(format!("{name} job: undefined {kind}: {target}")),
                // A need of the same stage is fine; a job of a stage not in `stages` never is.
                Some(s) if s.is_none() || here.is_some_and(|h| s > Some(h)) => {
                    return fail(format!(
                        "{name} job: {kind} {target} is not defined in current or prior stages"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The pipeline check (after rules): a job in the pipeline must not need a job that rules,
/// `only` or `except` leave out, unless the need is optional. `triggers` (name, stage) are
/// in the pipeline too.
pub fn needs_in_pipeline(
    jobs: &[Job],
    triggers: &[(String, String)],
) -> Result<(), (String, String)> {
    for job in jobs.iter().filter(|j| j.excluded.is_none()) {
        for need in needs_of(job.needs.as_ref()) {
            let present = jobs
                .iter()
                .any(|j| j.answers_to(&need.job) && j.excluded.is_none())
                || triggers.iter().any(|(n, _)| *n == need.job);
            if !present && !need.optional {
                return Err((
                    job.name.clone(),
                    format!(
                        "'{}' job needs '{n}' job, but '{n}' does not exist in the pipeline. \
                         This might be because of the only, except, or rules keywords. To need \
                         a job that sometimes does not exist in the pipeline, use needs:optional.",
                        job.name,
                        n = need.job
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, stage: &str, extra: &str) -> Job {
        let resolved: Value = serde_yaml::from_str(&format!("{{script: [x], {extra}}}")).unwrap();
        Job {
            name: name.into(),
            base_name: name.into(),
            stage: stage.into(),
            needs: resolved.get("needs").cloned(),
            resolved,
            ..Job::default()
        }
    }

    fn stages() -> Vec<String> {
        [".pre", "build", "test", "deploy", ".post"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn unknown_job_keys() {
        let m: Mapping =
            serde_yaml::from_str("{scirpt: x, script: y, stage: test, artefacts: {}}").unwrap();
        let unknown = unknown_keys(&m);
        assert_eq!(
            unknown_keys_message("test", &unknown),
            "jobs:test config contains unknown keys: scirpt, artefacts"
        );
        let ok: Mapping =
            serde_yaml::from_str("{script: y, rules: [], needs: [], interruptible: true}").unwrap();
        assert!(unknown_keys(&ok).is_empty());
    }

    #[test]
    fn rules_exclude_only_and_except() {
        let m: Mapping = serde_yaml::from_str(
            "{script: y, rules: [{when: always}], only: [main], except: [tags]}",
        )
        .unwrap();
        assert_eq!(
            rules_conflicts("test", &m).as_deref(),
            Some("jobs:test config key may not be used with `rules`: only, except")
        );
        let ok: Mapping =
            serde_yaml::from_str("{script: y, only: [main], except: [tags]}").unwrap();
        assert_eq!(rules_conflicts("test", &ok), None);
    }

    #[test]
    fn needs_forms() {
        let v: Value = serde_yaml::from_str(
            "[a, {job: b, optional: true}, {job: c, artifacts: false}, {pipeline: $X, job: d}, {project: p/q, job: e, ref: main}]",
        )
        .unwrap();
        let names: Vec<(String, bool)> = needs_of(Some(&v))
            .into_iter()
            .map(|n| (n.job, n.optional))
            .collect();
        assert_eq!(
            names,
            [("a".into(), false), ("b".into(), true), ("c".into(), false)]
        );
    }

    #[test]
    fn references_in_gitlab_words() {
        let check = |jobs: &[Job]| references(jobs, &stages(), &[]).map_err(|(_, m)| m);
        let build = job("build", "build", "");
        assert_eq!(
            check(&[build.clone(), job("test", "test", "needs: [build]")]),
            Ok(())
        );
        // the same stage is fine for needs and dependencies
        assert_eq!(
            check(&[build.clone(), job("b2", "build", "needs: [build]")]),
            Ok(())
        );
        assert_eq!(
            check(&[build.clone(), job("b2", "build", "dependencies: [build]")]),
            Ok(())
        );
        assert_eq!(
            check(&[build.clone(), job("test", "test", "needs: [biuld]")]),
            Err("test job: undefined need: biuld".into())
        );
        assert_eq!(
            check(&[job("test", "test", "needs: [{job: x, optional: true}]")]),
            Ok(())
        );
        assert_eq!(
            check(&[
                job("test", "test", "needs: [deploy]"),
                job("deploy", "deploy", "")
            ]),
            Err("test job: need deploy is not defined in current or prior stages".into())
        );
        assert_eq!(
            check(&[
                job("test", "test", "dependencies: [deploy]"),
                job("deploy", "deploy", "")
            ]),
            Err("test job: dependency deploy is not defined in current or prior stages".into())
        );
        assert_eq!(
            check(&[job("test", "test", "dependencies: [nope]")]),
            Err("test job: undefined dependency: nope".into())
        );
        assert_eq!(
            check(&[
                build.clone(),
                job("test", "test", "needs: [build, {job: build}]")
            ]),
            Err("test has the following needs duplicated: build.".into())
        );
        // the needs of rules count too
        let mut ruled = job("test", "test", "");
        ruled.rules = Some(serde_yaml::from_str("[{when: always, needs: [nope]}]").unwrap());
        assert_eq!(
            check(&[ruled]),
            Err("test job: undefined need: nope".into())
        );
        // trigger jobs can be needed
        let t = job("test", "test", "needs: [downstream]");
        assert_eq!(
            references(&[t], &stages(), &[("downstream".into(), "build".into())]),
            Ok(())
        );
        assert_eq!(
            check(&[build, job("test", "test", "dependencies: [build]")]),
            Ok(())
        );
    }

    #[test]
    fn needs_of_excluded_jobs() {
        let mut build = job("build", "build", "");
        build.excluded = Some("rules: no rule matched".into());
        let test = job("test", "test", "needs: [build]");
        let e = needs_in_pipeline(&[build.clone(), test], &[]).unwrap_err();
        assert_eq!(e.0, "test");
        assert!(
            e.1.starts_with(
                "'test' job needs 'build' job, but 'build' does not exist in the pipeline."
            ),
            "{}",
            e.1
        );
        let optional = job("test", "test", "needs: [{job: build, optional: true}]");
        assert_eq!(needs_in_pipeline(&[build.clone(), optional], &[]), Ok(()));
        // an excluded job's own needs do not count
        let mut gone = job("test", "test", "needs: [build]");
        gone.excluded = Some("x".into());
        assert_eq!(needs_in_pipeline(&[build.clone(), gone], &[]), Ok(()));
        // A trigger job is in the pipeline, though not among the jobs a runner runs.
        let on_trigger = job("test", "test", "needs: [downstream]");
        assert_eq!(
            needs_in_pipeline(
                &[build, on_trigger],
                &[("downstream".into(), "deploy".into())]
            ),
            Ok(())
        );
    }
}

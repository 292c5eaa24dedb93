//! Whose artifacts a job receives, as GitLab decides it: the jobs of its `needs` (minus
//! `artifacts: false`, an absent `optional` one skipped), else its `dependencies`, else every
//! job of the earlier stages. And the chain `cijob run JOB --needs` runs before JOB: those
//! jobs, transitively, in pipeline order. Pure: the pipeline in, names out.

use crate::load::yaml::{Mapping, Value};
use crate::model::{Job, Pipeline};
use crate::resolve::parallel;

/// One entry of `needs:` as GitLab reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The job's name (a parallel job's base name stands for all its instances).
    pub job: String,
    /// `job:` as written: with `parallel:matrix`, the base name of the instances in `job`.
    pub written: String,
    pub artifacts: bool,
    pub optional: bool,
}

/// A job's needs: the typed entries and what was left out (cross-project and parent
/// pipeline needs, which only GitLab can serve).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub jobs: Vec<Need>,
    pub ignored: Vec<String>,
}

/// A job whose artifacts this one receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub job: String,
}

/// `needs:` parsed; `None` when the job has none (or `needs: null`), so that dependencies
/// or stages decide. `needs: []` is `Some` and empty: the job receives nothing.
pub fn parse(job: &Job) -> Result<Option<Needs>, String> {
    parse_value(job.needs.as_ref())
}

/// A raw `needs:` value parsed (a job's, or a rule's).
pub fn parse_value(value: Option<&Value>) -> Result<Option<Needs>, String> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Sequence(list)) => list.as_slice(),
        // A single entry is accepted as a list of one, as GitLab does.
        Some(one) => std::slice::from_ref(one),
    };
    let mut needs = Needs::default();
    for entry in list {
        match entry {
            Value::String(name) => needs.jobs.push(Need {
                job: name.clone(),
                written: name.clone(),
                artifacts: true,
                optional: false,
            }),
            Value::Mapping(m) => parse_entry(m, &mut needs)?,
            other => {
                return Err(format!(
                    "needs entries must be job names or mappings with `job:`, not {}",
                    crate::load::yaml::type_name(other)
                ))
            }
        }
    }
    Ok(Some(needs))
}

fn parse_entry(m: &Mapping, needs: &mut Needs) -> Result<(), String> {
    let flag = |key: &str, default: bool| match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("needs:{key} must be true or false")),
    };
    if m.contains_key("project") || m.contains_key("pipeline") {
        let what = m
            .get("job")
            .and_then(crate::load::yaml::scalar_string)
            .unwrap_or_else(|| "a job".to_string());
        let from = if m.contains_key("project") {
            "another project"
        } else {
            "another pipeline"
        };
        needs.ignored.push(format!(
            "needs {what} from {from}: only GitLab can provide its artifacts, cijob skips it"
        ));
        return Ok(());
    }
    let job = m
        .get("job")
        .and_then(crate::load::yaml::scalar_string)
        .ok_or("needs entries that are mappings must name a `job:`")?;
    let artifacts = flag("artifacts", true)?;
    let optional = flag("optional", false)?;
    let matrix = m
        .get("parallel")
        .and_then(Value::as_mapping)
        .and_then(|p| p.get("matrix"));
    match matrix {
        Some(matrix) => {
            let mut wrapper = Mapping::new();
            wrapper.insert(Value::from("matrix"), matrix.clone());
            let instances = parallel::expand(&job, Some(&Value::Mapping(wrapper)))
                .map_err(|e| format!("needs:parallel: {e}"))?
                .unwrap_or_default();
            needs.jobs.extend(instances.into_iter().map(|i| Need {
                job: i.name,
                written: job.clone(),
                artifacts,
                optional,
            }));
        }
        None => needs.jobs.push(Need {
            written: job.clone(),
            job,
            artifacts,
            optional,
        }),
    }
    Ok(())
}

/// The jobs a name in `needs:`/`dependencies:` stands for: the job of that name, else every
/// instance of the parallel job of that base name.
/// Jobs that rules or workflow leave out are not in the pipeline.
fn named<'a>(pipeline: &'a Pipeline, name: &str) -> Vec<&'a Job> {
    if let Some(job) = pipeline.included().find(|j| j.name == name) {
        return vec![job];
    }
    pipeline.included().filter(|j| j.answers_to(name)).collect()
}

/// `dependencies:` from the resolved job: `None` when absent.
pub fn dependencies(job: &Job) -> Result<Option<Vec<String>>, String> {
    match job.resolved.get("dependencies") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|v| {
                crate::load::yaml::scalar_string(v)
                    .ok_or_else(|| "dependencies must be a list of job names".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err("dependencies must be a list of job names".to_string()),
    }
}

/// The jobs whose artifacts `job` receives, in pipeline order, each once. A need the
/// pipeline's jobs do not have gives nothing: the loader's validation (GitLab's) has refused
/// the undefined ones and those rules leave out, so it is a trigger job, an optional need or
/// a need of a job run although rules leave it out. An error names a depended-on job the
/// pipeline does not have.
pub fn sources(pipeline: &Pipeline, job: &Job) -> Result<Vec<Source>, String> {
    let at = |e: String| match &job.location {
        Some(l) => format!("{l}: job \"{}\": {e}", job.name),
        None => format!("job \"{}\": {e}", job.name),
    };
    let mut chosen: Vec<&Job> = Vec::new();
    let deps = dependencies(job).map_err(at)?;
    if let Some(needs) = parse(job).map_err(at)? {
        for need in needs.jobs.iter().filter(|n| n.artifacts) {
            chosen.extend(named(pipeline, &need.job));
        }
        // With both, dependencies narrows what the needs download.
        if let Some(deps) = &deps {
            chosen.retain(|j| deps.iter().any(|d| *d == j.name || *d == j.base_name));
        }
    } else if let Some(deps) = deps {
        for dep in &deps {
            let found = named(pipeline, dep);
            if found.is_empty() {
                return Err(at(format!(
                    "depends on \"{dep}\", which is not a job of this pipeline"
                )));
            }
            chosen.extend(found);
        }
    } else {
        let stage = stage_index(pipeline, &job.stage);
        chosen.extend(
            pipeline
                .included()
                .filter(|j| stage_index(pipeline, &j.stage) < stage),
        );
    }
    Ok(in_pipeline_order(pipeline, chosen)
        .into_iter()
        .map(|j| Source {
            job: j.name.clone(),
        })
        .collect())
}

/// What `cijob run JOB --needs` runs before JOB: every job it receives artifacts from,
/// theirs too, in pipeline order (JOB itself not included).
pub fn chain<'a>(pipeline: &'a Pipeline, job: &Job) -> Result<Vec<&'a Job>, String> {
    let mut seen: Vec<&Job> = Vec::new();
    let mut todo: Vec<String> = sources(pipeline, job)?.into_iter().map(|s| s.job).collect();
    while let Some(name) = todo.pop() {
        let Some(found) = pipeline.job(&name) else {
            continue;
        };
        if found.name == job.name || seen.iter().any(|j| j.name == found.name) {
            continue;
        }
        seen.push(found);
        todo.extend(sources(pipeline, found)?.into_iter().map(|s| s.job));
    }
    Ok(in_pipeline_order(pipeline, seen))
}

fn stage_index(pipeline: &Pipeline, stage: &str) -> usize {
    pipeline
        .stages
        .iter()
        .position(|s| s == stage)
        .unwrap_or(usize::MAX)
}

fn in_pipeline_order<'a>(pipeline: &'a Pipeline, jobs: Vec<&'a Job>) -> Vec<&'a Job> {
    let mut out: Vec<&Job> = pipeline
        .jobs
        .iter()
        .filter(|j| jobs.iter().any(|c| c.name == j.name))
        .collect();
    out.dedup_by(|a, b| a.name == b.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, stage: &str, extra: &str) -> Job {
        let resolved: Value =
            serde_yaml::from_str(if extra.is_empty() { "{}" } else { extra }).unwrap();
        Job {
            name: name.to_string(),
            base_name: name.to_string(),
            stage: stage.to_string(),
            needs: resolved.get("needs").cloned(),
            resolved,
            ..Job::default()
        }
    }

    fn pipeline(jobs: Vec<Job>) -> Pipeline {
        Pipeline {
            file: ".gitlab-ci.yml".into(),
            stages: [".pre", "build", "test", "deploy", ".post"]
                .map(String::from)
                .to_vec(),
            jobs,
            name: None,
        }
    }

    fn names(s: Vec<Source>) -> Vec<String> {
        s.into_iter().map(|s| s.job).collect()
    }

    #[test]
    fn without_needs_or_dependencies_every_earlier_stage() {
        let p = pipeline(vec![
            job("a", "build", ""),
            job("b", "build", ""),
            job("t", "test", ""),
            job("u", "test", ""),
            job("d", "deploy", ""),
        ]);
        assert_eq!(names(sources(&p, &p.jobs[2]).unwrap()), ["a", "b"]);
        assert_eq!(
            names(sources(&p, &p.jobs[4]).unwrap()),
            ["a", "b", "t", "u"]
        );
        assert!(sources(&p, &p.jobs[0]).unwrap().is_empty());
    }

    #[test]
    fn needs_list_artifacts_false_and_optional() {
        let p = pipeline(vec![
            job("a", "build", ""),
            job("b", "build", ""),
            job(
                "t",
                "test",
                "needs: [b, {job: a, artifacts: false}, {job: gone, optional: true}]",
            ),
            job("e", "test", "needs: []"),
            job("m", "test", "needs: [missing]"),
        ]);
        assert_eq!(names(sources(&p, &p.jobs[2]).unwrap()), ["b"]);
        assert!(sources(&p, &p.jobs[3]).unwrap().is_empty());
        // Not a job (a trigger job's name, say): nothing to receive.
        assert!(sources(&p, &p.jobs[4]).unwrap().is_empty());
    }

    #[test]
    fn dependencies_narrow_and_empty_dependencies_receive_nothing() {
        let p = pipeline(vec![
            job("a", "build", ""),
            job("b", "build", ""),
            job("t", "test", "dependencies: [b]"),
            job("n", "test", "dependencies: []"),
            job("both", "test", "needs: [a, b]\ndependencies: [a]"),
        ]);
        assert_eq!(names(sources(&p, &p.jobs[2]).unwrap()), ["b"]);
        assert!(sources(&p, &p.jobs[3]).unwrap().is_empty());
        assert_eq!(names(sources(&p, &p.jobs[4]).unwrap()), ["a"]);
    }

    #[test]
    fn parallel_matrix_needs_name_the_instances() {
        let mut i1 = job("build: [aws, x]", "build", "");
        i1.base_name = "build".into();
        i1.node_index = Some(1);
        let mut i2 = job("build: [gcp, x]", "build", "");
        i2.base_name = "build".into();
        i2.node_index = Some(2);
        let p = pipeline(vec![
            i1,
            i2,
            job(
                "t",
                "test",
                "needs:\n  - job: build\n    parallel:\n      matrix:\n        - P: gcp\n          Q: x\n",
            ),
            job("all", "test", "needs: [build]"),
        ]);
        assert_eq!(names(sources(&p, &p.jobs[2]).unwrap()), ["build: [gcp, x]"]);
        assert_eq!(
            names(sources(&p, &p.jobs[3]).unwrap()),
            ["build: [aws, x]", "build: [gcp, x]"]
        );
    }

    #[test]
    fn cross_project_needs_are_ignored_with_a_note() {
        let j = job(
            "t",
            "test",
            "needs: [{project: g/p, job: b, ref: main}, {pipeline: $X, job: c}]",
        );
        let n = parse(&j).unwrap().unwrap();
        assert!(n.jobs.is_empty());
        assert_eq!(n.ignored.len(), 2);
        assert!(n.ignored[0].contains("needs b from another project"));
    }

    #[test]
    fn jobs_rules_leave_out_give_nothing() {
        let mut skipped = job("skipped", "build", "");
        skipped.excluded = Some("rules: no rule matched".into());
        let p = pipeline(vec![
            job("a", "build", ""),
            skipped,
            job("t", "test", ""),
            job("o", "test", "needs: [{job: skipped, optional: true}, a]"),
            job("m", "test", "needs: [skipped]"),
        ]);
        assert_eq!(names(sources(&p, &p.jobs[2]).unwrap()), ["a"]);
        assert_eq!(names(sources(&p, &p.jobs[3]).unwrap()), ["a"]);
        assert!(sources(&p, &p.jobs[4]).unwrap().is_empty());
    }

    #[test]
    fn chain_is_transitive_in_pipeline_order() {
        let p = pipeline(vec![
            job("lint", "build", ""),
            job("compile", "build", ""),
            job("unit", "test", "needs: [compile]"),
            job(
                "pkg",
                "deploy",
                "needs: [unit, {job: lint, artifacts: false}]",
            ),
        ]);
        let chain: Vec<&str> = chain(&p, &p.jobs[3])
            .unwrap()
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        assert_eq!(chain, ["compile", "unit"]);
        assert!(chain_of(&p, "compile").is_empty());
    }

    fn chain_of<'a>(p: &'a Pipeline, name: &str) -> Vec<&'a Job> {
        chain(p, p.job(name).unwrap()).unwrap()
    }
}

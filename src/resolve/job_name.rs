//! Job names as users type them. GitLab names parallel instances `test: [2.2]`,
//! `deploy: [aws, monitoring]` and `build 2/3`, which need quoting in every shell; each also
//! has a short name, `test:2.2`, `deploy:aws,monitoring` and `build:2`, that needs none.
//! A job literally named like a short name always wins (GitLab allows colons in names).

use crate::model::{Job, Pipeline};

/// What a name typed on the command line stands for.
#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    /// Exactly one job.
    Job(&'a Job),
    /// Several parallel instances, one of which has to be named.
    Choose(Vec<&'a Job>, Choice),
    /// No job and no instance goes by that name.
    Unknown,
}

/// Why a name stands for several instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The base name of a parallel job (`test`).
    BaseName,
    /// A short name that fits several instances (a matrix whose values repeat).
    Ambiguous,
    /// A parallel job's base name with values none of its instances has (`test:9.9`).
    UnknownValues { base: String },
}

/// The short name of a parallel instance (`test:2.2`, `deploy:aws,monitoring`, `build:2`);
/// `None` for a job that is not one.
pub fn short_name(job: &Job) -> Option<String> {
    Some(format!("{}:{}", job.base_name, values(job)?.join(",")))
}

/// An instance's values as its name shows them: the matrix values in GitLab's order, or the
/// node index of `parallel: N`.
fn values(job: &Job) -> Option<Vec<&str>> {
    let index = job.node_index?;
    let rest = job.name.strip_prefix(job.base_name.as_str())?;
    if rest == format!(" {index}/{}", job.node_total) {
        return Some(vec![rest[1..].split('/').next()?]);
    }
    let inner = rest.strip_prefix(": [")?.strip_suffix(']')?;
    Some(split_values(inner))
}

/// Values separated by commas, blanks around them dropped.
fn split_values(text: &str) -> Vec<&str> {
    text.split(',').map(str::trim).collect()
}

/// The job or instances `name` stands for: a job of that name, else the instances of a
/// parallel job of that base name, else the instance whose short name it is (`NAME:VALUES`;
/// blanks after commas and GitLab's brackets are allowed: `test:[2.2]`).
pub fn lookup<'a>(pipeline: &'a Pipeline, name: &str) -> Lookup<'a> {
    if let Some(job) = pipeline.job(name) {
        return Lookup::Job(job);
    }
    let instances = || pipeline.jobs.iter().filter(|j| j.node_index.is_some());
    let of_base: Vec<&Job> = instances().filter(|j| j.base_name == name).collect();
    if !of_base.is_empty() {
        return Lookup::Choose(of_base, Choice::BaseName);
    }
    // Every split at a colon: base names may contain colons themselves (`test:unit:2.2`).
    let typed: Vec<(&str, Vec<&str>)> = name
        .match_indices(':')
        .map(|(i, _)| {
            let rest = name[i + 1..].trim();
            let rest = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(rest);
            (&name[..i], split_values(rest))
        })
        .collect();
    let fits = |job: &Job| {
        typed
            .iter()
            .any(|(base, vals)| job.base_name == *base && values(job).as_ref() == Some(vals))
    };
    let found: Vec<&Job> = instances().filter(|j| fits(j)).collect();
    match found.len() {
        1 => return Lookup::Job(found[0]),
        0 => {}
        _ => return Lookup::Choose(found, Choice::Ambiguous),
    }
    // A known base with unknown values: the longest such base, as it is the most specific.
    let base = typed
        .iter()
        .map(|(base, _)| *base)
        .filter(|base| instances().any(|j| j.base_name == *base))
        .max_by_key(|base| base.len());
    match base {
        Some(base) => Lookup::Choose(
            instances().filter(|j| j.base_name == base).collect(),
            Choice::UnknownValues {
                base: base.to_string(),
            },
        ),
        None => Lookup::Unknown,
    }
}

/// The message for a name that stands for several instances: each with its short name.
pub fn choose_message(name: &str, jobs: &[&Job], why: &Choice) -> String {
    let head = match why {
        Choice::BaseName | Choice::Ambiguous => {
            format!("\"{name}\" matches {} jobs; name one of them:", jobs.len())
        }
        Choice::UnknownValues { base } => format!(
            "\"{base}\" has no instance \"{name}\"; its {} instances are:",
            jobs.len()
        ),
    };
    let lines: Vec<String> = jobs
        .iter()
        .map(|j| match short_name(j) {
            Some(short) => format!("  {}  ({short})", j.name),
            None => format!("  {}", j.name),
        })
        .collect();
    format!("{head}\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::yaml;

    /// The jobs of `text` as the loader builds them (matrix and parallel expanded).
    fn pipeline(text: &str) -> Pipeline {
        let doc = yaml::parse_ci(text, std::path::Path::new("t.yml")).unwrap();
        let mut jobs = Vec::new();
        for (name, job) in doc.config.as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let job = job.as_mapping().unwrap().clone();
            jobs.extend(crate::resolve::job_model::build(name, job, &[], None).unwrap());
        }
        Pipeline {
            file: ".gitlab-ci.yml".into(),
            stages: vec![],
            jobs,
            name: None,
        }
    }

    const PIPELINE: &str = "\
test:
  script: [x]
  parallel:
    matrix:
      - RUBY: ['2.2', '3.3']
deploy:
  script: [x]
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: [gcp, vultr]
        STACK: data
build:
  script: [x]
  parallel: 3
'lint:unit':
  script: [x]
  parallel:
    matrix:
      - V: [a, b]
'test:2.2':
  script: [literal]
plain:
  script: [x]
";

    fn found<'a>(p: &'a Pipeline, name: &str) -> Option<&'a str> {
        match lookup(p, name) {
            Lookup::Job(j) => Some(j.name.as_str()),
            _ => None,
        }
    }

    fn names(jobs: &[&Job]) -> Vec<String> {
        jobs.iter().map(|j| j.name.clone()).collect()
    }

    #[test]
    fn short_names_of_instances() {
        let p = pipeline(PIPELINE);
        let shorts: Vec<(String, Option<String>)> = p
            .jobs
            .iter()
            .map(|j| (j.name.clone(), short_name(j)))
            .collect();
        let expect = |n: &str, s: Option<&str>| (n.to_string(), s.map(str::to_string));
        assert_eq!(
            shorts,
            [
                expect("test: [2.2]", Some("test:2.2")),
                expect("test: [3.3]", Some("test:3.3")),
                expect("deploy: [aws, monitoring]", Some("deploy:aws,monitoring")),
                expect("deploy: [aws, app1]", Some("deploy:aws,app1")),
                expect("deploy: [gcp, data]", Some("deploy:gcp,data")),
                expect("deploy: [vultr, data]", Some("deploy:vultr,data")),
                expect("build 1/3", Some("build:1")),
                expect("build 2/3", Some("build:2")),
                expect("build 3/3", Some("build:3")),
                expect("lint:unit: [a]", Some("lint:unit:a")),
                expect("lint:unit: [b]", Some("lint:unit:b")),
                expect("test:2.2", None),
                expect("plain", None),
            ]
        );
    }

    #[test]
    fn short_names_find_their_instance() {
        let p = pipeline(PIPELINE);
        assert_eq!(found(&p, "test:3.3"), Some("test: [3.3]"));
        assert_eq!(
            found(&p, "deploy:aws,monitoring"),
            Some("deploy: [aws, monitoring]")
        );
        // Blanks after commas and GitLab's brackets are fine too.
        assert_eq!(
            found(&p, "deploy: aws, monitoring"),
            Some("deploy: [aws, monitoring]")
        );
        assert_eq!(found(&p, "deploy:[gcp, data]"), Some("deploy: [gcp, data]"));
        assert_eq!(found(&p, "build:2"), Some("build 2/3"));
        // A base name with a colon of its own.
        assert_eq!(found(&p, "lint:unit:b"), Some("lint:unit: [b]"));
        // GitLab's names still work.
        assert_eq!(found(&p, "test: [3.3]"), Some("test: [3.3]"));
        assert_eq!(found(&p, "build 1/3"), Some("build 1/3"));
        assert_eq!(found(&p, "plain"), Some("plain"));
    }

    #[test]
    fn a_literal_name_wins() {
        let p = pipeline(PIPELINE);
        let Lookup::Job(job) = lookup(&p, "test:2.2") else {
            panic!("one job")
        };
        assert_eq!(job.script, ["literal"]);
    }

    #[test]
    fn base_names_and_unknown_values_list_the_instances() {
        let p = pipeline(PIPELINE);
        let Lookup::Choose(jobs, Choice::BaseName) = lookup(&p, "test") else {
            panic!("a choice")
        };
        assert_eq!(names(&jobs), ["test: [2.2]", "test: [3.3]"]);
        for typed in ["build:4", "build:", "build:1,2"] {
            let Lookup::Choose(jobs, Choice::UnknownValues { base }) = lookup(&p, typed) else {
                panic!("a choice for {typed}")
            };
            assert_eq!((base.as_str(), jobs.len()), ("build", 3), "{typed}");
        }
        // The values are in GitLab's order.
        assert!(matches!(
            lookup(&p, "deploy:monitoring,aws"),
            Lookup::Choose(_, Choice::UnknownValues { .. })
        ));
        let Lookup::Choose(jobs, Choice::UnknownValues { base }) = lookup(&p, "lint:unit:c") else {
            panic!("a choice")
        };
        assert_eq!((base.as_str(), jobs.len()), ("lint:unit", 2));
        assert_eq!(lookup(&p, "nope:1"), Lookup::Unknown);
        assert_eq!(lookup(&p, "plain:1"), Lookup::Unknown);
        assert_eq!(lookup(&p, "tes"), Lookup::Unknown);
    }

    #[test]
    fn repeated_values_are_ambiguous() {
        let p = pipeline(
            "t:\n  script: [x]\n  parallel:\n    matrix:\n      - A: [x]\n      - A: [x]\n",
        );
        let Lookup::Choose(jobs, why) = lookup(&p, "t:x") else {
            panic!("a choice")
        };
        assert_eq!((jobs.len(), why), (2, Choice::Ambiguous));
    }

    #[test]
    fn messages_teach_the_short_names() {
        let p = pipeline(PIPELINE);
        let Lookup::Choose(jobs, why) = lookup(&p, "test:9.9") else {
            panic!("a choice")
        };
        assert_eq!(
            choose_message("test:9.9", &jobs, &why),
            "\"test\" has no instance \"test:9.9\"; its 2 instances are:\n  test: [2.2]  (test:2.2)\n  test: [3.3]  (test:3.3)"
        );
        let Lookup::Choose(jobs, why) = lookup(&p, "build") else {
            panic!("a choice")
        };
        assert!(choose_message("build", &jobs, &why)
            .starts_with("\"build\" matches 3 jobs; name one of them:\n  build 1/3  (build:1)\n"));
    }
}

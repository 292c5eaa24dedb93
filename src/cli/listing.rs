//! Rendering for `cijob list` and `cijob show` (pure: pipeline in, text out).

use crate::load::yaml::{self, Mapping, Value};
use crate::model::{Job, Pipeline};
use crate::resolve::job_name::short_name;

const HEADERS: [&str; 5] = ["STAGE", "JOB", "IMAGE", "SERVICES", "WHEN"];

fn row(job: &Job) -> Vec<String> {
    vec![
        job.stage.clone(),
        // The short name beside GitLab's, so that users learn the one they can type unquoted.
        match short_name(job) {
            Some(short) => format!("{} ({short})", job.name),
            None => job.name.clone(),
        },
        job.image
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_else(|| "-".into()),
        if job.services.is_empty() {
            "-".into()
        } else {
            job.services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        },
        job.when.as_str().to_owned(),
    ]
}

/// The jobs to list: those of the pipeline GitLab would create, or `all` of them.
fn listed(pipeline: &Pipeline, all: bool) -> impl Iterator<Item = &Job> {
    pipeline
        .jobs
        .iter()
        .filter(move |j| all || j.excluded.is_none())
}

/// A table, one row per job in pipeline order: stage, job, image, services, when; with
/// `all`, the jobs left out too and a column saying why.
pub fn table(pipeline: &Pipeline, all: bool) -> String {
    let mut headers: Vec<String> = HEADERS.map(str::to_owned).to_vec();
    if all {
        headers.push("NOT IN PIPELINE".into());
    }
    let rows: Vec<Vec<String>> = std::iter::once(headers)
        .chain(listed(pipeline, all).map(|j| {
            let mut r = row(j);
            if all {
                r.push(j.excluded.clone().unwrap_or_else(|| "-".into()));
            }
            r
        }))
        .collect();
    let mut widths = vec![0usize; rows[0].len()];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The same rows as JSON, for scripts (`excluded`: why the job is not in the pipeline, else
/// null; `rule`: the 1-based index of the matching rule).
pub fn json(pipeline: &Pipeline, all: bool) -> String {
    let rows: Vec<serde_json::Value> = listed(pipeline, all)
        .map(|j| {
            serde_json::json!({
                "name": j.name,
                "short_name": short_name(j),
                "stage": j.stage,
                "image": j.image.as_ref().map(|i| i.name.clone()),
                "services": j.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                "when": j.when.as_str(),
                "allow_failure": !matches!(j.allow_failure, crate::model::AllowFailure::No),
                "excluded": j.excluded,
                "rule": j.matched_rule,
                "file": j.location.as_ref().map(|l| l.file.display().to_string()),
                "line": j.location.as_ref().map(|l| l.line),
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into())
}

/// The fully resolved job as YAML.
pub fn show(job: &Job) -> String {
    let mut top = Mapping::new();
    top.insert(Value::from(job.name.as_str()), job.resolved.clone());
    yaml::to_string(&Value::Mapping(top))
}

/// The closest job name to `name`, for "did you mean".
pub fn suggest<'a>(pipeline: &'a Pipeline, name: &str) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let names = || pipeline.jobs.iter().map(|j| j.name.as_str());
    if let Some(n) = names().find(|n| n.to_lowercase().starts_with(&wanted)) {
        return Some(n);
    }
    if let Some(n) = names().find(|n| n.to_lowercase().contains(&wanted)) {
        return Some(n);
    }
    // Compare with base names too, so `tets` finds the matrix job `test: [2.2]`.
    pipeline
        .jobs
        .iter()
        .flat_map(|j| {
            [
                (j.name.as_str(), j.name.as_str()),
                (j.base_name.as_str(), j.name.as_str()),
            ]
        })
        .map(|(cmp, n)| (strsim::jaro_winkler(&wanted, &cmp.to_lowercase()), n))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Image, Location, Service};

    fn job(name: &str, stage: &str) -> Job {
        Job {
            name: name.into(),
            base_name: name.into(),
            location: Some(Location {
                file: ".gitlab-ci.yml".into(),
                line: 3,
            }),
            stage: stage.into(),
            script: vec!["x".into()],
            resolved: serde_yaml::from_str("script: [x]").unwrap(),
            ..Job::default()
        }
    }

    fn pipeline() -> Pipeline {
        let mut a = job("build-linux", "build");
        a.image = Some(Image {
            name: "rust:1".into(),
            ..Default::default()
        });
        a.services = vec![
            Service {
                name: "redis".into(),
                ..Default::default()
            },
            Service {
                name: "postgres".into(),
                ..Default::default()
            },
        ];
        Pipeline {
            file: ".gitlab-ci.yml".into(),
            stages: vec![".pre".into(), "build".into(), "test".into(), ".post".into()],
            jobs: vec![a, job("unit tests", "test")],
            name: None,
        }
    }

    #[test]
    fn table_is_aligned() {
        let t = table(&pipeline(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "STAGE  JOB          IMAGE   SERVICES        WHEN");
        assert_eq!(
            lines[1],
            "build  build-linux  rust:1  redis,postgres  on_success"
        );
        assert_eq!(
            lines[2],
            "test   unit tests   -       -               on_success"
        );
    }

    #[test]
    fn json_rows() {
        let v: serde_json::Value = serde_json::from_str(&json(&pipeline(), false)).unwrap();
        assert_eq!(v[0]["name"], "build-linux");
        assert_eq!(v[0]["services"][1], "postgres");
        assert_eq!(v[1]["image"], serde_json::Value::Null);
        assert_eq!(v[1]["line"], 3);
        assert_eq!(v[1]["allow_failure"], false);
    }

    #[test]
    fn instances_show_their_short_name() {
        let mut p = pipeline();
        let mut inst = job("test: [2.2]", "test");
        inst.base_name = "test".into();
        inst.node_index = Some(1);
        inst.node_total = 2;
        p.jobs.push(inst);
        let t = table(&p, false);
        assert_eq!(
            t.lines().nth(3),
            Some("test   test: [2.2] (test:2.2)  -       -               on_success")
        );
        let v: serde_json::Value = serde_json::from_str(&json(&p, false)).unwrap();
        assert_eq!(v[2]["short_name"], "test:2.2");
        assert_eq!(v[0]["short_name"], serde_json::Value::Null);
    }

    #[test]
    fn excluded_jobs_only_with_all() {
        let mut p = pipeline();
        p.jobs[0].excluded = Some("rule 1: when: never".into());
        p.jobs[1].matched_rule = Some(2);
        p.jobs[1].when = crate::model::When::Manual;
        let t = table(&p, false);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(t.lines().nth(1).unwrap().ends_with("manual"), "{t}");
        let t = table(&p, true);
        assert!(
            t.lines()
                .next()
                .unwrap()
                .ends_with("WHEN        NOT IN PIPELINE"),
            "{t}"
        );
        assert!(
            t.lines().nth(1).unwrap().ends_with("rule 1: when: never"),
            "{t}"
        );
        assert!(t.lines().nth(2).unwrap().ends_with("manual      -"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&json(&p, false)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["rule"], 2);
        assert_eq!(v[0]["excluded"], serde_json::Value::Null);
        let v: serde_json::Value = serde_json::from_str(&json(&p, true)).unwrap();
        assert_eq!(v[0]["excluded"], "rule 1: when: never");
    }

    #[test]
    fn show_has_job_name_on_top() {
        assert_eq!(show(&job("a", "test")), "a:\n  script:\n  - x\n");
    }

    #[test]
    fn suggestions() {
        let p = pipeline();
        assert_eq!(suggest(&p, "build"), Some("build-linux"));
        assert_eq!(suggest(&p, "tests"), Some("unit tests"));
        assert_eq!(suggest(&p, "biuld-linux"), Some("build-linux"));
        assert_eq!(suggest(&p, "zzz"), None);
    }
}

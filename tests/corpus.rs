//! The loader against real projects and gitlab-ci-local's cases (copied under fixtures/corpus).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cijob::load::include::fetch::{FetchError, Fetcher, HttpFetcher, Response};
use cijob::load::yaml::{self, Value};
use cijob::model::Pipeline;
use cijob::project::discover::{discover, ConfigLocation};
use cijob::resolve::pipeline::{load_with, LoadOptions};

mod common;
#[path = "common/fake_gitlab.rs"]
mod fake_gitlab;
use fake_gitlab::{FakeGitlab, Reply, Request};

fn corpus(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/corpus")
        .join(sub)
}

/// The fixtures live inside this repository, so the git root would be ours: point the
/// project root at the case folder itself, as if it were its own repository.
fn location(dir: &Path, file: &str) -> ConfigLocation {
    let mut loc = discover(dir, Some(Path::new(file)), None).expect("file exists");
    loc.project_root = dir.to_path_buf();
    loc
}

/// Never touches the network: every fetch fails as if offline.
struct NoNetwork;
impl Fetcher for NoNetwork {
    fn get(&self, url: &str, _: &[(&str, &str)]) -> Result<Response, FetchError> {
        Err(FetchError::Unreachable(format!(
            "tests do not use the network ({url})"
        )))
    }
}

/// Options for the local-only cases: no network, a private empty cache.
fn offline(cache: &Path) -> LoadOptions {
    LoadOptions {
        gitlab_url: Some("https://gitlab.invalid".into()),
        cache_dir: Some(cache.to_path_buf()),
        fetcher: Some(Arc::new(NoNetwork)),
        ..LoadOptions::default()
    }
}

fn load(loc: &ConfigLocation) -> Result<Pipeline, cijob::error::ConfigError> {
    let cache = tempfile::tempdir().unwrap();
    load_with(loc, &offline(cache.path())).map(|l| l.pipeline)
}

/// Sends `https://HOST/PATH` (remote includes) to the fake server's `/remote/HOST/PATH`.
struct Rewrite {
    server: String,
    inner: HttpFetcher,
}
impl Fetcher for Rewrite {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, FetchError> {
        let url = if url.starts_with(&self.server) {
            url.to_owned()
        } else {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            format!("{}/remote/{rest}", self.server)
        };
        self.inner.get(&url, headers)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Serves fixtures/include-standins like a GitLab instance: the repository files API
/// (`projects/<project>/<file>`, any ref), releases (`projects/<project>/releases.json`),
/// templates (`templates/<name>`) and remote URLs (`remote/<host>/<path>`).
fn standin_server() -> FakeGitlab {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/include-standins");
    FakeGitlab::start(move |req: &Request| {
        let path = req.target.split('?').next().unwrap_or("");
        let file = if let Some(rest) = path.strip_prefix("/api/v4/projects/") {
            let mut parts = rest.splitn(2, '/');
            let project = percent_decode(parts.next().unwrap_or(""));
            let tail = parts.next().unwrap_or("");
            if tail == "releases" {
                Some(root.join("projects").join(project).join("releases.json"))
            } else {
                tail.strip_prefix("repository/files/")
                    .and_then(|f| f.strip_suffix("/raw"))
                    .map(|f| root.join("projects").join(project).join(percent_decode(f)))
            }
        } else if let Some(t) =
            path.strip_prefix("/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/")
        {
            Some(root.join("templates").join(percent_decode(t)))
        } else {
            path.strip_prefix("/remote/")
                .map(|r| root.join("remote").join(r))
        };
        match file.and_then(|f| std::fs::read_to_string(f).ok()) {
            Some(body) => Reply::ok(body),
            None => Reply::status(404),
        }
    })
}

fn real_world_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(corpus("real-world"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// What `cijob` would know from git for a fork of the project: its path.
fn project_vars(dir: &Path) -> Vec<(String, String)> {
    let name = dir.file_name().unwrap().to_string_lossy();
    let repo = name.split("__").nth(1).unwrap_or(&name).to_string();
    vec![("CI_PROJECT_PATH".into(), format!("someone/{repo}"))]
}

fn check_jobs(dir: &Path, p: &Pipeline) {
    assert!(p.stages.first().map(String::as_str) == Some(".pre"));
    for job in &p.jobs {
        assert!(!job.script.is_empty(), "{}: {}", dir.display(), job.name);
        assert!(
            job.location.is_some(),
            "{}: {} has no location",
            dir.display(),
            job.name
        );
    }
}

/// The reasons `cijob list --all` gives for a job left out of the pipeline.
fn known_reason(why: &str) -> bool {
    let rule_never = why
        .strip_prefix("rule ")
        .and_then(|r| r.split_once(": "))
        .is_some_and(|(n, rest)| n.parse::<usize>().is_ok() && rest == "when: never");
    rule_never
        || why == "rules: no rule matched"
        || why.starts_with("workflow: pipeline not created (")
        || why.starts_with("only: ")
        || why.starts_with("except: ")
}

/// With the fake instance serving stand-ins for every non-local include, every project loads
/// with no warning; with the instance gone, no cache and --allow-missing-includes, every
/// project still lists the jobs that do not depend on a missing include.
#[test]
fn real_world_projects_load_with_standins_and_degrade_without_them() {
    let server = standin_server();
    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut full: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for dir in real_world_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let options = LoadOptions {
            gitlab_url: Some(server.url()),
            cache_dir: Some(cache.path().to_path_buf()),
            fetcher: Some(Arc::new(Rewrite {
                server: server.url(),
                inner: HttpFetcher::default(),
            })),
            variables: project_vars(&dir),
            ..LoadOptions::default()
        };
        match load_with(&location(&dir, ".gitlab-ci.yml"), &options) {
            Ok(l) => {
                let excluded: Vec<_> = l
                    .pipeline
                    .jobs
                    .iter()
                    .filter(|j| j.excluded.is_some())
                    .collect();
                println!(
                    "  loaded: {name}: {} jobs, {} left out by rules on main",
                    l.pipeline.jobs.len(),
                    excluded.len()
                );
                check_jobs(&dir, &l.pipeline);
                for job in &excluded {
                    let why = job.excluded.as_deref().unwrap();
                    println!("      {}: {why}", job.name);
                    assert!(
                        known_reason(why),
                        "{name}: {}: unexpected reason {why:?}",
                        job.name
                    );
                }
                if !l.warnings.is_empty() {
                    failures.push(format!("{name}: warnings: {:?}", l.warnings));
                }
                let names = l.pipeline.jobs.iter().map(|j| j.name.clone()).collect();
                full.push((dir.clone(), names));
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "with stand-ins:\n{}",
        failures.join("\n")
    );
    // Projects whose only jobs come from includes gain them.
    for (dir, jobs) in &full {
        let name = dir.file_name().unwrap().to_string_lossy();
        if ["KDE__kate", "KDE__konsole", "xfce-mirror__xfce4-panel"].contains(&name.as_ref()) {
            assert!(!jobs.is_empty(), "{name}: no jobs from its includes");
        }
    }

    let dead = tempfile::tempdir().unwrap();
    drop(server); // the port now refuses connections
    for (dir, all) in &full {
        let name = dir.file_name().unwrap().to_string_lossy();
        let options = LoadOptions {
            gitlab_url: Some("http://127.0.0.1:9".into()),
            cache_dir: Some(dead.path().to_path_buf()),
            fetcher: Some(Arc::new(NoNetwork)),
            allow_missing: true,
            variables: project_vars(dir),
            ..LoadOptions::default()
        };
        let l = load_with(&location(dir, ".gitlab-ci.yml"), &options)
            .unwrap_or_else(|e| panic!("{name} with missing includes: {e}"));
        check_jobs(dir, &l.pipeline);
        for job in &l.pipeline.jobs {
            assert!(all.contains(&job.name), "{name}: {} appeared", job.name);
            let file = &job.location.as_ref().unwrap().file;
            assert!(
                dir.join(file).is_file(),
                "{name}: {} comes from {}",
                job.name,
                file.display()
            );
        }
        println!(
            "  missing includes: {name}: {} of {} jobs, {} warnings",
            l.pipeline.jobs.len(),
            all.len(),
            l.warnings.len()
        );
    }
}

/// Cases whose loader behaviour is a plain success.
const LOADS: &[(&str, &str)] = &[
    ("after-script", ".gitlab-ci.yml"),
    ("duplicated-keys", ".gitlab-ci.yml"),
    ("before-script", ".gitlab-ci.yml"),
    ("before-script-default", ".gitlab-ci.yml"),
    ("services", ".gitlab-ci.yml"),
    ("services", ".gitlab-ci-2.yml"),
    ("services", ".gitlab-ci-3.yml"),
    ("image", ".gitlab-ci.yml"),
    ("script-failures", ".gitlab-ci.yml"),
    ("scripts-as-string", ".gitlab-ci.yml"),
    ("script-multidimension", ".gitlab-ci-10-level-deep.yml"),
    ("variable-expansion", ".gitlab-ci.yml"),
    ("variable-escaping", ".gitlab-ci.yml"),
    ("variables-null", ".gitlab-ci.yml"),
    ("variable-order", ".gitlab-ci.yml"),
    ("predefined-variables", ".gitlab-ci.yml"),
    ("extends", ".gitlab-ci.yml"),
    ("reference", ".gitlab-ci.yml"),
    ("reference", ".gitlab-ci-complex.yml"),
    ("reference", ".gitlab-ci-issue-899.yml"),
    ("reference", ".gitlab-ci-issue-954.yml"),
    ("reference", ".gitlab-ci-10-level-deep.yml"),
    ("reference", ".gitlab-ci-1.yml"),
    ("reference", ".gitlab-ci-2.yml"),
    ("reference", ".gitlab-ci-3.yml"),
    ("inherit", ".gitlab-ci-inherit-default.yml"),
    ("inherit", ".gitlab-ci-inherit-variables.yml"),
    ("include-local", ".gitlab-ci-short-list.yml"),
    ("include-local", ".gitlab-ci-short-single.yml"),
    ("include-local-wildcard", ".gitlab-ci.yml"),
    ("include-local-wildcard", ".gitlab-ci-1.yml"),
    ("include-local-wildcard", ".gitlab-ci-2.yml"),
    ("include-local-wildcard", ".gitlab-ci-3.yml"),
    ("include-nested", ".150-nested-include-gitlab-ci.yml"),
    (
        "include-nested",
        ".150-complex-nested-include-gitlab-ci.yml",
    ),
    ("include-rules", ".gitlab-ci.yml"),
    ("rules-exists", ".gitlab-ci.yml"),
    ("parallel", ".gitlab-ci.yml"),
    ("parallel-matrix", ".gitlab-ci.yml"),
    ("parallel-matrix-environment", ".gitlab-ci.yml"),
    ("needs-same-stage", ".gitlab-ci.yml"),
    ("needs-optional", ".gitlab-ci.yml"),
    ("needs-empty", ".gitlab-ci.yml"),
    ("never", ".gitlab-ci.yml"),
    ("manual", ".gitlab-ci.yml"),
    ("environment", ".gitlab-ci.yml"),
    ("trigger", ".gitlab-ci.yml"),
    ("preview", ".gitlab-ci.yml"),
    ("plain", ".gitlab-ci.yml"),
    ("dind-tls", ".gitlab-ci.yml"),
    ("dind-no-tls", ".gitlab-ci.yml"),
    ("when-always", ".gitlab-ci.yml"),
    ("when-on-failure", ".gitlab-ci.yml"),
    ("workflow-rules-variables", ".gitlab-ci.yml"),
    ("schema-validation", ".gitlab-ci-issue-1277.yml"),
    (
        "include-inputs/input-templates/basic-example",
        ".gitlab-ci.yml",
    ),
    ("include-inputs/input-templates/default", ".gitlab-ci.yml"),
    (
        "include-inputs/input-templates/interpolation-key-hyphen",
        ".gitlab-ci.yml",
    ),
    (
        "include-inputs/input-templates/interpolation-repeat",
        ".gitlab-ci.yml",
    ),
    (
        "include-inputs/input-templates/types/array",
        ".gitlab-ci.yml",
    ),
];

/// Cases the loader must reject, with a fragment of our message.
const REJECTS: &[(&str, &str, &str)] = &[
    ("no-script", ".gitlab-ci.yml", "script is required"),
    ("script-blank", ".gitlab-ci.yml", "script can't be blank"),
    ("invalid-stages", ".gitlab-ci.yml", "stages: must be a list"),
    (
        "stage-not-found",
        ".gitlab-ci.yml",
        "chosen stage invalid does not exist",
    ),
    (
        "reference-circular-chain",
        ".gitlab-ci.yml",
        "!reference circular chain detected [test-job,script]",
    ),
    ("include-invalid-local", ".gitlab-ci.yml", "cannot be found"),
    (
        "include-local",
        ".gitlab-ci-invalid-config-directory-traversal.yml",
        "directory traversal",
    ),
    (
        "include-local",
        ".gitlab-ci-invalid-config-relative-path.yml",
        "cannot start with `./`",
    ),
    (
        "include-nested",
        ".151-nested-include-gitlab-ci.yml",
        "too many includes",
    ),
    (
        "include-nested",
        ".151-complex-nested-include-gitlab-ci.yml",
        "too many includes",
    ),
    (
        "script-multidimension",
        ".gitlab-ci-11-level-deep.yml",
        "nested more than 10 levels",
    ),
    (
        "reference",
        ".gitlab-ci-11-level-deep.yml",
        "nested more than 10 levels",
    ),
    ("rules-blank", ".gitlab-ci.yml", "rules can't be blank"),
    (
        "when",
        ".gitlab-ci.yml",
        "when:never can only be used in a rules section",
    ),
    (
        "include-remote",
        ".gitlab-ci.yml",
        "remote include \"https://gitlab.com/firecow/gitlab-ci-local-includes/-/raw/master/.gitlab-http.yml\" cannot be fetched",
    ),
    (
        "include-template",
        ".gitlab-ci.yml",
        "template \"Workflows/MergeRequest-Pipelines.gitlab-ci.yml\"",
    ),
    (
        "include-component/no-component-template-file",
        ".gitlab-ci.yml",
        "component \"gitlab.com/components/go/potato@0.3.1\"",
    ),
    (
        "include-local",
        ".gitlab-ci.yml",
        "include of local-with-variable",
    ),
];

#[test]
fn gitlab_ci_local_cases_load() {
    let root = corpus("gitlab-ci-local-cases");
    let mut failures = Vec::new();
    for (case, file) in LOADS {
        if let Err(e) = load(&location(&root.join(case), file)) {
            failures.push(format!("{case}/{file}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gitlab_ci_local_error_cases_are_rejected_clearly() {
    let root = corpus("gitlab-ci-local-cases");
    for (case, file, want) in REJECTS {
        match load(&location(&root.join(case), file)) {
            Ok(_) => panic!("{case}/{file} loaded but must be rejected"),
            Err(e) => {
                assert!(e.message.contains(want), "{case}/{file}: {e}");
                assert!(e.file.is_some(), "{case}/{file}: error has no file: {e}");
            }
        }
    }
}

/// Compare our jobs' key fields with gitlab-ci-local's `--preview` output.
#[test]
fn expected_previews_match() {
    let root = corpus("gitlab-ci-local-cases");
    let cases: &[(&str, &str)] = &[
        ("script-multidimension", ".gitlab-ci-10-level-deep.yml"),
        ("reference", ".gitlab-ci.yml"),
        ("reference", ".gitlab-ci-complex.yml"),
        ("reference", ".gitlab-ci-issue-899.yml"),
        ("reference", ".gitlab-ci-issue-954.yml"),
        ("reference", ".gitlab-ci-10-level-deep.yml"),
        ("reference", ".gitlab-ci-1.yml"),
        ("reference", ".gitlab-ci-2.yml"),
        ("reference", ".gitlab-ci-3.yml"),
        ("inherit", ".gitlab-ci-inherit-default.yml"),
        ("include-local-wildcard", ".gitlab-ci-1.yml"),
        ("include-local-wildcard", ".gitlab-ci-2.yml"),
        ("include-local-wildcard", ".gitlab-ci-3.yml"),
        ("schema-validation", ".gitlab-ci-issue-1277.yml"),
        ("preview", ".gitlab-ci.yml"),
        (
            "include-inputs/input-templates/basic-example",
            ".gitlab-ci.yml",
        ),
        ("include-inputs/input-templates/default", ".gitlab-ci.yml"),
        (
            "include-inputs/input-templates/interpolation-key-hyphen",
            ".gitlab-ci.yml",
        ),
        (
            "include-inputs/input-templates/interpolation-repeat",
            ".gitlab-ci.yml",
        ),
        (
            "include-inputs/input-templates/types/array",
            ".gitlab-ci.yml",
        ),
    ];
    let mut compared = 0;
    for (case, file) in cases {
        let stem = file.trim_start_matches('.').trim_end_matches(".yml");
        let expected_path = root
            .join("_expected-preview")
            .join(case)
            .join(format!("{stem}.preview.yml"));
        let text = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected = yaml::parse_ci(&text, &expected_path).unwrap().config;
        let expected = expected.as_mapping().expect("preview is a mapping");
        let pipeline = load(&location(&root.join(case), file))
            .unwrap_or_else(|e| panic!("{case}/{file}: {e}"));
        let want_stages: Vec<String> = expected["stages"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(pipeline.stages, want_stages, "{case}/{file}: stages");
        let global_vars = expected.get("variables");
        let mut job_names = Vec::new();
        for (k, want) in expected {
            let name = k.as_str().unwrap();
            if ["stages", "variables"].contains(&name) {
                continue;
            }
            job_names.push(name);
            let job = pipeline
                .job(name)
                .unwrap_or_else(|| panic!("{case}/{file}: job {name} missing"));
            let ctx = format!("{case}/{file}: {name}");
            let lines = |key: &str| -> Vec<String> {
                match want.get(key) {
                    Some(v) => cijob::resolve::job_model::script_lines(v).unwrap(),
                    None => vec![],
                }
            };
            assert_eq!(job.script, lines("script"), "{ctx}: script");
            assert_eq!(
                job.before_script,
                lines("before_script"),
                "{ctx}: before_script"
            );
            assert_eq!(
                job.after_script,
                lines("after_script"),
                "{ctx}: after_script"
            );
            let want_stage = want.get("stage").and_then(Value::as_str).unwrap_or("test");
            assert_eq!(job.stage, want_stage, "{ctx}: stage");
            let want_image = want.get("image").and_then(|i| match i {
                Value::String(s) => Some(s.clone()),
                other => other.get("name").and_then(Value::as_str).map(str::to_owned),
            });
            assert_eq!(
                job.image.as_ref().map(|i| i.name.clone()),
                want_image,
                "{ctx}: image"
            );
            // every variable gitlab-ci-local shows has the same final value for the job:
            // the job's own value, else the global one
            let own = want.get("variables").and_then(Value::as_mapping);
            let global = global_vars.and_then(Value::as_mapping);
            for (is_global, vars) in [(true, global), (false, own)] {
                for (vk, vv) in vars.into_iter().flatten() {
                    let key = vk.as_str().unwrap();
                    if is_global && own.is_some_and(|o| o.contains_key(key)) {
                        continue;
                    }
                    let value = match vv {
                        Value::Mapping(m) => yaml::scalar_string(&m["value"]).unwrap(),
                        other => yaml::scalar_string(other).unwrap(),
                    };
                    let got = job.variables.iter().rev().find(|v| v.key == key);
                    assert_eq!(
                        got.map(|v| v.value.clone()),
                        Some(value),
                        "{ctx}: variable {key}"
                    );
                }
            }
        }
        let ours: Vec<&str> = pipeline.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(ours, job_names, "{case}/{file}: jobs");
        compared += 1;
    }
    assert_eq!(compared, cases.len());
}

/// The `include-inputs` error cases give GitLab's messages.
#[test]
fn include_inputs_errors_match_gitlab() {
    let root = corpus("gitlab-ci-local-cases/include-inputs/input-templates");
    let cases: &[(&str, &str)] = &[
        ("required-inputs", "input: required value has not been provided"),
        ("unknown-interpolation-key-1", "unknown interpolation key: `foo`"),
        ("unknown-interpolation-key-2", "unknown interpolation key: `foo`"),
        ("type-validation/array", "input: provided value is not a array"),
        ("type-validation/boolean", "input: provided value is not a boolean"),
        ("type-validation/number", "input: provided value is not a number"),
        ("type-validation/string", "input: provided value is not a string"),
        (
            "type-validation/unsupported",
            "header:spec:inputs:unsupported_type_input input type unknown value: foo",
        ),
        (
            "options-validation",
            "`options_input` input: `fizz` cannot be used because it is not in the list of allowed options",
        ),
        (
            "options-array2-validation",
            "`options_input` input: `fizz` cannot be used because it is not in the list of allowed options",
        ),
        (
            "regex-validation",
            "`version` input: `invalid-version` does not match required regex: ^v\\d+\\.\\d+\\.\\d+$",
        ),
        (
            "regex-validation-invalid-pattern",
            "regex `^[unclosed` is not a valid regular expression",
        ),
        (
            "too-many-functions-in-interpolation-block",
            "too many functions in interpolation block",
        ),
    ];
    for (case, want) in cases {
        match load(&location(&root.join(case), ".gitlab-ci.yml")) {
            Ok(_) => panic!("{case} loaded but must be rejected"),
            Err(e) => assert!(e.message.contains(want), "{case}: {e}"),
        }
    }
    for case in [
        "options-array1-validation",
        "regex-validation-pass",
        "interpolation-value-escapes",
    ] {
        load(&location(&root.join(case), ".gitlab-ci.yml"))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    let p = load(&location(&root.join("types/boolean"), ".gitlab-ci-1.yml")).unwrap();
    assert_eq!(p.jobs[0].script, ["echo true"]);
    let p = load(&location(&root.join("types/boolean"), ".gitlab-ci-2.yml")).unwrap();
    assert_eq!(p.jobs[0].script, ["echo false"]);
}

/// `include-remote` and `include-template` with their mock bodies served by the fake
/// instance; `include-rules` with gitlab-ci-local's variables; `component-local`.
#[test]
fn non_local_include_cases_with_their_mocks() {
    let cases = corpus("gitlab-ci-local-cases");
    let read = |p: &str| std::fs::read_to_string(cases.join(p)).unwrap();
    let server = FakeGitlab::with_routes(vec![
        (
            "/remote/gitlab.com/firecow/gitlab-ci-local-includes/-/raw/master/.gitlab-http.yml"
                .into(),
            Reply::ok(read("include-remote/remote-mock.yml")),
        ),
        (
            "/remote/gitlab.com/firecow/gitlab-ci-local-includes/-/raw/master/.gitlab-http1.yml"
                .into(),
            Reply::ok(read("include-remote/remote-mock1.yml")),
        ),
        (
            "/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/Workflows/MergeRequest-Pipelines.gitlab-ci.yml".into(),
            Reply::ok(read("include-template/remote-mock.yml")),
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let options = |vars: &[(&str, &str)]| LoadOptions {
        gitlab_url: Some(server.url()),
        cache_dir: Some(cache.path().to_path_buf()),
        fetcher: Some(Arc::new(Rewrite {
            server: server.url(),
            inner: HttpFetcher::default(),
        })),
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    let run = |case: &str, vars: &[(&str, &str)]| {
        load_with(
            &location(&cases.join(case), ".gitlab-ci.yml"),
            &options(vars),
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"))
        .pipeline
    };
    let p = run("include-remote", &[]);
    let script = |p: &Pipeline, j: &str| p.job(j).unwrap().script.join("\n");
    assert_eq!(script(&p, "test-job"), "echo \"Test something\"");
    assert_eq!(script(&p, "build-job"), "echo \"Build something\"");

    let p = run("include-template", &[]);
    assert_eq!(script(&p, "test-job"), "echo \"Test something\"");

    let p = run(
        "include-rules",
        &[("GITLAB_CI", "false"), ("CI_COMMIT_TAG", "1.0.0")],
    );
    let all: Vec<String> = p.jobs.iter().map(|j| j.script.join("\n")).collect();
    let all = all.join("\n");
    assert!(all.contains("This should appear\""), "{all}");
    assert!(all.contains("because of CI_COMMIT_TAG"), "{all}");
    assert!(!all.contains("should not appear"), "{all}");
    // without the tag, that include is not taken
    let p = run("include-rules", &[("GITLAB_CI", "false")]);
    assert!(!p
        .jobs
        .iter()
        .any(|j| j.script.join(" ").contains("CI_COMMIT_TAG")));

    let sha = "0123456789abcdef0123456789abcdef01234567";
    let p = run(
        "include-component/component-local",
        &[("CI_PROJECT_PATH", "me/proj"), ("CI_COMMIT_SHA", sha)],
    );
    let job = p.job("component-job").unwrap();
    assert_eq!(job.stage, "my-stage");
    assert_eq!(
        job.script[0],
        format!("echo job 1 from my-component ({sha}/{sha}).")
    );
}

/// The `include-component` cases that need gitlab.com, against stand-ins for its components
/// (`@0.3.1`, `@0.3`, `@0`, `@~latest`, a tag named `1`), compared with the expected previews.
#[test]
fn component_cases_against_standins() {
    let root = corpus("gitlab-ci-local-cases");
    let server = standin_server();
    let cache = tempfile::tempdir().unwrap();
    let options = LoadOptions {
        gitlab_url: Some(server.url()),
        cache_dir: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let cases: &[(&str, Option<&str>)] = &[
        ("component", Some("component")),
        ("component-minor-semver", Some("component-minor-semver")),
        ("component-major-semver", Some("component-minor-semver")),
        ("component-latest-semver", None),
        ("component-non-semver-tag", Some("component-non-semver-tag")),
    ];
    for (case, preview) in cases {
        let dir = root.join("include-component").join(case);
        let p = load_with(&location(&dir, ".gitlab-ci.yml"), &options)
            .unwrap_or_else(|e| panic!("{case}: {e}"))
            .pipeline;
        let Some(preview) = preview else {
            assert_eq!(
                p.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
                ["format-latest", "build-latest", "test-latest"],
                "{case}"
            );
            continue;
        };
        let path = root
            .join("_expected-preview/include-component")
            .join(preview)
            .join("gitlab-ci.preview.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = yaml::parse_ci(&text, &path).unwrap().config;
        let expected = expected.as_mapping().unwrap();
        let mut want_jobs = Vec::new();
        for (k, want) in expected {
            let name = k.as_str().unwrap();
            if name == "stages" {
                continue;
            }
            want_jobs.push(name);
            let job = p.job(name).unwrap_or_else(|| panic!("{case}: no {name}"));
            let script = cijob::resolve::job_model::script_lines(&want["script"]).unwrap();
            assert_eq!(job.script, script, "{case}: {name}");
            let stage = want.get("stage").and_then(Value::as_str).unwrap_or("test");
            assert_eq!(job.stage, stage, "{case}: {name}");
            let image = want
                .get("image")
                .and_then(|i| i.get("name"))
                .and_then(Value::as_str);
            assert_eq!(
                job.image.as_ref().map(|i| i.name.as_str()),
                image,
                "{case}: {name}"
            );
        }
        let ours: Vec<&str> = p.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(ours, want_jobs, "{case}");
    }
}

/// bram2w/baserow names its images through variables of variables
/// (`CI_DIND_IMAGE: $CI_REGISTRY/$PROJECT_PATH_FOR_E2E_TEST_IMAGE/...` with
/// `PROJECT_PATH_FOR_E2E_TEST_IMAGE: $CI_PROJECT_PATH`): every job plans, with the service
/// named as GitLab expands it (`cijob plan` needs no Docker).
#[test]
fn baserow_jobs_plan_with_variables_inside_variables() {
    let src = corpus("real-world/bram2w__baserow");
    let p = common::Project::new(&std::fs::read_to_string(src.join(".gitlab-ci.yml")).unwrap());
    for entry in walkdir::WalkDir::new(src.join(".gitlab")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(&src).unwrap();
            p.write(
                &rel.to_string_lossy(),
                &std::fs::read_to_string(entry.path()).unwrap(),
            );
        }
    }
    // Image names must be lower case: the project path comes from a remote, not from the
    // temporary directory's name.
    p.git(&[
        "remote",
        "add",
        "origin",
        "git@gitlab.com:someone/baserow.git",
    ]);
    // `--all`: also the jobs rules leave out on this branch (cijob plans them anyway).
    let list = p.run(&["list", "--all", "--json"]);
    list.assert_code(0);
    let jobs: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    assert!(jobs.len() > 43, "{} jobs", jobs.len());
    // The 43 jobs whose services are named through such variables (they failed before).
    let mut chained = 0;
    for job in &jobs {
        let name = job["name"].as_str().unwrap();
        let r = p.run(&["plan", name]);
        r.assert_code(0);
        let services: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("# Service "))
            .collect();
        assert!(
            services.iter().all(|l| !l.contains('$')),
            "{name}: {services:?}"
        );
        if services
            .iter()
            .any(|l| l.starts_with("# Service registry.gitlab.com/someone/baserow/ci/"))
        {
            chained += 1;
        }
    }
    assert_eq!(chained, 43);
}

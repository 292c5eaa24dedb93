//! Non-local includes against a fake GitLab instance on loopback (never the internet).

mod common;
#[path = "common/fake_gitlab.rs"]
mod fake_gitlab;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cijob::load::include::fetch::HttpFetcher;
use cijob::load::include::Token;
use cijob::project::discover::ConfigLocation;
use cijob::resolve::pipeline::{load_with, LoadOptions, Loaded};
use common::Project;
use fake_gitlab::{FakeGitlab, Reply};

const API: &str = "/api/v4/projects";

fn location(dir: &Path) -> ConfigLocation {
    ConfigLocation {
        file: dir.join(".gitlab-ci.yml"),
        project_root: dir.to_path_buf(),
    }
}

fn options(server: &FakeGitlab, cache: &Path) -> LoadOptions {
    LoadOptions {
        gitlab_url: Some(server.url()),
        cache_dir: Some(cache.to_path_buf()),
        // short bounds keep the slow-server test quick
        fetcher: Some(Arc::new(HttpFetcher::new(
            Duration::from_secs(2),
            Duration::from_secs(2),
        ))),
        ..LoadOptions::default()
    }
}

fn load(yaml: &str, opts: &LoadOptions) -> Result<Loaded, cijob::error::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitlab-ci.yml"), yaml).unwrap();
    load_with(&location(dir.path()), opts)
}

fn names(l: &Loaded) -> Vec<&str> {
    l.pipeline.jobs.iter().map(|j| j.name.as_str()).collect()
}

fn private_project() -> FakeGitlab {
    FakeGitlab::start(|req| {
        let path = format!("{API}/grp%2Fprivate/repository/files/ci%2Fjobs.yml/raw?ref=main");
        if req.target == path {
            // GitLab hides private projects: 404 without a valid token
            return match req.headers.get("private-token").map(String::as_str) {
                Some("glpat-good") => Reply::ok("private-job: {script: echo private}\n"),
                _ => Reply::status(404),
            };
        }
        Reply::status(404)
    })
}

#[test]
fn remote_template_and_project_files_are_fetched() {
    let server = FakeGitlab::with_routes(vec![
        (
            "/raw/remote.yml".into(),
            Reply::ok(".remote-base: {image: alpine}\n"),
        ),
        (
            "/gitlab-org/gitlab/-/raw/master/lib/gitlab/ci/templates/Jobs/Build.gitlab-ci.yml"
                .into(),
            Reply::ok("template-job: {script: echo template}\n"),
        ),
        (
            format!("{API}/grp%2Fsub%2Fproj/repository/files/ci%2Fa.yml/raw?ref=v1.0"),
            Reply::ok("include: [{local: /ci/b.yml}]\nproject-a: {script: echo a}\n"),
        ),
        (
            format!("{API}/grp%2Fsub%2Fproj/repository/files/ci%2Fb.yml/raw?ref=v1.0"),
            Reply::ok("project-b: {script: echo b}\n"),
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let yaml = format!(
        "include:\n  - {url}/raw/remote.yml\n  - template: Jobs/Build.gitlab-ci.yml\n  \
         - project: grp/sub/proj\n    ref: v1.0\n    file: [/ci/a.yml]\n\
         own: {{extends: .remote-base, script: echo own}}\n",
        url = server.url()
    );
    let l = load(&yaml, &options(&server, cache.path())).unwrap();
    assert_eq!(names(&l), ["template-job", "project-b", "project-a", "own"]);
    assert_eq!(
        l.pipeline.job("own").unwrap().image.as_ref().unwrap().name,
        "alpine"
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let loc = l
        .pipeline
        .job("project-b")
        .unwrap()
        .location
        .clone()
        .unwrap();
    assert_eq!(
        loc.file,
        Path::new("project:grp/sub/proj/ci/b.yml@v1.0"),
        "a nested local include comes from the same project and ref"
    );
}

#[test]
fn private_project_needs_the_token_and_never_shows_it() {
    let server = private_project();
    let cache = tempfile::tempdir().unwrap();
    let yaml = "include:\n  - project: grp/private\n    ref: main\n    file: ci/jobs.yml\n";
    let mut opts = options(&server, cache.path());
    let e = load(yaml, &opts).unwrap_err();
    assert!(e.message.contains("HTTP 404"), "{e}");
    assert!(e.message.contains("CIJOB_GITLAB_TOKEN"), "{e}");
    assert_eq!(e.line, Some(2));

    opts.token = Some(Token::Private("glpat-wrong".into()));
    let e = load(yaml, &opts).unwrap_err();
    assert!(!e.to_string().contains("glpat-wrong"), "{e}");

    opts.token = Some(Token::Private("glpat-good".into()));
    let l = load(yaml, &opts).unwrap();
    assert_eq!(names(&l), ["private-job"]);
    assert!(!format!("{opts:?}").contains("glpat-good"));
}

#[test]
fn job_token_is_sent_as_job_token() {
    let server = FakeGitlab::start(|req| {
        if req.headers.get("job-token").map(String::as_str) == Some("jt") {
            Reply::ok("j: {script: x}\n")
        } else {
            Reply::status(401)
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&server, cache.path());
    opts.token = Some(Token::Job("jt".into()));
    let l = load("include: {project: g/p, file: a.yml}\n", &opts).unwrap();
    assert_eq!(names(&l), ["j"]);
    assert!(server.requests()[0].target.ends_with("/raw?ref=HEAD"));
}

#[test]
fn component_with_inputs_and_partial_version() {
    let server = FakeGitlab::with_routes(vec![
        (
            format!("{API}/my%2Fcomponents/releases?per_page=100"),
            Reply::ok(r#"[{"tag_name":"2.0.0"},{"tag_name":"1.4.2"},{"tag_name":"1.3.9"}]"#),
        ),
        (
            format!("{API}/my%2Fcomponents/repository/files/templates%2Flint.yml/raw?ref=1.4.2"),
            Reply::ok(
                "spec:\n  inputs:\n    stage: {default: test}\n    strict: {type: boolean, default: false}\n---\n\
                 lint-$[[ inputs.stage ]]:\n  stage: $[[ inputs.stage ]]\n  \
                 script: echo strict=$[[ inputs.strict ]] v$[[ component.version ]]\n",
            ),
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&server, cache.path());
    let yaml = "stages: [check]\ninclude:\n  - component: $CI_SERVER_FQDN/my/components/lint@1\n    inputs: {stage: check, strict: true}\n";
    let l = load(yaml, &opts).unwrap();
    let job = l.pipeline.job("lint-check").unwrap();
    assert_eq!(job.stage, "check");
    assert_eq!(job.script, ["echo strict=true v1.4.2"]);
    let bad = "include:\n  - component: $CI_SERVER_FQDN/my/components/lint@1\n    inputs: {strict: maybe}\n";
    let e = load(bad, &opts).unwrap_err();
    assert!(
        e.message
            .contains("`strict` input: provided value is not a boolean"),
        "{e}"
    );
}

#[test]
fn not_found_html_and_slow_answers_are_clear_errors() {
    let server = FakeGitlab::with_routes(vec![
        (
            "/login.yml".into(),
            Reply::html("<html><body>Sign in</body></html>"),
        ),
        ("/garbage.yml".into(), Reply::ok("{{{ not: [yaml")),
        (
            "/slow.yml".into(),
            Reply::ok("a: {script: x}\n").slow(Duration::from_secs(6)),
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&server, cache.path());
    let url = server.url();

    let e = load(&format!("include: {url}/gone.yml\n"), &opts).unwrap_err();
    assert!(e.message.contains("HTTP 404"), "{e}");
    assert!(e.message.contains("/gone.yml"), "{e}");
    assert_eq!(e.file.as_deref(), Some(Path::new(".gitlab-ci.yml")));

    let e = load(&format!("include: {url}/login.yml\n"), &opts).unwrap_err();
    assert!(e.message.contains("HTML page instead of YAML"), "{e}");
    assert!(e.message.contains("login.yml"), "{e}");

    let e = load(&format!("include: {url}/garbage.yml\n"), &opts).unwrap_err();
    assert_eq!(
        e.file.as_deref(),
        Some(Path::new(&format!("{url}/garbage.yml"))),
        "a YAML error names the fetched file: {e}"
    );

    let start = Instant::now();
    let e = load(&format!("include: {url}/slow.yml\n"), &opts).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "not bounded");
    assert!(e.message.contains("cannot be fetched"), "{e}");
    assert!(e.message.contains("slow.yml"), "{e}");
}

#[test]
fn remote_files_may_not_include_local_files() {
    let server = FakeGitlab::with_routes(vec![(
        "/r.yml".into(),
        Reply::ok("include: [{local: /x.yml}]\n"),
    )]);
    let cache = tempfile::tempdir().unwrap();
    let e = load(
        &format!("include: {{remote: '{}/r.yml'}}\n", server.url()),
        &options(&server, cache.path()),
    )
    .unwrap_err();
    assert!(e.message.contains("not allowed in a remote"), "{e}");
}

/// The binary: first run fetches and caches; with the server gone the next run uses the
/// cache and says so; --refresh-includes refuses the cache; --allow-missing-includes skips.
#[test]
fn offline_runs_use_the_cache_and_say_so() {
    let mut server = FakeGitlab::with_routes(vec![(
        format!("{API}/g%2Fshared/repository/files/base.yml/raw?ref=v2"),
        Reply::ok(".base: {image: alpine, script: echo base}\nshared-job: {script: echo shared}\n"),
    )]);
    let p = Project::new(
        "include:\n  - project: g/shared\n    ref: v2\n    file: base.yml\n\
         uses-base: {extends: .base}\nlocal-job: {script: echo local}\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let url = server.url();
    let run = |extra: &[&str]| {
        let mut args = vec!["--gitlab-url", url.as_str()];
        args.extend_from_slice(extra);
        let out = p
            .cijob(&args)
            .env("CIJOB_CACHE_DIR", cache.path())
            .env_remove("CIJOB_GITLAB_TOKEN")
            .env_remove("GITLAB_TOKEN")
            .env_remove("CI_JOB_TOKEN")
            .output()
            .unwrap();
        common::Run::from(out)
    };
    run(&["list"])
        .assert_code(0)
        .assert_out("shared-job")
        .assert_out("uses-base");
    assert_eq!(server.requests().len(), 1);
    server.stop();

    run(&["list"])
        .assert_code(0)
        .assert_out("uses-base")
        .assert_err("project include \"g/shared\" file \"base.yml\" (ref v2)")
        .assert_err("using the cached copy");

    run(&["--refresh-includes", "list"])
        .assert_code(2)
        .assert_err(".gitlab-ci.yml:2")
        .assert_err("--refresh-includes");

    run(&["--refresh-includes", "--allow-missing-includes", "list"])
        .assert_code(0)
        .assert_out("local-job")
        .assert_not("shared-job")
        .assert_err("skipping include of project \"g/shared\"")
        .assert_err("job \"uses-base\" is left out");
}

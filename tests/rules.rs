//! End-to-end: `rules`, `workflow` and GitLab's validation through the real binary, on a
//! throw-away git repository (`main` and a feature branch); `run` against the real daemon.

mod common;

use common::*;

/// A pipeline whose shape depends on the branch, the pipeline source and the changes.
const PIPELINE: &str = r#"workflow:
  name: 'Pipeline for $CI_COMMIT_REF_NAME'
  rules:
    - if: $CI_COMMIT_TAG
      when: never
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      variables:
        DEPLOY_ENV: production
    - when: always
      variables:
        DEPLOY_ENV: review

build:
  stage: build
  image: cijob-test/busybox
  script: [echo build]

test:
  image: cijob-test/busybox
  script: [echo test]
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH =~ /^feature\//

deploy:
  stage: deploy
  image: cijob-test/busybox
  script: ['echo "DEPLOY_ENV=$DEPLOY_ENV TARGET=$TARGET"']
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      when: manual
      variables:
        TARGET: staging
    - when: never

docs:
  image: cijob-test/busybox
  script: [echo docs]
  rules:
    - changes: ['docs/**/*.md']

legacy:
  image: cijob-test/busybox
  script: [echo legacy]
  only: [main]
"#;

fn rows(r: &Run) -> Vec<serde_json::Value> {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.all()))
}

fn names(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|j| j["name"].as_str().unwrap()).collect()
}

fn find<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter().find(|j| j["name"] == name).unwrap()
}

#[test]
fn list_follows_rules_and_workflow_on_main_and_a_feature_branch() {
    let p = Project::new(PIPELINE);

    // main: test needs a feature branch or an MR, docs has no changes, deploy is manual.
    let r = p.run(&["list"]);
    r.assert_code(0).assert_err("pipeline: Pipeline for main");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(lines[1].starts_with("build ") && lines[1].ends_with("on_success"));
    assert!(lines[2].contains(" legacy ") && lines[2].ends_with("on_success"));
    assert!(lines[3].starts_with("deploy") && lines[3].ends_with("manual"));

    let all = rows(p.run(&["list", "--all", "--json"]).assert_code(0));
    assert_eq!(names(&all), ["build", "test", "docs", "legacy", "deploy"]);
    assert_eq!(find(&all, "test")["excluded"], "rules: no rule matched");
    assert_eq!(find(&all, "docs")["excluded"], "rules: no rule matched");
    assert_eq!(find(&all, "build")["excluded"], serde_json::Value::Null);
    let deploy = find(&all, "deploy");
    assert_eq!(deploy["rule"], 1);
    assert_eq!(deploy["when"], "manual");
    // A rule's own `when: manual` is not allowed to fail by default.
    assert_eq!(deploy["allow_failure"], false);
    let table = p.run(&["list", "--all"]);
    table
        .assert_code(0)
        .assert_out("NOT IN PIPELINE")
        .assert_out("rules: no rule matched");

    // A feature branch with a change under docs/ (uncommitted and untracked files count).
    p.git(&["checkout", "-q", "-b", "feature/login"]);
    p.write("docs/guide/intro.md", "# intro\n");
    let feature = rows(p.run(&["list", "--json"]).assert_code(0));
    assert_eq!(names(&feature), ["build", "test", "docs"]);
    let all = rows(p.run(&["list", "--all", "--json"]).assert_code(0));
    assert_eq!(find(&all, "deploy")["excluded"], "rule 2: when: never");
    assert_eq!(find(&all, "legacy")["excluded"], "only: refs do not match");

    // The merge request pipeline: jobs without rules are not in it.
    let mr = rows(
        p.run(&[
            "list",
            "--all",
            "--json",
            "--var",
            "CI_PIPELINE_SOURCE=merge_request_event",
        ])
        .assert_code(0),
    );
    assert_eq!(find(&mr, "test")["excluded"], serde_json::Value::Null);
    assert_eq!(find(&mr, "test")["rule"], 1);
    assert_eq!(find(&mr, "build")["excluded"], "only: refs do not match");

    // A tag: workflow creates no pipeline.
    p.git(&["checkout", "-q", "main"]);
    p.git(&["tag", "v1.0"]);
    p.git(&["checkout", "-q", "v1.0"]);
    let tag = p.run(&["list", "--all", "--json"]);
    let tag = rows(tag.assert_code(0));
    assert!(tag
        .iter()
        .all(|j| j["excluded"] == "workflow: pipeline not created (rule 1: when: never)"));
    let r = p.run(&["list"]);
    r.assert_code(0)
        .assert_err("workflow: pipeline not created (rule 1: when: never)");
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
}

#[test]
fn show_applies_the_matching_rule() {
    let p = Project::new(PIPELINE);
    let r = p.run(&["show", "deploy"]);
    r.assert_code(0)
        .assert_out("when: manual")
        .assert_out("allow_failure: false")
        .assert_out("TARGET: staging")
        .assert_not("rules:");
    // An excluded job is shown with a warning naming the reason.
    p.run(&["show", "test"])
        .assert_code(0)
        .assert_err("rules: no rule matched");
    // --var reaches the rules.
    p.run(&[
        "show",
        "test",
        "--var",
        "CI_PIPELINE_SOURCE=merge_request_event",
    ])
    .assert_code(0)
    .assert_not("warning");
}

#[test]
fn allow_failure_of_a_job_level_manual_with_rules() {
    let p = Project::new(
        "a:\n  script: [x]\n  when: manual\n  rules:\n    - if: $CI_COMMIT_BRANCH\n\
         b:\n  script: [x]\n  rules:\n    - when: manual\n\
         c:\n  script: [x]\n  when: manual\n\
         d:\n  script: [x]\n  allow_failure: yes\n  rules: [{when: always}]\n",
    );
    let jobs = rows(p.run(&["list", "--json"]).assert_code(0));
    let af = |n: &str| {
        (
            find(&jobs, n)["when"].clone(),
            find(&jobs, n)["allow_failure"].clone(),
        )
    };
    assert_eq!(af("a"), ("manual".into(), true.into()));
    assert_eq!(af("b"), ("manual".into(), false.into()));
    assert_eq!(af("c"), ("manual".into(), true.into()));
    assert_eq!(af("d"), ("always".into(), true.into()));
    p.run(&["show", "d"])
        .assert_code(0)
        .assert_out("allow_failure: true")
        .assert_not("yes");
}

#[test]
fn validation_errors_are_gitlabs_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "build:\n  script: [x]\n\ntest:\n  scirpt: [x]\n  script: [y]\n",
            ".gitlab-ci.yml:5: jobs:test config contains unknown keys: scirpt\n 5 |   scirpt: [x]",
        ),
        (
            "test:\n  script: [x]\n  needs: [biuld]\nbuild:\n  stage: build\n  script: [x]\n",
            ".gitlab-ci.yml:1: test job: undefined need: biuld",
        ),
        (
            // A matching rule's own `needs:` does not hide the job's.
            "build:\n  stage: build\n  script: [x]\ntest:\n  script: [x]\n  needs: [nope]\n  rules:\n    - if: $CI_COMMIT_BRANCH\n      needs: [build]\n",
            ".gitlab-ci.yml:4: test job: undefined need: nope",
        ),
        (
            "build:\n  stage: build\n  script: [x]\n  needs: [deploy]\ndeploy:\n  stage: deploy\n  script: [x]\n",
            ".gitlab-ci.yml:1: build job: need deploy is not defined in current or prior stages",
        ),
        (
            "test:\n  script: [x]\n  dependencies: [deploy]\ndeploy:\n  stage: deploy\n  script: [x]\n",
            ".gitlab-ci.yml:1: test job: dependency deploy is not defined in current or prior stages",
        ),
        (
            "stages: [build]\n\ntest:\n  script: [x]\n",
            ".gitlab-ci.yml:3: test job: chosen stage test does not exist; available stages are .pre, build, .post",
        ),
        (
            "build:\n  stage: build\n  script: [x]\n  rules: [{when: never}]\ntest:\n  script: [x]\n  needs: [build]\n",
            ".gitlab-ci.yml:5: 'test' job needs 'build' job, but 'build' does not exist in the pipeline.",
        ),
        (
            "test:\n  script: [x]\n  rules:\n    - if: '${CI_COMMIT_BRANCH} == \"main\"'\n",
            ".gitlab-ci.yml:1: jobs:test:rules: rule 1: if invalid expression syntax",
        ),
    ];
    for (yaml, want) in cases {
        let p = Project::new(yaml);
        for cmd in [&["list"][..], &["run", "test", "--dry-run"][..]] {
            let r = p.run(cmd);
            r.assert_code(2).assert_err(want);
        }
        // Nothing was written into the project.
        let status = std::process::Command::new("git")
            .args(["status", "--porcelain"])
            .current_dir(p.path())
            .output()
            .unwrap();
        assert!(
            status.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&status.stdout)
        );
    }
}

#[test]
fn run_applies_the_rule_and_warns_for_an_excluded_job() {
    require_docker();
    let job = unique("rules");
    let yaml = format!(
        "variables: {{LEVEL: global}}\n\
         workflow:\n  rules:\n    - variables: {{FLOW: from-workflow, LEVEL: workflow}}\n\
         \"{job}\":\n  image: cijob-test/busybox\n  variables: {{DEPLOY_ENV: none}}\n  \
         script: ['echo \"DEPLOY_ENV=$DEPLOY_ENV FLOW=$FLOW LEVEL=$LEVEL\"']\n  rules:\n    \
         - if: $CI_COMMIT_BRANCH == \"main\"\n      variables: {{DEPLOY_ENV: staging}}\n    \
         - when: never\n"
    );
    let p = Project::new(&yaml);
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("DEPLOY_ENV=staging FLOW=from-workflow LEVEL=workflow")
        .assert_not("warning");
    assert_no_leftovers_for_job(&job);

    // On another branch rule 2 says never: cijob warns, names the rule, and runs the job
    // with its own variables.
    p.git(&["checkout", "-q", "-b", "other"]);
    p.run(&["run", &job])
        .assert_code(0)
        .assert_err("rule 2: when: never")
        .assert_out("DEPLOY_ENV=none FLOW=from-workflow LEVEL=workflow");
    assert_no_leftovers_for_job(&job);
    // --var reaches the rules of `run` too.
    p.run(&["run", &job, "--var", "CI_COMMIT_BRANCH=main"])
        .assert_code(0)
        .assert_out("DEPLOY_ENV=staging")
        .assert_not("when: never");
    p.run(&["clean", &job]).assert_code(0);
    assert_no_leftovers_for_job(&job);
}

//! The binary's commands that need no Docker: list, show, plan, errors, help.

mod common;

use common::*;

const PIPELINE: &str = r#"
stages: [build, test]
variables:
  GLOBAL: g
.base:
  image: cijob-test/busybox
  before_script: [echo base]
build:
  stage: build
  extends: .base
  script: [make]
test:
  extends: .base
  services:
    - name: cijob-test/svc-tcp
      alias: web
  parallel:
    matrix:
      - RUBY: ["2.2", "3.0"]
  script: [rake]
"#;

#[test]
fn list_shows_jobs_in_pipeline_order() {
    let p = Project::new(PIPELINE);
    let r = p.run(&["list"]);
    r.assert_code(0);
    let rows: Vec<&str> = r.stdout.lines().collect();
    assert!(rows[0].starts_with("STAGE"), "{}", r.stdout);
    assert!(rows[1].contains("build") && rows[1].contains("cijob-test/busybox"));
    assert!(rows[2].contains("test: [2.2] (test:2.2)") && rows[2].contains("cijob-test/svc-tcp"));
    assert!(rows[3].contains("test: [3.0] (test:3.0)"));
    assert_eq!(rows.len(), 4);
}

#[test]
fn list_json_is_machine_readable() {
    let p = Project::new(PIPELINE);
    let r = p.run(&["list", "--json"]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build", "test: [2.2]", "test: [3.0]"]);
    assert_eq!(v[1]["stage"], "test");
    assert_eq!(v[1]["short_name"], "test:2.2");
    assert_eq!(v[0]["short_name"], serde_json::Value::Null);
}

#[test]
fn show_prints_the_resolved_job() {
    let p = Project::new(PIPELINE);
    let r = p.run(&["show", "test: [3.0]"]);
    r.assert_code(0)
        .assert_out("image: cijob-test/busybox")
        .assert_out("RUBY: '3.0'")
        .assert_out("- echo base")
        .assert_not("extends");
}

#[test]
fn unknown_job_suggests_the_closest_name() {
    let p = Project::new(PIPELINE);
    p.run(&["show", "biuld"])
        .assert_code(2)
        .assert_err("no job named \"biuld\"")
        .assert_err("did you mean \"build\"?");
    p.run(&["run", "tets"])
        .assert_code(2)
        .assert_err("did you mean");
}

#[test]
fn run_without_a_job_and_without_a_terminal_lists_the_jobs() {
    let p = Project::new(PIPELINE);
    p.run(&["run"])
        .assert_code(2)
        .assert_err("test: [2.2] (test)")
        .assert_err("build (build)");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let p = Project::new("test:\n  script:\n    - echo ok\n  image: [unclosed\n");
    let r = p.run(&["list"]);
    r.assert_code(2).assert_err(".gitlab-ci.yml:");
    assert!(
        r.stderr.contains(":5:") || r.stderr.contains(":4:"),
        "{}",
        r.stderr
    );
}

#[test]
fn wrong_type_names_job_key_and_line() {
    let p = Project::new("ok:\n  script: [a]\nbad:\n  script:\n    a: 1\n");
    p.run(&["list"])
        .assert_code(2)
        .assert_err(".gitlab-ci.yml:3")
        .assert_err("job \"bad\": script must be a string or a list of strings");
}

#[test]
fn config_discovered_from_a_subdirectory() {
    let p = Project::new(PIPELINE);
    std::fs::create_dir_all(p.path().join("src/deep")).unwrap();
    let r = Run::from(
        cijob()
            .arg("list")
            .current_dir(p.path().join("src/deep"))
            .output()
            .unwrap(),
    );
    r.assert_code(0).assert_out("test: [2.2]");
}

#[test]
fn missing_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        cijob()
            .arg("list")
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    r.assert_code(2).assert_err(".gitlab-ci.yml");
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in ["list", "show", "run", "plan", "shell", "clean"] {
        let r = Run::from(cijob().args([cmd, "--help"]).output().unwrap());
        r.assert_code(0).assert_out("Examples:");
    }
}

#[test]
fn plan_prints_docker_commands_and_hides_masked_values() {
    let p = Project::new(PIPELINE);
    let r = p.run(&[
        "plan",
        "test: [2.2]",
        "--var",
        "TOKEN=s3cr3t-value",
        "--mask",
        "TOKEN",
    ]);
    r.assert_code(0)
        .assert_out("docker volume create")
        .assert_out("docker run -d")
        .assert_out("--name cijob-test-2-2-")
        .assert_out("docker start -ai")
        .assert_out("-e TOKEN ")
        .assert_not("s3cr3t-value");
}

#[test]
fn bad_var_is_a_usage_error() {
    let p = Project::new(PIPELINE);
    p.run(&["run", "build", "--var", "NOEQUALS"])
        .assert_code(2)
        .assert_err("expected KEY=VALUE");
}

#[test]
fn a_base_name_matching_several_matrix_jobs_lists_them() {
    let p = Project::new(PIPELINE);
    p.run(&["run", "test"])
        .assert_code(2)
        .assert_err("\"test\" matches 2 jobs")
        .assert_err("  test: [2.2]  (test:2.2)")
        .assert_err("  test: [3.0]  (test:3.0)");
}

#[test]
fn short_names_work_in_show_and_plan() {
    let p = Project::new(PIPELINE);
    p.run(&["show", "test:3.0"])
        .assert_code(0)
        .assert_out("'test: [3.0]':\n")
        .assert_out("RUBY: '3.0'");
    p.run(&["plan", "test:2.2"])
        .assert_code(0)
        .assert_out("# cijob plan for job $'test: [2.2]':")
        .assert_out("RUBY=2.2");
    p.run(&["run", "test:9.9"])
        .assert_code(2)
        .assert_err("\"test\" has no instance \"test:9.9\"; its 2 instances are:")
        .assert_err("  test: [3.0]  (test:3.0)");
}

#[test]
fn show_prints_yaml_1_1_booleans_as_gitlab_reads_them() {
    let p = Project::new(
        "lint:\n  image: busybox\n  script: [x]\n  allow_failure: yes\n  interruptible: On\n  variables:\n    AWS_S3_USE_SSL: no\n    KEPT: 'no'\n",
    );
    p.run(&["show", "lint"])
        .assert_code(0)
        .assert_out("allow_failure: true")
        .assert_out("interruptible: true")
        .assert_out("AWS_S3_USE_SSL: false")
        .assert_out("KEPT: 'no'");
    p.run(&["plan", "lint", "--var", "X=1"])
        .assert_code(0)
        .assert_out("AWS_S3_USE_SSL=false")
        .assert_out("KEPT=no");
}

#[test]
fn variables_inside_variables_are_expanded_and_loops_refused() {
    let p = Project::new(
        "variables:\n  A: $CI_PROJECT_NAMESPACE\n  B: reg/$A/img\njob:\n  image: busybox\n  variables:\n    C: \"x-$B-y\"\n  script: [x]\nloop:\n  image: busybox\n  variables:\n    L1: $L2\n    L2: a-$L1\n  script: [x]\n",
    );
    // No git remote: the namespace is `local`.
    p.run(&["plan", "job"])
        .assert_code(0)
        .assert_out("B=reg/local/img")
        .assert_out("C=x-reg/local/img-y");
    p.run(&["plan", "loop"]).assert_code(2).assert_err(
        ".gitlab-ci.yml:9: job \"loop\": circular variable reference detected: [\"L1\", \"L2\"]",
    );
}

#[test]
fn timeout_flag_takes_what_timeout_in_the_yaml_takes() {
    let p = Project::new("j:\n  image: cijob-test/busybox\n  timeout: 2.5h\n  script: [x]\n");
    p.run(&["plan", "j"])
        .assert_code(0)
        .assert_out("CI_JOB_TIMEOUT=9000");
    // The same grammar on the command line, which overrides `timeout:`.
    for spelling in ["1.5h", "1h 30m", "90 minutes", "01:30:00", "5400"] {
        p.run(&["plan", "j", "--timeout", spelling])
            .assert_code(0)
            .assert_out("CI_JOB_TIMEOUT=5400");
    }
    p.run(&["plan", "j", "--timeout", "soon"])
        .assert_code(2)
        .assert_err("--timeout \"soon\": expected a duration like 90s, 10m, 1h30m");
}

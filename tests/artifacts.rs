//! End-to-end: needs, artifacts, dotenv reports and `cijob run JOB --needs` against the
//! real Docker daemon with the local fixture images. Each project has its own store
//! (`CIJOB_STORE_DIR`, see `common::Project`).

mod common;

use common::*;

const PIPELINE: &str = r#"
stages: [build, test]
build:
  stage: build
  image: cijob-test/busybox
  script:
    - mkdir -p out && echo hello-from-build > out/app && echo junk > out/app.o
    - echo "VERSION=1.2.3" > build.env
    - echo "TOKEN_COPY=$TOKEN" >> build.env
  artifacts:
    paths: [out/]
    exclude: ["out/*.o"]
    reports:
      dotenv: build.env
test:
  stage: test
  image: cijob-test/busybox
  needs: [build]
  script:
    - cat out/app
    - echo "version=$VERSION"
    - test ! -e out/app.o && echo no-object-file
    - echo "copy=$TOKEN_COPY"
"#;

fn assert_clean_tree(p: &Project) {
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain", "--ignored"])
        .current_dir(p.path())
        .output()
        .unwrap();
    assert!(
        status.stdout.is_empty(),
        "cijob changed the working tree: {}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn needs_runs_build_then_test_which_gets_its_files_and_dotenv_and_a_second_run_reuses_them() {
    require_docker();
    // Its own job names: the leftovers check must not see other tests' live runs.
    let build = unique("build");
    let test = unique("test");
    let p = Project::new(
        &PIPELINE
            .replace("\nbuild:\n", &format!("\n{build}:\n"))
            .replace("needs: [build]", &format!("needs: [{build}]"))
            .replace("\ntest:\n", &format!("\n{test}:\n")),
    );
    let r = p.run(&["run", &test, "--needs"]);
    r.assert_code(0)
        .assert_err(&format!("cijob --needs: job 1 of 2: {build}"))
        .assert_err(&format!("cijob --needs: job 2 of 2: {test}"))
        .assert_err("Uploading artifacts for successful job")
        .assert_err("out/: found 2 matching artifact files and directories")
        .assert_err(&format!(
            "Stored 1 files (17 B) as the artifacts of {build}"
        ))
        .assert_err("build.env: found 1 matching artifact files and directories")
        .assert_err(&format!("Downloading artifacts for {build} (local run "))
        .assert_out("hello-from-build")
        .assert_out("version=1.2.3")
        .assert_out("no-object-file");
    let build_at = r.stderr.find(&format!("job 1 of 2: {build}")).unwrap();
    let test_at = r.stderr.find(&format!("job 2 of 2: {test}")).unwrap();
    let upload_at = r
        .stderr
        .find("Uploading artifacts for successful job")
        .unwrap();
    let download_at = r
        .stderr
        .find(&format!("Downloading artifacts for {build}"))
        .unwrap();
    assert!(build_at < upload_at && upload_at < test_at && test_at < download_at);

    // The store outlives the run: test alone gets the same files and variables.
    p.run(&["run", &test])
        .assert_code(0)
        .assert_err(&format!("Downloading artifacts for {build} (local run "))
        .assert_not("job 1 of 2")
        .assert_out("hello-from-build")
        .assert_out("version=1.2.3");

    // `cijob artifacts` lists them and copies them out.
    p.run(&["artifacts", &build])
        .assert_code(0)
        .assert_out(&format!("{build} (local run "))
        .assert_out("out/app")
        .assert_out("dotenv  VERSION=1.2.3")
        .assert_not("app.o");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy");
    p.run(&["artifacts", &build, "--out", dest.to_str().unwrap()])
        .assert_code(0);
    assert_eq!(
        std::fs::read_to_string(dest.join("out/app")).unwrap(),
        "hello-from-build\n"
    );
    assert_clean_tree(&p);
    assert_no_leftovers_for_job(&build);
    assert_no_leftovers_for_job(&test);

    // Gone from the store: the job says whose artifacts are missing and how to get them.
    p.run(&["clean", "--artifacts"])
        .assert_code(0)
        .assert_err("removed the stored artifacts of this project");
    p.run(&["run", &test])
        .assert_code(1)
        .assert_err(&format!("No local artifacts of \"{build}\""))
        .assert_err(&format!("`cijob run {test} --needs` runs it first"));
    p.run(&["artifacts", &build])
        .assert_code(1)
        .assert_err(&format!("no stored artifacts of job \"{build}\""));
}

#[test]
fn a_masked_value_in_a_dotenv_report_stays_masked_where_it_is_received() {
    require_docker();
    let p = Project::new(PIPELINE);
    p.run(&[
        "run",
        "build",
        "--var",
        "TOKEN=s3cret-value",
        "--mask",
        "TOKEN",
    ])
    .assert_code(0)
    .assert_not("s3cret-value");
    p.run(&["run", "test"])
        .assert_code(0)
        .assert_out("copy=[MASKED]")
        .assert_not("s3cret-value");
    p.run(&["artifacts", "build"])
        .assert_code(0)
        .assert_out("TOKEN_COPY=[MASKED]")
        .assert_not("s3cret-value");
}

#[test]
fn a_failing_link_stops_the_chain_unless_it_may_fail() {
    require_docker();
    let p = Project::new(
        r#"
stages: [build, test]
build:
  stage: build
  image: cijob-test/busybox
  script: ["echo building", "exit 4"]
  artifacts: {paths: [out/]}
lint:
  stage: build
  image: cijob-test/busybox
  allow_failure: true
  script: ["exit 2"]
  artifacts: {paths: [lint.txt]}
test:
  stage: test
  image: cijob-test/busybox
  needs: [build]
  script: ["echo test-ran"]
report:
  stage: test
  image: cijob-test/busybox
  needs: [lint]
  script: ["echo report-ran"]
"#,
    );
    p.run(&["run", "test", "--needs"])
        .assert_code(4)
        .assert_err("ERROR: Job failed: exit code 4")
        .assert_not("test-ran")
        .assert_not("job 2 of 2");
    p.run(&["run", "report", "--needs"])
        .assert_code(0)
        .assert_err("job 2 of 2: report")
        .assert_out("report-ran");
}

#[test]
fn untracked_and_when_on_failure() {
    require_docker();
    let p = Project::new(
        r#"
fails:
  image: cijob-test/busybox
  script:
    - mkdir -p gen && echo generated > gen/x.txt
    - exit 1
  artifacts:
    untracked: true
    when: on_failure
passes:
  image: cijob-test/busybox
  script: ["echo made > made.txt"]
  artifacts:
    paths: [made.txt]
    when: on_failure
"#,
    );
    p.run(&["run", "fails"])
        .assert_code(1)
        .assert_err("Uploading artifacts for failed job")
        .assert_err("untracked: found 1 files");
    p.run(&["artifacts", "fails"])
        .assert_code(0)
        .assert_out("failed): 1 files")
        .assert_out("gen/x.txt")
        .assert_not(".gitlab-ci.yml");
    p.run(&["run", "passes"])
        .assert_code(0)
        .assert_not("Uploading artifacts");
    p.run(&["artifacts", "passes"]).assert_code(1);
    assert_clean_tree(&p);
}

#[test]
fn needs_take_short_names_and_parallel_matrix_instances() {
    require_docker();
    let p = Project::new(
        r#"
stages: [build, test]
build:
  stage: build
  image: cijob-test/busybox
  parallel:
    matrix:
      - ARCH: [amd, arm]
  script: ["mkdir -p out && echo built-$ARCH > out/$ARCH"]
  artifacts: {paths: [out/]}
test:
  stage: test
  image: cijob-test/busybox
  needs:
    - job: build
      parallel:
        matrix:
          - ARCH: arm
  script: ["ls out", "cat out/arm"]
"#,
    );
    let r = p.run(&["run", "test", "--needs"]);
    r.assert_code(0)
        .assert_err("job 1 of 2: build: [arm]")
        .assert_out("built-arm")
        .assert_not("built-amd");
    p.run(&["artifacts", "build:arm"])
        .assert_code(0)
        .assert_out("out/arm");
    p.run(&["artifacts", "build:amd"])
        .assert_code(1)
        .assert_err("no stored artifacts of job \"build: [amd]\"");
}

#[test]
fn plan_with_needs_prints_each_job_with_its_artifact_steps() {
    let p = Project::new(PIPELINE);
    let r = p.run(&["plan", "test", "--needs"]);
    r.assert_code(0)
        .assert_out("# cijob plan --needs: build, then test")
        .assert_out("( # job build")
        .assert_out("( # job test")
        .assert_out("# Uploading artifacts into cijob's store.")
        .assert_out(
            "# Artifacts of build (none stored yet: `cijob run test --needs` runs it first).",
        );
    // The dotenv report is variables for the jobs after, not one of the files.
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.contains("artifacts.tar") && l.contains("build.env")),
        "{}",
        r.stdout
    );
    let build_at = r.stdout.find("( # job build").unwrap();
    let test_at = r.stdout.find("( # job test").unwrap();
    assert!(build_at < test_at);
    let r = p.run(&["plan", "test"]);
    r.assert_code(0).assert_not("( # job build");
}

#[test]
fn bad_artifacts_cache_and_needs_are_errors_located_at_the_job() {
    let p = Project::new(
        "stages: [build, test]\nbuild:\n  stage: build\n  image: cijob-test/busybox\n  script: [true]\n  artifacts:\n    paths: [out/]\n    when: sometimes\nwarm:\n  stage: test\n  image: cijob-test/busybox\n  script: [true]\n  cache:\n    paths: [deps/]\n    policy: $POLICY\n  variables: {POLICY: sometimes}\n",
    );
    p.run(&["plan", "build"])
        .assert_code(2)
        .assert_err(".gitlab-ci.yml:2")
        .assert_err("artifacts:when must be on_success, on_failure or always, not \"sometimes\"");
    p.run(&["plan", "warm"])
        .assert_code(2)
        .assert_err(".gitlab-ci.yml:9")
        .assert_err("cache:policy must be pull, push or pull-push, not \"sometimes\"");
    // GitLab refuses the whole pipeline for a need on no job (the validation's words).
    let p =
        Project::new("lost:\n  image: cijob-test/busybox\n  needs: [nowhere]\n  script: [true]\n");
    p.run(&["run", "lost", "--needs"])
        .assert_code(2)
        .assert_err(".gitlab-ci.yml:1")
        .assert_err("undefined need: nowhere");
}

#[test]
fn the_plan_of_a_chain_run_by_hand_does_what_cijob_run_needs_does() {
    require_docker();
    let p = Project::new(PIPELINE);
    let ours = p.run(&["run", "test", "--needs"]);
    ours.assert_code(0);
    let plan = p.run(&["plan", "test", "--needs"]);
    plan.assert_code(0)
        .assert_out("# Artifacts of build (local run ");
    // The recipe writes into the same store: start from an empty one.
    p.run(&["clean", "--artifacts"]).assert_code(0);
    let by_hand = p.bash(&plan.stdout);
    by_hand.assert_code(0);
    assert_eq!(
        ours.stdout, by_hand.stdout,
        "stderr of the plan:\n{}",
        by_hand.stderr
    );
    assert_clean_tree(&p);
}

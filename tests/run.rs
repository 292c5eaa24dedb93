//! End-to-end: `cijob run` against the real Docker daemon with locally built fixture images.

mod common;

use common::*;

fn one_job(name: &str, body: &str) -> String {
    format!("\"{name}\":\n{body}")
}

#[test]
fn one_line_job_succeeds_with_the_runners_log() {
    require_docker();
    let job = unique("hello");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script:\n    - echo \"hi from $CI_JOB_NAME\"\n",
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(0)
        .assert_out(&format!("hi from {job}"))
        .assert_out("$ echo \"hi from $CI_JOB_NAME\"")
        .assert_err("Preparing the \"docker\" executor")
        .assert_err("Using Docker executor with image cijob-test/busybox ...")
        .assert_err("Executing \"step_script\" stage of the job script")
        .assert_err("Job succeeded");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn failing_job_passes_its_exit_code_through_and_after_script_sees_failed() {
    require_docker();
    let job = unique("fail");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script:\n    - echo before\n    - exit 3\n    - echo never\n  after_script:\n    - echo \"status=$CI_JOB_STATUS\"\n    - exit 7\n",
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(3)
        .assert_out("before")
        .assert_out("status=failed")
        .assert_err("Running after_script")
        .assert_err("WARNING: after_script failed, but job will continue unaffected: exit code 7")
        .assert_err("ERROR: Job failed: exit code 3")
        .assert_err("--debug` stops at the failing command");
    assert!(!r.stdout.contains("\nnever"), "{}", r.stdout);
    assert_no_leftovers_for_job(&job);
}

#[test]
fn after_script_sees_success() {
    require_docker();
    let job = unique("ok-after");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [\"true\"]\n  after_script: [\"echo status=$CI_JOB_STATUS\"]\n",
    ));
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("status=success");
}

#[test]
fn allow_failure_exits_zero_and_exit_codes_are_matched() {
    require_docker();
    let a = unique("allowed");
    let b = unique("allowed-code");
    let c = unique("not-allowed-code");
    let yaml = format!(
        "\"{a}\":\n  image: cijob-test/busybox\n  allow_failure: true\n  script: [exit 1]\n\
         \"{b}\":\n  image: cijob-test/busybox\n  allow_failure:\n    exit_codes: [2, 3]\n  script: [exit 3]\n\
         \"{c}\":\n  image: cijob-test/busybox\n  allow_failure:\n    exit_codes: 2\n  script: [exit 4]\n"
    );
    let p = Project::new(&yaml);
    p.run(&["run", &a])
        .assert_code(0)
        .assert_err("ERROR: Job failed: exit code 1")
        .assert_err("allowed to fail");
    p.run(&["run", &b])
        .assert_code(0)
        .assert_err("allowed to fail");
    p.run(&["run", &c]).assert_code(4);
}

#[test]
fn timeout_stops_the_job_with_the_runners_message() {
    require_docker();
    let job = unique("slow");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script: [\"sleep 60\"]\n  after_script: [\"echo status=$CI_JOB_STATUS\"]\n",
    ));
    let start = std::time::Instant::now();
    let r = p.run(&["run", &job, "--timeout", "2s"]);
    r.assert_code(124)
        .assert_err("execution took longer than 2s seconds")
        .assert_out("status=timedout");
    assert!(start.elapsed().as_secs() < 30);
    assert_no_leftovers_for_job(&job);
}

#[test]
fn yaml_timeout_keyword_is_honoured() {
    require_docker();
    let job = unique("slow-yaml");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  timeout: 2 seconds\n  script: [\"sleep 60\"]\n",
    ));
    p.run(&["run", &job]).assert_code(124);
}

#[test]
fn default_and_custom_aliases_resolve() {
    require_docker();
    let job = unique("aliases");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  services:
    - tutum/wordpress
    - name: cijob-test/svc-tcp
      alias: "db, cache other"
    - name: registry.example.com:5000/ns/svc-tcp:1.0
  script:
    - wget -qO- http://tutum-wordpress:8080/
    - wget -qO- http://tutum__wordpress:8080/
    - wget -qO- http://cijob-test-svc-tcp:8080/
    - wget -qO- http://cijob-test__svc-tcp:8080/
    - wget -qO- http://db:8080/
    - wget -qO- http://cache:8080/
    - wget -qO- http://other:8080/
    - wget -qO- http://registry.example.com-ns-svc-tcp:8080/
    - wget -qO- http://registry.example.com__ns__svc-tcp:8080/
"#,
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(0)
        .assert_err("Starting service tutum/wordpress:latest...");
    r.assert_err("Starting service registry.example.com/ns/svc-tcp:1.0...");
    assert_eq!(r.stdout.matches("hello from").count(), 9, "{}", r.stdout);
    assert_no_leftovers_for_job(&job);
}

#[test]
fn two_services_from_one_image_with_different_aliases() {
    require_docker();
    let job = unique("same-image");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  services:
    - name: cijob-test/svc-tcp
      alias: one
      variables: {GREETING: first}
    - name: cijob-test/svc-tcp
      alias: two
      variables: {GREETING: second}
  script:
    - wget -qO- http://one:8080/
    - wget -qO- http://two:8080/
"#,
    ));
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("first from")
        .assert_out("second from");
}

#[test]
fn duplicate_alias_is_skipped_with_the_runners_warning() {
    require_docker();
    let job = unique("dup");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  services: [cijob-test/svc-tcp, cijob-test/svc-tcp]\n  script: [\"wget -qO- http://cijob-test-svc-tcp:8080/\"]\n",
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(0)
        .assert_err("alias is already in use by another service");
    assert_eq!(
        r.stderr.matches("Starting service").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn job_variables_reach_services_and_service_variables_override() {
    require_docker();
    let job = unique("svc-vars");
    let p = Project::new(&format!(
        r#"variables:
  GREETING: from-global
"{job}":
  image: cijob-test/busybox
  variables:
    PORT: "8081"
  services:
    - name: cijob-test/svc-tcp
      alias: a
    - name: cijob-test/svc-tcp
      alias: b
      variables:
        GREETING: own-$PORT
  script:
    - wget -qO- http://a:8081/
    - wget -qO- http://b:8081/
"#
    ));
    p.run(&["run", &job, "--var", "UNUSED=1"])
        .assert_code(0)
        .assert_out("from-global from")
        .assert_out("own-8081 from");
}

#[test]
fn service_entrypoint_and_command_overrides_and_builds_volume() {
    require_docker();
    let job = unique("svc-cmd");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  services:
    - name: cijob-test/svc-tcp
      alias: custom
      entrypoint: ["/bin/sh", "-c"]
      command: ["echo overridden > /builds/marker && mkdir -p /w && echo custom-cmd > /w/index.html && exec httpd -f -p 8080 -h /w"]
  script:
    - wget -qO- http://custom:8080/
    - cat /builds/marker
"#,
    ));
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("custom-cmd")
        .assert_out("overridden");
}

#[test]
fn service_command_args_reach_the_image_entrypoint() {
    require_docker();
    let job = unique("svc-args");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  variables: {CI_DEBUG_SERVICES: \"true\"}\n  services:\n    - name: cijob-test/svc-tcp\n      command: [\"--flag\", \"value\"]\n  script: [\"wget -qO- http://cijob-test-svc-tcp:8080/\", \"sleep 1\"]\n",
    ));
    p.run(&["run", &job]).assert_code(0).assert_err(
        "[service:cijob-test__svc-tcp-cijob-test-svc-tcp] svc-tcp: args(2): --flag value",
    );
}

#[test]
fn image_entrypoint_kept_and_reset_with_empty_string() {
    require_docker();
    let kept = unique("ep-kept");
    let reset = unique("ep-reset");
    let server = unique("ep-server");
    let p = Project::new(&format!(
        r#""{kept}":
  image: cijob-test/entrypoint-wrapper
  script: ["echo from_entrypoint=$FROM_ENTRYPOINT"]
"{reset}":
  image:
    name: cijob-test/svc-entrypoint-server
    entrypoint: [""]
  script: ["echo script ran"]
"{server}":
  image: cijob-test/svc-entrypoint-server
  script: ["echo script ran"]
"#
    ));
    p.run(&["run", &kept])
        .assert_code(0)
        .assert_out("entrypoint ran")
        .assert_out("from_entrypoint=yes");
    p.run(&["run", &reset])
        .assert_code(0)
        .assert_out("script ran");
    // An entrypoint that starts a server and ignores its command never runs the script.
    let r = p.run(&["run", &server, "--timeout", "3s"]);
    r.assert_code(124).assert_not("script ran");
    assert_no_leftovers_for_job(&server);
}

#[test]
fn health_check_warnings_and_job_goes_on() {
    require_docker();
    let job = unique("health");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  services:
    - name: cijob-test/svc-noport
      alias: noport
    - name: cijob-test/svc-tcp
      alias: late
      variables: {DELAY: "30"}
  script: ["echo job ran"]
"#,
    ));
    let r = p.run(&["run", &job, "--wait-for-services-timeout", "2"]);
    r.assert_code(0)
        .assert_out("job ran")
        .assert_err("Waiting for services to be up and running (timeout 2 seconds)...")
        .assert_err("has no exposed ports")
        .assert_err("*** WARNING: Service ")
        .assert_err("probably didn't start properly.")
        .assert_err("-wait-for-service\" timeout")
        .assert_err("svc-tcp: sleeping 30s before listening");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn healthcheck_tcp_port_selects_the_port() {
    require_docker();
    let job = unique("hcport");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  services:
    - name: cijob-test/svc-tcp
      alias: s
      variables: {HEALTHCHECK_TCP_PORT: "9999"}
  script: ["echo job ran"]
"#,
    ));
    // Port 9999 never opens (the service listens on 8080), so the check must time out.
    p.run(&["run", &job, "--wait-for-services-timeout", "1"])
        .assert_code(0)
        .assert_err("probably didn't start properly");
    let ok = unique("hcport-ok");
    let p = Project::new(&one_job(
        &ok,
        "  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      variables: {HEALTHCHECK_TCP_PORT: \"8080\"}\n  script: [\"true\"]\n",
    ));
    p.run(&["run", &ok, "--wait-for-services-timeout", "5"])
        .assert_code(0)
        .assert_not("probably didn't start properly");
}

#[test]
fn network_per_build_lets_services_reach_each_other_and_build() {
    require_docker();
    let job = unique("perbuild");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  variables:
    FF_NETWORK_PER_BUILD: "true"
  services:
    - name: cijob-test/svc-tcp
      alias: web
    - name: cijob-test/busybox
      alias: prober
      entrypoint: ["/bin/sh", "-c"]
      command: ["sleep 1; wget -qO- http://web:8080/ > /builds/from-prober; nslookup build > /builds/build-lookup 2>&1; sleep 300"]
  script:
    - sleep 3
    - cat /builds/from-prober
    - grep -q Address /builds/build-lookup && echo build-resolves
"#,
    ));
    p.run(&["run", &job, "--wait-for-services-timeout", "-1"])
        .assert_code(0)
        .assert_out("hello from")
        .assert_out("build-resolves");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn uncommitted_files_visible_and_working_tree_untouched() {
    require_docker();
    let job = unique("tree");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script:\n    - cat tracked.txt untracked.txt\n    - test ! -e ignored.txt && echo ignored-not-copied\n    - test -d .git && echo has-git\n    - pwd\n    - rm -rf ./* .git && echo deleted\n",
    ));
    p.write("tracked.txt", "v1\n");
    p.write(".gitignore", "ignored.txt\n");
    p.git(&["add", "-A"]);
    p.git(&["commit", "-q", "-m", "add"]);
    p.write("tracked.txt", "edited-not-committed\n");
    p.write("untracked.txt", "brand-new\n");
    p.write("ignored.txt", "secret\n");
    let r = p.run(&["run", &job]);
    r.assert_code(0)
        .assert_out("edited-not-committed")
        .assert_out("brand-new")
        .assert_out("ignored-not-copied")
        .assert_out("has-git")
        .assert_out("deleted");
    let dir_name = p
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches('.')
        .to_string();
    assert!(r.stdout.contains(&format!("/{dir_name}\n")), "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(p.path().join("tracked.txt")).unwrap(),
        "edited-not-committed\n"
    );
    assert!(p.path().join(".git").is_dir());
    assert!(p.path().join("untracked.txt").exists());
}

#[test]
fn masked_variables_never_appear() {
    require_docker();
    let job = unique("mask");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script:\n    - echo \"the secret is $SECRET\"\n    - echo \"$SECRET\" >&2\n",
    ));
    let r = p.run(&[
        "run",
        &job,
        "--var",
        "SECRET=hunter2-xyz",
        "--mask",
        "SECRET",
    ]);
    r.assert_code(0)
        .assert_out("the secret is [MASKED]")
        .assert_not("hunter2-xyz");
}

#[test]
fn predefined_variables_are_set() {
    require_docker();
    let job = unique("predef");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  script:\n    - echo \"CI=$CI GITLAB_CI=$GITLAB_CI SERVER=$CI_SERVER STAGE=$CI_JOB_STAGE IMAGE=$CI_JOB_IMAGE BUILDS=$CI_BUILDS_DIR\"\n    - echo \"SHA=$CI_COMMIT_SHA BRANCH=$CI_COMMIT_BRANCH TITLE=$CI_COMMIT_TITLE\"\n    - test \"$(pwd)\" = \"$CI_PROJECT_DIR\" && echo in-project-dir\n",
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(0)
        .assert_out(
            "CI=true GITLAB_CI=true SERVER=yes STAGE=test IMAGE=cijob-test/busybox BUILDS=/builds",
        )
        .assert_out("BRANCH=main TITLE=initial commit")
        .assert_out("in-project-dir");
    assert!(!r.stdout.contains("SHA= "), "{}", r.stdout);
}

#[test]
fn var_file_and_cli_vars_override_yaml() {
    require_docker();
    let job = unique("varfile");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  variables: {A: yaml, B: yaml}\n  script: [\"echo A=$A B=$B C=$C\"]\n",
    ));
    p.write("vars.env", "B=file\nC=file\n");
    p.run(&["run", &job, "--var-file", "vars.env", "--var", "C=cli"])
        .assert_code(0)
        .assert_out("A=yaml B=file C=cli");
}

#[test]
fn keep_leaves_containers_running_and_clean_removes_them() {
    require_docker();
    let job = unique("keep");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  variables: {KEPT_VAR: here}\n  services: [cijob-test/svc-tcp]\n  script: [\"echo made > /tmp/state-file\"]\n",
    ));
    let r = p.run(&["run", &job, "--keep"]);
    r.assert_code(0).assert_err("docker exec -it");
    let build = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=cijob.job={job}"),
        "--filter",
        "label=cijob.type=build",
    ]);
    let id = build.stdout.trim().to_string();
    assert!(!id.is_empty(), "build container is not running");
    let ex = docker(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /tmp/state-file; echo $KEPT_VAR",
    ]);
    assert!(
        ex.stdout.contains("made") && ex.stdout.contains("here"),
        "{}",
        ex.all()
    );
    let svc = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=cijob.job={job}"),
        "--filter",
        "label=cijob.type=service",
    ]);
    assert!(!svc.stdout.trim().is_empty(), "service is not running");
    // The build and service containers (the project volume is not the job's: it stays).
    p.run(&["clean", &job])
        .assert_code(0)
        .assert_err("removed container")
        .assert_err("cijob clean: removed 2 object(s)");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn sigint_during_script_cleans_everything() {
    require_docker();
    let job = unique("sigint");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  services: [cijob-test/svc-tcp]\n  script: [\"echo started\", \"sleep 120\"]\n",
    ));
    let mut child = p
        .cijob(&["run", &job])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let start = std::time::Instant::now();
    while !seen.contains("started") && start.elapsed().as_secs() < 60 {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("started"), "{seen}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(t.elapsed().as_secs() < 10, "cleanup took {:?}", t.elapsed());
    assert_no_leftovers_for_job(&job);
}

#[test]
fn two_concurrent_runs_of_the_same_job_do_not_collide() {
    require_docker();
    let job = unique("concurrent");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/busybox\n  services:\n    - name: cijob-test/svc-tcp\n      alias: web\n  script: [\"wget -qO- http://web:8080/\", \"sleep 1\"]\n",
    ));
    let a = p
        .cijob(&["run", &job])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = p
        .cijob(&["run", &job])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for child in [a, b] {
        Run::from(child.wait_with_output().unwrap())
            .assert_code(0)
            .assert_out("hello from");
    }
    assert_no_leftovers_for_job(&job);
}

#[test]
fn postgres_service_answers_a_query_by_alias() {
    require_docker();
    let job = unique("pg");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/postgres
  services:
    - name: cijob-test/postgres
      alias: db
  variables:
    POSTGRES_PASSWORD: secret
    PGPASSWORD: secret
  script:
    - psql -h db -U postgres -tAc "select 40 + 2 as answer"
"#,
    ));
    p.run(&["run", &job, "--wait-for-services-timeout", "60"])
        .assert_code(0)
        .assert_out("42");
}

#[test]
fn missing_image_with_pull_never_is_a_clear_error() {
    require_docker();
    let job = unique("noimg");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/does-not-exist:1\n  script: [\"true\"]\n",
    ));
    p.run(&["run", &job, "--pull", "never"])
        .assert_code(125)
        .assert_err("cijob-test/does-not-exist:1")
        .assert_err("pull policy is \"never\"");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn bash_images_get_bash_and_pipefail() {
    require_docker();
    let job = unique("bash");
    let p = Project::new(&one_job(
        &job,
        "  image: cijob-test/debian\n  script:\n    - test -n \"$BASH_VERSION\" && echo is-bash\n    - false | true\n    - echo unreachable\n",
    ));
    let r = p.run(&["run", &job]);
    r.assert_code(1)
        .assert_out("is-bash")
        .assert_not("unreachable");
}

#[test]
fn the_readme_demo_job_runs() {
    require_docker();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let r = Run::from(
        cijob()
            .arg("-C")
            .arg(&demo)
            .args(["run", "test"])
            .output()
            .unwrap(),
    );
    r.assert_code(0)
        .assert_out("Postgres says 'hello from the db service' - the service works!");
}

#[test]
fn clean_removes_what_a_killed_run_left_but_not_a_live_run() {
    require_docker();
    let dead = unique("killed");
    let live = unique("alive");
    let p = Project::new(&format!(
        "\"{dead}\":\n  image: cijob-test/busybox\n  services: [cijob-test/svc-tcp]\n  script: [\"echo started\", \"sleep 120\"]\n\
         \"{live}\":\n  image: cijob-test/busybox\n  script: [\"echo started\", \"sleep 120\"]\n\
         \"{live}-next\":\n  image: cijob-test/busybox\n  script: [\"true\"]\n"
    ));
    let spawn = |job: &str| {
        let mut child = p
            .cijob(&["run", job])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut seen = String::new();
        while !seen.contains("started") {
            let mut buf = [0u8; 256];
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(n > 0, "job ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        (child, out)
    };
    let (mut killed, _out1) = spawn(&dead);
    let (mut alive, _out2) = spawn(&live);
    killed.kill().unwrap(); // SIGKILL: no chance to clean up
    killed.wait().unwrap();
    assert!(!leftovers(&format!("cijob.job={dead}")).is_empty());
    // The next run says what the dead run left, and not what the live one uses.
    let next = p.run(&["run", &format!("{live}-next")]);
    next.assert_code(0)
        .assert_err("left by")
        .assert_err(&format!("\"{dead}\""))
        .assert_err("`cijob clean` removes them")
        .assert_not(&format!("\"{live}\""));
    // Its build and service containers (the project volume is shared, not the job's).
    p.run(&["clean", &dead])
        .assert_code(0)
        .assert_err("removed container")
        .assert_err("cijob clean: removed 2 object(s)");
    assert_no_leftovers_for_job(&dead);
    // A live run's containers are never touched, even when asked for by name.
    p.run(&["clean", &live])
        .assert_code(0)
        .assert_err("cijob clean: removed 0 object(s)");
    assert!(!leftovers(&format!("cijob.job={live}")).is_empty());
    unsafe { libc::kill(alive.id() as i32, libc::SIGTERM) };
    assert_eq!(alive.wait().unwrap().code(), Some(143));
    assert_no_leftovers_for_job(&live);
    assert_no_leftovers_for_job(&format!("{live}-next"));
}

#[test]
fn plan_script_run_by_hand_gives_the_same_job_output() {
    require_docker();
    let job = unique("recipe");
    let p = Project::new(&one_job(
        &job,
        r#"  image: cijob-test/busybox
  variables: {GREETING: hi}
  services:
    - name: cijob-test/svc-tcp
      alias: web
  script:
    - cat data.txt
    - wget -qO- http://web:8080/ | cut -d' ' -f1
    - echo "$CI_JOB_NAME $GREETING $(pwd)"
    - exit 4
  after_script:
    - echo "after $CI_JOB_STATUS"
"#,
    ));
    p.write("data.txt", "uncommitted data\n");
    let ours = p.run(&["run", &job]);
    ours.assert_code(4)
        .assert_out("uncommitted data")
        .assert_out("after failed");
    let plan = p.run(&["plan", &job]);
    plan.assert_code(0);
    let script = p.path().join("plan.sh");
    std::fs::write(&script, &plan.stdout).unwrap();
    let by_hand = Run::from(
        std::process::Command::new("bash")
            .arg(&script)
            .current_dir(p.path())
            .output()
            .unwrap(),
    );
    by_hand.assert_code(4);
    // plan.sh itself is untracked, so the by-hand copy has one file more: irrelevant here.
    assert_eq!(
        ours.stdout, by_hand.stdout,
        "stderr of the plan:\n{}",
        by_hand.stderr
    );
    assert_no_leftovers_for_job(&job);
}

#[test]
fn variables_expand_in_image_service_names_and_aliases_not_in_commands() {
    require_docker();
    let job = unique("expand");
    let p = Project::new(&format!(
        r#"variables:
  IMG: cijob-test/busybox
  SVC: cijob-test/svc-tcp
  NAME: backend
  CI_DEBUG_SERVICES: "true"
"{job}":
  image: $IMG
  services:
    - name: ${{SVC}}:latest
      alias: api-$NAME
      command: ["$NAME"]
  script:
    - wget -qO- http://api-backend:8080/
    - echo "image=$CI_JOB_IMAGE"
    - sleep 1
"#
    ));
    // The runner passes `command` verbatim: the service sees the literal `$NAME`.
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("hello from")
        .assert_out("image=cijob-test/busybox")
        .assert_err("Starting service cijob-test/svc-tcp:latest...")
        .assert_err("svc-tcp: args(1): $NAME");
}

#[test]
fn clean_never_touches_what_cijob_did_not_create() {
    require_docker();
    let job = unique("foreign");
    // One named like cijob's containers, one carrying cijob's job label, neither made by it.
    let named = format!("cijob-{job}-build");
    let labelled = format!("{job}-labelled");
    for args in [
        vec!["create", "--name", &named, "cijob-test/busybox", "true"],
        vec![
            "create",
            "--name",
            &labelled,
            "--label",
            &format!("cijob.job={job}"),
            "--label",
            "cijob.pid=999999",
            "cijob-test/busybox",
            "true",
        ],
    ] {
        docker(&args).assert_code(0);
    }
    Run::from(common::cijob().args(["clean", &job]).output().unwrap())
        .assert_code(0)
        .assert_err("cijob clean: removed 0 object(s)");
    Run::from(common::cijob().arg("clean").output().unwrap())
        .assert_code(0)
        .assert_not(&named)
        .assert_not(&labelled);
    for name in [&named, &labelled] {
        docker(&["inspect", "-f", "{{.Name}}", name]).assert_code(0);
    }
    docker(&["rm", "-f", &named, &labelled]).assert_code(0);
}

#[test]
fn variables_inside_variables_reach_the_job_and_a_service_name() {
    require_docker();
    let job = unique("chained");
    let p = Project::new(&format!(
        r#"variables:
  REG: cijob-test
  SVC_IMAGE: $REG/svc-tcp
"{job}":
  image: cijob-test/busybox
  variables:
    SVC: ${{SVC_IMAGE}}:latest
    CHAIN: "x-$SVC-y"
    KEPT: $$SVC
  services:
    - name: $SVC
      alias: api
  script:
    - echo "CHAIN=$CHAIN KEPT=$KEPT"
    - wget -qO- http://api:8080/
"#
    ));
    p.run(&["run", &job])
        .assert_code(0)
        .assert_out("CHAIN=x-cijob-test/svc-tcp:latest-y KEPT=$SVC")
        .assert_out("hello from")
        .assert_err("Starting service cijob-test/svc-tcp:latest...");
    assert_no_leftovers_for_job(&job);
}

#[test]
fn a_matrix_instance_runs_by_its_short_name_and_clean_takes_it_too() {
    require_docker();
    let base = unique("test");
    let p = Project::new(&format!(
        "\"{base}\":\n  image: cijob-test/busybox\n  parallel:\n    matrix:\n      - RUBY: [\"2.2\", \"3.3\"]\n  script:\n    - echo \"RUBY=$RUBY NAME=$CI_JOB_NAME\"\n"
    ));
    let full = format!("{base}: [2.2]");
    p.run(&["run", &format!("{base}:2.2"), "--keep"])
        .assert_code(0)
        .assert_out(&format!("RUBY=2.2 NAME={full}"));
    assert!(
        !leftovers(&format!("cijob.job={full}")).is_empty(),
        "the kept run is labelled with GitLab's name"
    );
    p.run(&["clean", &format!("{base}:2.2")]).assert_code(0);
    assert_no_leftovers_for_job(&full);
}

//! End-to-end: a GitLab Runner config.toml given with --runner-config / CIJOB_RUNNER_CONFIG.

mod common;

use common::*;

#[test]
fn default_image_services_environment_and_volumes() {
    require_docker();
    let name = unique("toml-all");
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("marker"), "from-the-host\n").unwrap();
    let config = write_config(
        host.path(),
        &format!(
            r#"concurrent = 1
[[runners]]
  name = "shell"
  executor = "shell"
[[runners]]
  name = "local"
  executor = "docker"
  environment = ["FROM_RUNNER=runner-env", "OVERRIDDEN=runner"]
  [runners.docker]
    image = "cijob-test/busybox"
    volumes = ["/cache", "{}:/hostdir"]
    memory = "1g"
    devices = ["/dev/null"]
    extra_hosts = ["example.test:10.1.2.3"]
    [[runners.docker.services]]
      name = "cijob-test/svc-tcp"
      alias = "web"
      environment = ["GREETING=from-config-service"]
"#,
            host.path().display()
        ),
    );
    let yaml = format!(
        "\"{name}\":\n  variables:\n    OVERRIDDEN: job\n  script:\n    - wget -qO- http://web:8080/\n    - echo \"env=$FROM_RUNNER/$OVERRIDDEN\"\n    - cat /hostdir/marker\n    - grep example.test /etc/hosts\n    - cat /cache/count 2>/dev/null || echo none\n    - echo again > /cache/count\n"
    );
    let p = Project::new(&yaml);
    let r = p.run(&["run", &name, "--runner-config", &config]);
    r.assert_code(0)
        .assert_err("Using Docker executor with image cijob-test/busybox ...")
        .assert_out("from-config-service from")
        .assert_out("env=runner-env/job")
        .assert_out("from-the-host")
        .assert_out("10.1.2.3")
        .assert_out("none")
        .assert_err(
            "WARNING: runner config: cijob does not apply these settings: runners.docker.devices",
        );
    // The named volume persists between runs of the project.
    let r = p.run(&["run", &name, "--runner-config", &config]);
    r.assert_code(0).assert_out("again");
    assert_no_leftovers_for_job(&name);
    // It is labelled so `docker volume ls` (and `cijob clean`) find it.
    let mine = cache_volumes_of(&p);
    assert_eq!(mine.len(), 1, "{mine:?}");
    docker(&[
        "volume",
        "inspect",
        "-f",
        "{{index .Labels \"cijob.destination\"}}",
        &mine[0],
    ])
    .assert_code(0)
    .assert_out("/cache");
    docker(&["volume", "rm", "-f", &mine[0]]);
}

#[test]
fn allowed_pull_policies_reject_the_jobs_policy() {
    let name = unique("toml-pull");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[runners]]\n  executor = \"docker\"\n  [runners.docker]\n    pull_policy = [\"always\"]\n",
    );
    let p = Project::new(&format!(
        "\"{name}\":\n  image:\n    name: cijob-test/busybox\n    pull_policy: if-not-present\n  script: [\"true\"]\n"
    ));
    let mut c = p.cijob(&["plan", &name]);
    c.env("CIJOB_RUNNER_CONFIG", &config);
    let r = Run::from(c.output().unwrap());
    r.assert_code(2).assert_err(
        "pull_policy ([if-not-present]) defined in GitLab pipeline config is not one of the allowed_pull_policies ([always])",
    );
}

#[test]
fn runner_is_picked_by_name_and_errors_name_the_file() {
    let name = unique("toml-pick");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[runners]]\n  name = \"a\"\n  executor = \"docker\"\n[[runners]]\n  name = \"b\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"cijob-test/debian\"\n",
    );
    let p = Project::new(&format!("\"{name}\":\n  script: [\"true\"]\n"));
    p.run(&["plan", &name, "--runner-config", &config, "--runner", "b"])
        .assert_code(0)
        .assert_out("cijob-test/debian");
    p.run(&["plan", &name, "--runner-config", &config, "--runner", "c"])
        .assert_code(2)
        .assert_err(
            "config.toml: no [[runners]] entry named \"c\" (the runners are: \"a\", \"b\")",
        );
    p.run(&["plan", &name, "--runner-config", &config])
        .assert_code(2)
        .assert_err("has no image");
}

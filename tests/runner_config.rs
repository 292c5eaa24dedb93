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

/// `cijob plan` and `cijob run` with the same config.toml create the same containers: what
/// Docker reports for each (image, command, environment, labels, binds, network, host
/// settings, limits) is compared, names and addresses aside.
#[test]
fn plan_and_run_create_the_same_containers_with_a_runner_config() {
    require_docker();
    let name = unique("toml-same");
    let host = tempfile::tempdir().unwrap();
    let config = write_config(
        host.path(),
        &format!(
            r#"[[runners]]
  executor = "docker"
  environment = ["FROM_RUNNER=1"]
  [runners.docker]
    volumes = ["/cache", "{}:/hostdir:ro"]
    dns = ["10.0.0.2"]
    cap_add = ["NET_ADMIN"]
    cap_drop = ["MKNOD"]
    shm_size = 8388608
    extra_hosts = ["example.test:10.1.2.3"]
    memory = "512m"
    service_cpus = "0.5"
"#,
            host.path().display()
        ),
    );
    let p = Project::new(&format!(
        "\"{name}\":\n  image: cijob-test/busybox\n  variables: {{A: one}}\n  services:\n    - name: cijob-test/svc-tcp\n      alias: web\n  script:\n    - grep -q web /etc/hosts\n"
    ));
    // Kept containers go even when an assertion fails.
    struct Clean<'a>(&'a Project, &'a str);
    impl Drop for Clean<'_> {
        fn drop(&mut self) {
            self.0.run(&["clean", self.1]);
        }
    }
    let _clean = Clean(&p, &name);
    p.run(&["run", &name, "--runner-config", &config, "--keep"])
        .assert_code(0);
    let ran = containers_of_job(&name);
    let plan = p.run(&["plan", &name, "--runner-config", &config, "--keep"]);
    plan.assert_code(0);
    let script = host.path().join("plan.sh");
    std::fs::write(&script, &plan.stdout).unwrap();
    Run::from(
        std::process::Command::new("bash")
            .arg(&script)
            .current_dir(p.path())
            .output()
            .unwrap(),
    )
    .assert_code(0);
    let planned: Vec<_> = containers_of_job(&name)
        .into_iter()
        .filter(|c| !ran.iter().any(|r| r["Id"] == c["Id"]))
        .collect();
    for kind in ["build", "service"] {
        let one = |list: &[serde_json::Value]| {
            let c = list
                .iter()
                .find(|c| c["Config"]["Labels"]["cijob.type"] == kind)
                .unwrap_or_else(|| panic!("no {kind} container"));
            comparable(c, list)
        };
        let (r, p) = (one(&ran), one(&planned));
        assert_eq!(r, p, "{kind} container: run (left) and plan (right) differ");
        // The settings under test are really there (not both missing).
        let text = r.to_string();
        for want in [
            "10.0.0.2",
            "NET_ADMIN",
            "MKNOD",
            "8388608",
            "/hostdir:ro",
            ":/cache",
        ] {
            assert!(text.contains(want), "{kind}: {want} missing in {text}");
        }
    }
    p.run(&["clean", &name]).assert_code(0);
    assert_no_leftovers_for_job(&name);
    for v in cache_volumes_of(&p) {
        docker(&["volume", "rm", "-f", &v]).assert_code(0);
    }
}

/// `docker inspect` of every container labelled with the job.
fn containers_of_job(job: &str) -> Vec<serde_json::Value> {
    let ids = docker(&["ps", "-aq", "--filter", &format!("label=cijob.job={job}")]);
    let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
    let out = docker(&[&["inspect"][..], &ids].concat());
    serde_json::from_str(&out.stdout).unwrap()
}

/// The settings Docker reports for a container, with what differs between two runs by
/// nature (run ids, pids, addresses, container ids, times) replaced by placeholders.
fn comparable(c: &serde_json::Value, all: &[serde_json::Value]) -> serde_json::Value {
    let (config, host) = (&c["Config"], &c["HostConfig"]);
    let mut env: Vec<String> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .filter(|v| {
            !v.starts_with("CI_JOB_STARTED_AT=") && !v.starts_with("CI_PIPELINE_CREATED_AT=")
        })
        .collect();
    env.sort();
    // The docker CLI passes `-v` options in no fixed order; their order means nothing.
    let mut binds = host["Binds"].as_array().cloned().unwrap_or_default();
    binds.sort_by_key(|b| b.to_string());
    let mut labels = config["Labels"].clone();
    let run = labels["cijob.run"].as_str().unwrap().to_string();
    labels.as_object_mut().unwrap().remove("cijob.pid");
    let value = serde_json::json!({
        "image": config["Image"], "entrypoint": config["Entrypoint"], "cmd": config["Cmd"],
        "env": env, "labels": labels, "hostname": config["Hostname"], "user": config["User"],
        "stdin": [config["OpenStdin"], config["StdinOnce"]],
        "binds": binds, "network": host["NetworkMode"], "extra_hosts": host["ExtraHosts"],
        "dns": host["Dns"], "cap_add": host["CapAdd"], "cap_drop": host["CapDrop"],
        "shm": host["ShmSize"], "log": host["LogConfig"]["Type"], "privileged": host["Privileged"],
        "memory": host["Memory"], "cpus": host["NanoCpus"], "security": host["SecurityOpt"],
    });
    let mut text = value.to_string().replace(&run, "RUN");
    for other in all {
        let id = other["Id"].as_str().unwrap();
        text = text.replace(&id[..12], "ID");
    }
    // The docker CLI spells capabilities `CAP_X`; the API keeps `X` as the runner sends it.
    text = text.replace("CAP_", "");
    let addresses = regex::Regex::new(r"172\.\d+\.\d+\.\d+").unwrap();
    serde_json::from_str(&addresses.replace_all(&text, "ADDR")).unwrap()
}
